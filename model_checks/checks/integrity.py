"""`integrity`: the model file is what it says, passes its format's own checker, opens in its runtime,
and matches the declared sha256 (ONNX: with its external data files)."""

from __future__ import annotations

from model_checks.backends.registry import framework_of, runtime_package
from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check
from model_checks.core.errors import ArtifactLoadError, MachineLoadError, of_kind
from model_checks.core.results import CheckResult
from model_checks.safety.digest import sha256_of
from model_checks.safety.paths import proven_files

NAME = "integrity"


def run(ctx: CheckContext) -> CheckResult:
    problems: list[str] = []
    # Through the pool: the trust check comes first, and the format's checker runs in the worker when isolated.
    problems += ctx.pool.validate(ctx.model_path, ctx.fmt, ctx.artifact.root)
    declared = ctx.manifest.get("sha256")
    if declared:
        from model_checks.backends import backend

        # the files the model is made of, where its format keeps it in more than one (ONNX external data), as its
        # facts found them (in the worker, from the parse the checker's problems were read off): this process neither
        # parses the model nor imports its framework to hash it, and reads each file once, as it hashes it
        several = hasattr(backend(ctx.fmt, "facts"), "model_files")
        # the worker parsed a stranger's file: its list is held to the rules of a manifest's paths before one is read
        files = (proven_files(ctx.artifact.root, ctx.facts().files, "sha256") if several else []) or [ctx.model_path]
        # hashed already if another artifact's equivalence loaded this model as its reference (pool.hash_ahead)
        actual = ctx.pool.digests.known(files) or sha256_of(files)
        if actual.lower() != declared.lower():
            what = ctx.model_path.name + (f" with {len(files) - 1} external data file(s)" if len(files) > 1 else "")
            problems.append(
                f"sha256: declared {declared} but {what} hashes to {actual}; the file changed after packaging, or update sha256 in {ctx.where}"
            )
    opens(ctx, problems)
    runtime = runtime_package(ctx.fmt) or "its runtime"
    notes = [f"  {runtime} opens it all the same: the other checks run on it"] if problems else []
    return CheckResult.from_problems(
        NAME,
        ctx.artifact.id,
        problems,
        notes=notes,
        passed=f"{ctx.model_path.name} is a valid {ctx.fmt} model, opens in its runtime"
        + (", sha256 matches" if declared else ""),
    )


def opens(ctx: CheckContext, problems: list[str]) -> None:
    """The runtime must open the model, whatever the format's checker said: a model it refuses is refused here,
    once, with the runtime's reason and the checker's verdict beside it (they can disagree either way), and the
    artifact's other checks are skipped naming this one (an ArtifactLoadError blocks them in the session)."""
    try:
        ctx.runner()  # an onnxruntime session (or the format's runtime) must open
    except ArtifactLoadError as e:
        fw = framework_of(ctx.fmt)
        checker = fw.checker if fw is not None and fw.checker else f"the {ctx.fmt} checker"
        if problems:
            verdict = [f"{checker} refuses it too:", *(f"  - {p}" for p in problems)]
        elif isinstance(e, MachineLoadError):
            from model_checks.core.machine import this_machine

            verdict = [
                f"{checker} accepts it: the model is valid; what it lacks is this machine's, and so is this "
                f"verdict: {this_machine().describe()}"
            ]
        else:
            verdict = [
                f"{checker} accepts it: the model is valid, but this runtime cannot run it (an op, a domain "
                "or a type it lacks: check the op against the runtime's version, or export without it)"
            ]
        raise of_kind(type(e), "\n".join([str(e), *verdict])) from None


CHECK = Check(NAME, run)
