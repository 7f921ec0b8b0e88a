"""`equivalence`: the artifact's outputs against its reference's, per output, under the tolerances."""

from __future__ import annotations

from model_checks.checks.context import CheckContext
from model_checks.core.errors import ModelChecksError, WorkerBrokeError
from model_checks.core.metrics import Comparison, OutputComparison, compare_outputs
from model_checks.core.results import CheckResult

NAME = "equivalence"


def comparisons(ctx: CheckContext) -> list[tuple[str, Comparison]]:
    """Each case compared: (label, Comparison)."""
    runner = ctx.runner()
    cases = ctx.cases()
    try:  # every case in one round trip to the worker
        outputs = runner.infer_many([case.inputs for case in cases])
    except WorkerBrokeError:
        raise  # a crash, hang or exhaustion is the failure (the first case would have met it just the same)
    except ModelChecksError:
        outputs = None  # case by case below, so the failure reported is the one met first, as ever
    out = []
    for i, case in enumerate(cases):
        got = outputs[i] if outputs is not None else runner.infer(case.inputs)
        expected = case.outputs if case.outputs is not None else ctx.reference_outputs(case.inputs)
        out.append((case.label, compare_outputs(got, expected, ctx.manifest.tolerance.for_output)))
    return out


def worst(results: list[tuple[str, Comparison]], metric: str) -> float | None:
    vals = [v for _, c in results if (v := c.worst(metric)) is not None]
    if not vals:
        return None
    return min(vals) if metric == "top1_agreement" else max(vals)


def run(ctx: CheckContext) -> CheckResult:
    if ctx.reference_path is None:
        return CheckResult.skip(NAME, f"no reference declared in {ctx.where} (reference.path)")
    results = comparisons(ctx)
    figures = {m: worst(results, m) for m in ("rel_l2", "mae", "max_abs", "top1_agreement")}
    ref = ctx.manifest.get("reference.path")
    failed = [(label, c) for label, c in results if not c]
    if failed:
        lines = []
        for label, c in failed:
            lines.append(f"  case: {label}")
            lines += c.render()
        lines.append(f"  limits come from the 'tolerance' of {ctx.where} or policy.yaml; raise them there only if the difference is expected")
        from model_checks.localize.gate import lines as localisation

        extra, found = localisation(ctx, failed)
        lines += extra
        figures.update(found)
        n_out = sum(1 for _, c in failed for o in c.outputs if not o.ok) + sum(len(c.problems) for _, c in failed)
        return CheckResult(NAME, False, f"{NAME}: {ctx.artifact.id} differs from its reference {ref} ({n_out} failure(s) in {len(failed)} of {len(results)} case(s))", tuple(lines), figures=figures)
    summary = ", ".join(f"{k} {v:.3g}" for k, v in figures.items() if v is not None)
    return CheckResult(NAME, True, f"{NAME}: {ctx.artifact.id} matches {ref} over {len(results)} case(s): worst {summary}", figures=figures)


__all__ = ["run", "comparisons", "OutputComparison"]
