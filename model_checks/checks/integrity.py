"""`integrity`: the model file is what it says, passes its format's own checker, opens in its runtime,
and matches the declared sha256 (ONNX: with its external data files)."""

from __future__ import annotations

from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check
from model_checks.safety.digest import sha256_of
from model_checks.core.results import CheckResult

NAME = "integrity"


def run(ctx: CheckContext) -> CheckResult:
    problems: list[str] = []
    # Through the pool: the trust check comes first, and the format's checker runs in the worker when isolated.
    problems += ctx.pool.validate(ctx.model_path, ctx.fmt, ctx.artifact.root)
    declared = ctx.manifest.get("sha256")
    if declared:
        from model_checks.backends import backend

        # the files the model is made of, where its format keeps it in more than one (ONNX external data)
        model_files = getattr(backend(ctx.fmt, "facts"), "model_files", None)
        files = model_files(ctx.model_path, ctx.artifact.root) if model_files else [ctx.model_path]
        actual = sha256_of(files)
        if actual.lower() != declared.lower():
            what = ctx.model_path.name + (f" with {len(files) - 1} external data file(s)" if len(files) > 1 else "")
            problems.append(f"sha256: declared {declared} but {what} hashes to {actual}; the file changed after packaging, or update sha256 in {ctx.where}")
    if not problems:
        ctx.runner()  # an onnxruntime session (or the format's runtime) must open
    return CheckResult.from_problems(
        NAME, ctx.artifact.id, problems,
        passed=f"{ctx.model_path.name} is a valid {ctx.fmt} model, opens in its runtime" + (", sha256 matches" if declared else ""),
    )


CHECK = Check(NAME, run)
