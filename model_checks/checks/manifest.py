"""`manifest`: the manifest follows the schema and names files that are there. It runs first, and when it fails
the artifact's other checks are not run (they say so), since none can read a model the manifest cannot name."""

from __future__ import annotations

from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check
from model_checks.core.errors import ModelChecksError
from model_checks.core.results import CheckResult
from model_checks.safety.paths import checkout_problem

NAME = "manifest"
# Every manifest key that names a path; those in MUST_EXIST must name something that is there (the others: the
# checks that read them say when they are missing). Each is spelled as on disk (see safety.paths.spelled_otherwise).
PATH_KEYS = ("file", "reference.path", "samples", "eval_data", "serving.compare_with")
MUST_EXIST = ("file", "reference.path")


def run(ctx: CheckContext) -> CheckResult:
    """The schema, that the files `file` and `reference.path` name are there, and that every path the manifest names
    is spelled as on disk and is not a Git LFS pointer left in a file's place."""
    artifact = ctx.artifact
    if artifact.error:
        return CheckResult(
            "manifest",
            False,
            f"manifest: {artifact.rel_dir}/metadata.yaml is invalid",
            tuple("  " + line for line in artifact.error.splitlines()),
        )
    problems = []
    for key in PATH_KEYS:
        try:
            p = artifact.path(key)
        except ModelChecksError as e:
            if key in MUST_EXIST:
                problems.append(str(e))
            continue
        if p is None:
            continue
        text = artifact.manifest.get(key)
        respell = f"spell it as on disk in {artifact.rel_dir}/metadata.yaml"
        if (problem := checkout_problem(artifact.root, artifact.dir, text, p, respell)) is not None:
            problems.append(f"{key}: {text} {problem}")
        elif key in MUST_EXIST and not (p.exists() or p.is_symlink()):
            problems.append(
                f"{key}: {text} does not exist in {artifact.rel_dir}/ "
                f"(fix the path in {artifact.rel_dir}/metadata.yaml or add the file)"
            )
    if problems:
        return CheckResult.from_problems("manifest", f"{artifact.rel_dir}/metadata.yaml", problems, "")
    return CheckResult("manifest", True, f"manifest: {artifact.id} follows schema 1")


CHECK = Check(NAME, run, blocking="failure")
