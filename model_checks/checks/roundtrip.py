"""`roundtrip`: an ONNX artifact converted to PyTorch (`roundtrip: [torch]` in the manifest) matches the
artifact itself under its tolerance. An op the converter cannot handle is a skip that names the op and the
converter, never a pass. The conversion runs in the confined worker (no network, no processes, writes only in its
sandbox, a scrubbed environment), on a copy of the model with every name replaced by one the gate chose."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check
from model_checks.core.metrics import compare_outputs
from model_checks.core.results import CheckResult

if TYPE_CHECKING:  # numpy is not imported where the checks are only collected
    import numpy as np

NAME = "roundtrip"


def converted_outputs(path: Path, root: Path, feeds: list[dict]) -> list[dict[str, np.ndarray]] | str:
    """The converted module's outputs on each feed, or the reason it cannot be converted (a str)."""
    from model_checks.backends.onnx.loader import load_proto
    from model_checks.producers.to_torch import Unconvertible, convert

    try:
        conv = convert(load_proto(path, root))
        return [conv.infer(f) for f in feeds]
    except Unconvertible as e:
        return str(e)


def run(ctx: CheckContext) -> CheckResult:
    if "torch" not in ctx.manifest.roundtrip:
        return CheckResult.skip(NAME, f"no roundtrip declared in {ctx.where} (roundtrip: [torch])")
    if ctx.fmt != "onnx":
        return CheckResult.skip(NAME, f"roundtrip converts ONNX models; {ctx.artifact.id} is {ctx.fmt}")
    runner = ctx.runner()
    cases = ctx.cases()
    # Converting builds and compiles code (torch.fx): it runs in the confined worker, on a copy of the model whose
    # names the gate chose (model_checks.backends.onnx.names), whether or not --model-checks-trust-code is given.
    feeds = [c.inputs for c in cases]
    got = ctx.pool.run_confined(ctx.model_path, converted_outputs, ctx.model_path, ctx.artifact.root, feeds)
    if isinstance(got, str):
        return CheckResult.skip(NAME, f"{ctx.artifact.id} does not convert to PyTorch: {got}")
    results = [
        (c.label, compare_outputs(out, runner.infer(c.inputs), ctx.manifest.tolerance.for_output))
        for c, out in zip(cases, got)
    ]
    figures = {"roundtrip_max_abs": max((v for _, c in results if (v := c.worst("max_abs")) is not None), default=None)}
    failed = [(label, c) for label, c in results if not c]
    if failed:
        lines = [line for label, c in failed for line in (f"  case: {label}", *c.render())]
        lines.append(
            f"  limits come from the 'tolerance' of {ctx.where}; the converter is onnx2torch: "
            "a difference here is a conversion bug, or drop roundtrip: [torch]"
        )
        return CheckResult(
            NAME,
            False,
            f"{NAME}: {ctx.artifact.id} converted to PyTorch differs from the ONNX model "
            f"({len(failed)} of {len(results)} case(s))",
            tuple(lines),
            figures=figures,
        )
    return CheckResult(
        NAME,
        True,
        f"{NAME}: {ctx.artifact.id} converted to PyTorch matches the ONNX model over {len(results)} case(s): "
        f"max_abs {figures['roundtrip_max_abs']:.3g}",
        figures=figures,
    )


# collected only where the manifest opts in (`roundtrip: [torch]`)
CHECK = Check(NAME, run, applies=lambda m: bool(m.roundtrip))
