"""`tfmot_quantize`: quantization-aware training applies to a Keras artifact that declares `tfmot.quantize`; with
`tfmot.tflite`, the QAT model also converts to a full-integer TFLite model that holds the artifact's `tolerance`
against the float model (the tolerance equivalence applies to the model's output, from the same places)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check
from model_checks.core.inputs import seed_for
from model_checks.core.metrics import HIGHER_IS_BETTER
from model_checks.core.results import CheckResult

if TYPE_CHECKING:
    from model_checks.tfmot.tflite import TFLiteReport

NAME = "tfmot_quantize"


def run(ctx: CheckContext) -> CheckResult:
    if not ctx.manifest.get("tfmot.quantize"):
        return CheckResult.skip(NAME, f"tfmot.quantize is not set in {ctx.where}")
    from model_checks.tfmot.artifact import quantize_report, verdict

    report = ctx.pool.run_isolated(
        ctx.fmt,
        ctx.model_path,
        quantize_report,
        ctx.model_path,
        ctx.fmt,
        ctx.manifest.inputs,
        ctx.pool.trust_code,
        seed_for(ctx.artifact.id),
    )
    result = verdict(
        NAME,
        ctx.artifact.id,
        report,
        "quantization-aware training does not apply",
        f"{ctx.where} declares tfmot.quantize: true; set it false if QAT is not planned for this model",
        {"tfmot_quantize_rel_l2": report.rel_l2},
    )
    if not result or not ctx.manifest.get("tfmot.tflite"):
        return result
    return with_tflite(ctx, result)


def with_tflite(ctx: CheckContext, result: CheckResult) -> CheckResult:
    """The QAT model to full-integer TFLite, in LiteRT, against the float model on the samples."""
    from model_checks.tfmot.tflite import judge, tflite_report

    feeds = ctx.sample_feeds()
    samples = next(iter(feeds.values())) if feeds and len(feeds) == 1 else None
    tl = ctx.pool.run_isolated(
        ctx.fmt,
        ctx.model_path,
        tflite_report,
        ctx.model_path,
        ctx.fmt,
        ctx.manifest.inputs,
        ctx.pool.trust_code,
        seed_for(ctx.artifact.id),
        samples,
    )
    tl = judge(tl, ctx.manifest.tolerance.for_output(tl.output))
    figures = dict(result.figures)
    figures.update({f"tfmot_tflite_{k}": v for k, v in tl.figures.get("TFLite int8", {}).items()})
    lines = (*tl.table(), tolerance_line(ctx, tl)) if not tl.problem else ()
    if tl:
        return CheckResult(NAME, True, f"{result.headline}; {tl}", lines, figures=figures)
    fix = "  fit the QAT model longer, or keep its most sensitive layers in float (annotate only the others with "
    fix += (
        f"quantize_annotate_layer); or set tfmot.tflite: false in {ctx.where} if no TFLite model is shipped"
        if tl.problem
        else "quantize_annotate_layer). The limits are this artifact's `tolerance`, which equivalence applies "
        "against its reference too: a float model's tolerance is rarely one an int8 model holds, so gate the "
        f"TFLite model as its own artifact with an int8 tolerance and set tfmot.tflite: false in {ctx.where}"
    )
    detail = tuple(f"  - {f}" for f in tl.failures)
    return CheckResult(
        NAME, False, f"{NAME}: {ctx.artifact.id}: QAT applies, but {tl}", detail + lines + (fix,), figures=figures
    )


def tolerance_line(ctx: CheckContext, tl: TFLiteReport) -> str:
    """Which tolerance held the TFLite model, and where each limit came from."""
    limits = ", ".join(
        f"{m} {'>=' if m in HIGHER_IS_BETTER else '<='} {lim.value:g} from {lim.source}" for m, lim in tl.limits.items()
    )
    return (
        f"  tolerance: {ctx.where}'s `tolerance` for output '{tl.output}', as equivalence resolves it "
        f"(metadata.yaml, then policy.yaml, then model-checks' defaults): {limits or 'none'}"
    )


# collected only for Keras artifacts whose manifest asks for it (`tfmot: {quantize: true}`)
CHECK = Check(NAME, run, applies=lambda m: m.format == "keras" and bool(m.get("tfmot.quantize")))
