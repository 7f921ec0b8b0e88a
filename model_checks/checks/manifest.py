"""`manifest`: the manifest follows the schema and names files that are there. It runs first, and when it fails
the artifact's other checks are not run (they say so), since none can read a model the manifest cannot name."""

from __future__ import annotations

from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check
from model_checks.core.errors import ModelChecksError
from model_checks.core.results import CheckResult

NAME = "manifest"


def run(ctx: CheckContext) -> CheckResult:
    """The schema, and that every file the manifest's `file` and `reference.path` name is there."""
    artifact = ctx.artifact
    if artifact.error:
        return CheckResult(
            "manifest",
            False,
            f"manifest: {artifact.rel_dir}/metadata.yaml is invalid",
            tuple("  " + line for line in artifact.error.splitlines()),
        )
    problems = []
    for key in ("file", "reference.path"):
        try:
            p = artifact.path(key)
        except ModelChecksError as e:
            problems.append(str(e))
            continue
        if p is not None and not (p.exists() or p.is_symlink()):
            problems.append(
                f"{key}: {artifact.manifest.get(key)} does not exist in {artifact.rel_dir}/ "
                f"(fix the path in {artifact.rel_dir}/metadata.yaml or add the file)"
            )
    if problems:
        return CheckResult.from_problems("manifest", f"{artifact.rel_dir}/metadata.yaml", problems, "")
    return CheckResult("manifest", True, f"manifest: {artifact.id} follows schema 1")


CHECK = Check(NAME, run, blocking="failure")
