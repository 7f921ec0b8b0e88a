"""`equivalence`: the artifact's outputs against its reference's, per output, under the tolerances."""

from __future__ import annotations

from model_checks.checks.context import CheckContext
from model_checks.core.metrics import Comparison, OutputComparison, compare_outputs
from model_checks.core.quantio import io_note, saturation_lines
from model_checks.core.results import CheckResult

NAME = "equivalence"


def comparisons(ctx: CheckContext) -> list[tuple[str, Comparison]]:
    """Each case compared: (label, Comparison)."""
    runner = ctx.runner()
    out = []
    for case in ctx.cases():
        got = runner.infer(case.inputs)
        expected = case.outputs if case.outputs is not None else ctx.reference_outputs(case.inputs)
        comparison = compare_outputs(got, expected, ctx.manifest.tolerance.for_output)
        if not comparison and (clipped := saturation_lines(case.inputs, expected, runner.inputs, runner.outputs)):
            from dataclasses import replace

            comparison = replace(comparison, notes=tuple(clipped))
        out.append((case.label, comparison))
    return out


def how_run(ctx: CheckContext) -> str:
    """How the artifact ran, where it matters to the figures: quantized I/O, the runtime's own choices."""
    runner = ctx.runner()
    return "; ".join(n for n in (runner.note, io_note(runner.inputs, runner.outputs)) if n)


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
        lines = [f"  ran as: {how}"] if (how := how_run(ctx)) else []
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
    how = f" ({how})" if (how := how_run(ctx)) else ""
    return CheckResult(NAME, True, f"{NAME}: {ctx.artifact.id} matches {ref} over {len(results)} case(s): worst {summary}{how}",
                       figures=figures)


__all__ = ["run", "comparisons", "OutputComparison"]
