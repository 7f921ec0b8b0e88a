"""The seam between equivalence and localisation: on a failure of an ONNX artifact against an ONNX
reference, the table for the first failing case, appended to the message. It never changes the verdict:
anything that goes wrong here becomes one line saying so."""

from __future__ import annotations

from typing import TYPE_CHECKING

from model_checks.localize.runner import Caps
from model_checks.safety.text import printable

if TYPE_CHECKING:
    from model_checks.checks.context import CheckContext
    from model_checks.core.metrics import Comparison
    from model_checks.localize.report import Localization


def applies(ctx: CheckContext) -> bool:
    return ctx.localize and ctx.fmt == "onnx" and ctx.reference_kind == "model" and ctx.reference_format == "onnx"


def find(
    ctx: CheckContext, label: str, comparison: Comparison, caps: Caps = Caps(), first_only: bool = False
) -> Localization:
    """The table for the case `label`, against the rel_l2 tolerance of its first failing output (else its first).
    The check's own rel_l2 for that output is handed on: localisation reuses it rather than rerunning the case."""
    from model_checks.localize.locate import localize

    case = next(c for c in ctx.cases() if c.label == label)
    out = next((o for o in comparison.outputs if not o.ok), comparison.outputs[0] if comparison.outputs else None)
    bad = out.name if out is not None else None
    limit = ctx.manifest.tolerance.for_output(bad).get("rel_l2") if bad else None
    return ctx.pool.run_isolated(
        "onnx",
        ctx.model_path,
        localize,
        ctx.model_path,
        ctx.reference_path,
        ctx.artifact.root,
        case.inputs,
        label,
        limit.value if limit else None,
        limit.source if limit else "",
        caps,
        bad,
        out.value("rel_l2") if out is not None else None,
        first_only,
        ctx.reference_feeds(case.inputs),
    )


def lines(
    ctx: CheckContext, failed: list[tuple[str, Comparison]], check_s: float = 0.0
) -> tuple[list[str], dict[str, str]]:
    """The localisation lines for a failed equivalence (none where it does not apply), and figures for reports:
    the hint and, for a quantized artifact, the worst tensors by SQNR (the nightly report shows them). Under a
    check it stops at the first node over the tolerance, within `Caps.for_check(check_s)`."""
    if not failed or not applies(ctx):
        return [], {}
    try:
        found = find(ctx, *failed[0], caps=Caps.for_check(check_s), first_only=True)
    except Exception as e:  # a hint must never turn into an error of the check
        return [
            f"  localisation not available: {type(e).__name__}: {printable(str(e)[:200])} "
            f"(--model-checks-localize=off skips it)"
        ], {}
    figures = {"localize_hint": printable(f"{found.hint.node} ({found.hint.op})")} if found.hint is not None else {}
    if found.sqnr:
        figures["sqnr_worst"] = found.sqnr_summary()
    return found.render("  "), figures
