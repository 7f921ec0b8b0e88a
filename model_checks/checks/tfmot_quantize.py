"""`tfmot_quantize`: quantization-aware training applies to a Keras artifact that declares `tfmot.quantize`."""

from __future__ import annotations

from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check
from model_checks.core.inputs import seed_for
from model_checks.core.results import CheckResult

NAME = "tfmot_quantize"


def run(ctx: CheckContext) -> CheckResult:
    if not ctx.manifest.get("tfmot.quantize"):
        return CheckResult.skip(NAME, f"tfmot.quantize is not set in {ctx.where}")
    from model_checks.tfmot.artifact import quantize_report, verdict

    report = ctx.pool.run_isolated(ctx.fmt, ctx.model_path, quantize_report,
                                   ctx.model_path, ctx.fmt, ctx.manifest.inputs, ctx.pool.trust_code, seed_for(ctx.artifact.id))
    return verdict(NAME, ctx.artifact.id, report, "quantization-aware training does not apply",
                   f"{ctx.where} declares tfmot.quantize: true; set it false if QAT is not planned for this model",
                   {"tfmot_quantize_rel_l2": report.rel_l2})


# collected only for Keras artifacts whose manifest asks for it (`tfmot: {quantize: true}`)
CHECK = Check(NAME, run, applies=lambda m: m.format == "keras" and bool(m.get("tfmot.quantize")))
