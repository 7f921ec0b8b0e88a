"""The seam between equivalence and localisation: on a failure of an ONNX artifact against an ONNX
reference, the table for the first failing case, appended to the message. It never changes the verdict:
anything that goes wrong here becomes one line saying so."""

from __future__ import annotations

from typing import TYPE_CHECKING

from model_checks.localize.runner import Caps

if TYPE_CHECKING:
    from model_checks.checks.context import CheckContext
    from model_checks.localize.report import Localization
    from model_checks.core.metrics import Comparison


def applies(ctx: CheckContext) -> bool:
    return ctx.localize and ctx.fmt == "onnx" and ctx.reference_kind == "model" and ctx.reference_format == "onnx"


def find(ctx: CheckContext, label: str, comparison: Comparison, caps: Caps = Caps()) -> Localization:
    """The table for the case `label`, against the rel_l2 tolerance of its first failing output (else its first)."""
    from model_checks.localize.locate import localize

    case = next(c for c in ctx.cases() if c.label == label)
    bad = next((o.name for o in comparison.outputs if not o.ok), comparison.outputs[0].name if comparison.outputs else None)
    limit = ctx.manifest.tolerance.for_output(bad).get("rel_l2") if bad else None
    return ctx.pool.run_isolated("onnx", ctx.model_path, localize, ctx.model_path, ctx.reference_path, ctx.artifact.root,
                                 case.inputs, label, limit.value if limit else None, limit.source if limit else "", caps)


def lines(ctx: CheckContext, failed: list[tuple[str, Comparison]]) -> tuple[list[str], dict[str, str]]:
    """The localisation lines for a failed equivalence (none where it does not apply), and figures for reports:
    the hint and, for a quantized artifact, the worst tensors by SQNR (the nightly report shows them)."""
    if not failed or not applies(ctx):
        return [], {}
    try:
        found = find(ctx, *failed[0])
    except Exception as e:  # a hint must never turn into an error of the check
        return [f"  localisation not available: {type(e).__name__}: {str(e)[:200]} (--model-checks-localize=off skips it)"], {}
    figures = {"localize_hint": f"{found.hint.node} ({found.hint.op})"} if found.hint is not None else {}
    if found.sqnr:
        figures["sqnr_worst"] = found.sqnr_summary()
    return found.render("  "), figures
