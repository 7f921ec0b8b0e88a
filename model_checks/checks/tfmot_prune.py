"""`tfmot_prune`: low-magnitude pruning applies to a Keras artifact that declares `tfmot.prune`, and a
short fit reaches `tfmot.target_sparsity` (default 0.5) on every pruned layer."""

from __future__ import annotations

from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check
from model_checks.core.inputs import seed_for
from model_checks.core.results import CheckResult

NAME = "tfmot_prune"


def run(ctx: CheckContext) -> CheckResult:
    m = ctx.manifest
    if not m.get("tfmot.prune"):
        return CheckResult.skip(NAME, f"tfmot.prune is not set in {ctx.where}")
    from model_checks.tfmot.artifact import prune_report, verdict
    from model_checks.tfmot.prune import TARGET_SPARSITY

    report = ctx.pool.run_isolated(
        ctx.fmt,
        ctx.model_path,
        prune_report,
        ctx.model_path,
        ctx.fmt,
        m.inputs,
        ctx.pool.trust_code,
        seed_for(ctx.artifact.id),
        m.get("tfmot.target_sparsity", TARGET_SPARSITY),
        tuple(m.get("tfmot.skip_layers") or ()),
    )
    return verdict(
        NAME,
        ctx.artifact.id,
        report,
        "pruning does not apply",
        f"the target and skipped layers come from tfmot.target_sparsity and tfmot.skip_layers in {ctx.where}",
        {"tfmot_min_sparsity": min(report.sparsity.values()) if report.sparsity else None},
    )


# collected only for Keras artifacts whose manifest asks for it (`tfmot: {prune: true}`)
CHECK = Check(NAME, run, applies=lambda m: m.format == "keras" and bool(m.get("tfmot.prune")))
