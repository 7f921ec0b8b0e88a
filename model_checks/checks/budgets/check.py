"""The budget checks as the gate runs them: `run(check, ctx, device, bench, options)` measures one artifact on
one device through a pytest-benchmark fixture (or `BareBench`), gates the figures with the policies, compares
them with the stored baseline and returns a CheckResult. Works without pytest."""

from __future__ import annotations

import os
import time
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

from model_checks.backends import load_runtime, open_target
from model_checks.backends.base import Target
from model_checks.checks.budgets.baseline import Baseline, BaselineStore
from model_checks.checks.budgets.calibration import Calibration
from model_checks.checks.budgets.compare import MIN_EFFECT, BaselineComparison
from model_checks.checks.budgets.fingerprint import fingerprint
from model_checks.checks.budgets.measure import (
    BLOCKS,
    MIN_BLOCK,
    Bench,
    Deadline,
    Measurement,
    Watchdog,
    block_starts,
    samples_ns,
    timed,
    timeout_origin,
    warm_up,
)
from model_checks.checks.budgets.percentiles import median, rounds_for
from model_checks.checks.budgets.policy import (
    CLAIM_FACTOR,
    ClaimNotGated,
    LatencyBudget,
    LatencyClaim,
    Scale,
    SpeedupBudget,
    ThroughputBudget,
)
from model_checks.checks.budgets.spec import DeviceBudget, device_budget
from model_checks.checks.context import CheckContext
from model_checks.core.errors import DeviceUnavailable, ModelChecksError
from model_checks.core.inputs import generate, merge_interface, seed_for
from model_checks.core.results import CheckResult
from model_checks.isolation.limits import DEFAULT_TIMEOUT_S
from model_checks.manifest.model import Limit

EXTRA_INFO_KEY = "model_checks"


@dataclass(frozen=True)
class BudgetOptions:
    baselines: Path | None = None
    update_baselines: bool = False
    min_effect: float = MIN_EFFECT
    trust_code: bool = False
    latency_claim_factor: float = CLAIM_FACTOR  # 0: the `latency_ms` claim is reported, not gated
    strict_claims: bool = False  # gate a claim with no recorded calibration even when measured on another CPU
    timeout_s: float = DEFAULT_TIMEOUT_S  # the longest any one measurement may take (see measure.Deadline)


def refused(bench: Any) -> str | None:
    """Why budgets cannot be measured in this run, or None."""
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return (
            "budgets are not measured under pytest-xdist (-n): parallel workers share the cores, so the timings would be "
            "noise. Run the budget tests without -n (e.g. `pytest -m 'cpu or gpu' -p no:xdist`)"
        )
    if getattr(bench, "disabled", False):
        return "pytest-benchmark is disabled (--benchmark-disable): budgets need real timings"
    return None


def run(
    check: str, ctx: CheckContext, device: str, bench: Bench, options: BudgetOptions = BudgetOptions()
) -> CheckResult:
    """Measure and gate `check` ("latency", "throughput" or "speedup") of the artifact on `device`."""
    budget = device_budget(ctx.manifest, device, ctx.where)
    subject = f"{ctx.artifact.id} on {device}"
    if budget is None or not budget.declares(check):
        return skip(check, device, f"{subject}: no budgets.{device} for {check} in {ctx.where}")
    why = refused(bench)
    if why:
        return skip(check, device, why)
    try:
        return CHECKS[check](ctx, budget, bench, options, subject)
    except DeviceUnavailable as e:
        return skip(check, device, f"{subject}: {e}")


def skip(check: str, device: str, reason: str) -> CheckResult:
    """A budget that does not apply here; the device stays in the figures so reports can say which one."""
    return CheckResult(check, True, f"skipped: {reason}", skipped=reason, figures={"device": device})


def _feeds(ctx: CheckContext, batch: int, reference: bool = False) -> dict:
    specs = merge_interface(None, ctx.reference_runner().inputs) if reference else ctx.interface()
    return generate(specs, batch, seed_for(ctx.artifact.id) + batch)


# Operators that draw random numbers (ONNX and OpenVINO's names, then TFLite's): such a model's calls may not all take
# alike (a draw deciding a loop's turns or an allocation), so one run in its worker proves nothing of the next
RANDOM_OPS = frozenset(
    {
        "RandomUniform",
        "RandomNormal",
        "RandomUniformLike",
        "RandomNormalLike",
        "Multinomial",
        "Bernoulli",
        "RANDOM_UNIFORM",
        "RANDOM_STANDARD_NORMAL",
        "MULTINOMIAL",
    }
)


def _open(
    ctx: CheckContext, budget: DeviceBudget, options: BudgetOptions, batch: int, reference: bool = False
) -> tuple[Target, float, float]:
    """Open the model (timed), prepare its inputs and make its first call (timed): both figures stay out of the samples."""
    path, fmt = (ctx.reference_path, ctx.reference_format) if reference else (ctx.model_path, ctx.fmt)
    feeds = _feeds(ctx, batch, reference)
    # Timing must happen in this process (pytest-benchmark times the call itself), so the model first
    # runs once on the same feeds through the pool, in its isolated worker: one that crashes, hangs or
    # exhausts memory fails this test there, with what happened, instead of taking the session down.
    (ctx.reference_runner() if reference else ctx.runner()).infer(feeds)
    load_runtime(fmt)
    target, create_ms = timed(
        lambda: open_target(path, fmt, ctx.artifact.root, budget.device, budget.threads, options.trust_code)
    )
    drawn = sorted(RANDOM_OPS & set((ctx.reference_facts() if reference else ctx.facts()).ops))
    if drawn and target.cancel is None:  # (onnxruntime's and OpenVINO's runs are stopped by the Watchdog instead)
        target.close()
        raise DeviceUnavailable(
            f"{path.name} draws random numbers ({', '.join(drawn)}), so its calls may not all take alike, and its "
            f"runtime ({target.description}) cannot stop a call in flight: it is not timed in the gate's process"
        )
    target.prepare(feeds)
    with Watchdog([target], options.timeout_s, timeout_origin(options.timeout_s)):
        _, first_ms = timed(target.call)
    return target, create_ms, first_ms


def measure(
    ctx: CheckContext,
    budget: DeviceBudget,
    bench: Bench,
    options: BudgetOptions,
    batch: int,
    rounds: int,
    setup: Callable[[], Any] | None = None,
    teardown: Callable[[], Any] | None = None,
    per_call: tuple[float, str] | None = None,
    also: tuple[Target, ...] = (),
) -> Measurement:
    """Session creation, first call, warm-up until stable, then `rounds` samples of one call each; `setup` and
    `teardown` run untimed around each sample (they replace the calibration bursts). Warm-up and rounds run
    under one Deadline, from the timeout and `per_call` (the budget per call in ms, and how to name it), which a
    Watchdog holds a call in flight to as well (of the model, and of the targets `also` timed in setup/teardown)."""
    target, create_ms, first_ms = _open(ctx, budget, options, batch)
    calibration = Calibration(budget.threads) if setup is None and teardown is None and budget.device == "cpu" else None
    deadline = Deadline(options.timeout_s, rounds, *(per_call or (None, "")))
    try:
        with Watchdog([target, *also], deadline.seconds + Watchdog.GRACE_S, deadline.origin):
            warm = warm_up(target.call, deadline=deadline)
            deadline.check("after warm-up", warm.window_median_ms)
            if calibration is not None:
                setup = _calibrating(calibration, target, block_starts(rounds))
            bench.pedantic(
                target.call,
                setup=deadline.bounded(setup),
                teardown=teardown,
                rounds=rounds,
                iterations=1,
                warmup_rounds=0,
            )
        if calibration is not None:
            calibration.burst()
    finally:
        target.close()
    return Measurement(
        budget.device,
        target.description,
        batch,
        budget.threads,
        create_ms,
        first_ms,
        warm,
        tuple(samples_ns(bench)),
        model_bytes=ctx.model_path.stat().st_size,
        calibration_ns=tuple(calibration.bursts) if calibration else (),
    )


def _calibrating(calibration: Calibration, target: Target, starts: set[int]) -> Callable[[], None]:
    """pedantic's setup (untimed): before each block, a calibration burst, then one call of the model so that
    the first timed call of the block finds its caches as warm as the others."""
    count = iter(range(1 << 62))

    def setup() -> None:
        if next(count) in starts:
            calibration.burst()
            target.call()

    return setup


def _baseline(
    check: str, ctx: CheckContext, m: Measurement, options: BudgetOptions
) -> tuple[BaselineComparison | None, list[str], dict]:
    """Compare with the stored baseline, and replace it when asked; lines for the result's details, and figures
    (`baseline_sessions`: how many sessions a baseline saved by this run pools)."""
    if options.baselines is None:
        return None, [], {}
    store = BaselineStore(options.baselines)
    fp = fingerprint(m.device, m.threads)
    try:
        old, unusable = store.load(ctx.artifact.id, check, m.device), None
    except ModelChecksError as e:  # a broken or planted file: never compared; replaced only when asked
        if not options.update_baselines:
            raise
        old, unusable = None, str(e)
    comparison = old.compare(m.blocks_ms, fp, options.min_effect, m.normalized_blocks) if old is not None else None
    if unusable:
        notes = [f"  baseline: the stored one was unusable ({unusable}); a new one replaces it"]
    elif comparison is not None:
        notes = [f"  baseline: {comparison}"]
    else:
        notes = [f"  baseline: none stored in {options.baselines}"]
    if options.update_baselines:
        new = (
            old.updated(m.blocks_ms, fp, m.percentiles.as_dict(), m.normalized_blocks)
            if old is not None
            else Baseline(
                ctx.artifact.id,
                check,
                m.device,
                fp,
                m.blocks_ms,
                m.percentiles.as_dict(),
                sessions=[m.blocks_ms],
                normalized_sessions=[m.normalized_blocks] if m.normalized_blocks else [],
            )
        )
        path = store.save(new)
        notes.append(f"  baseline updated: {path} ({len(new.sessions)} session(s) pooled)")
        return comparison, notes, {"baseline_sessions": len(new.sessions)}
    if comparison is not None and not comparison:
        notes.append(
            "  if the slowdown is intended, accept it as the new baseline with --model-checks-update-baselines"
        )
    return comparison, notes, {}


def _result(
    check: str,
    artifact: str,
    subject: str,
    bench: Bench,
    m: Measurement,
    problems: list[str],
    passed: str,
    comparison: BaselineComparison | None,
    notes: list[str],
    extra: dict | None = None,
) -> CheckResult:
    size_mb = m.model_bytes / 1e6
    info = {
        "check": check,
        "artifact": artifact,
        **m.figures(),
        **(extra or {}),
        "baseline": comparison.as_dict() if comparison is not None else None,
    }
    bench.extra_info[EXTRA_INFO_KEY] = info
    bench.extra_info.update({k: v for k, v in m.percentiles.as_dict().items() if k != "n"})  # p50..p99 in ms, top level
    if comparison is not None and not comparison:
        problems = [*problems, f"regression against the baseline: {comparison}"]
    lines = [
        f"  measured: {m.percentiles}; {m.throughput_per_s:.1f} items/s at batch {m.batch_size}",
        f"  start-up, not in the samples: session creation {m.session_create_ms:.2f} ms, first call {m.first_call_ms:.3f} ms",
        f"  warm-up: {m.warmup.calls} calls, {'stable' if m.warmup.stable else 'NOT stable (gave up)'}; on {m.target}",
        *(
            ["  the machine was under load (1-min load average above its cores): figures are noisier"]
            if m.under_load()
            else []
        ),
        *notes,
    ]
    figures = {
        "device": m.device,
        **{f"{k}_ms": v for k, v in m.percentiles.as_dict().items() if k != "n"},
        "samples": m.percentiles.n,
        "throughput_per_s": m.throughput_per_s,
        "batch_size": m.batch_size,
        "session_create_ms": m.session_create_ms,
        "first_call_ms": m.first_call_ms,
        "size_mb": size_mb,
        "baseline_verdict": comparison.verdict if comparison is not None else None,
        "baseline_change": comparison.change if comparison is not None else None,
        **{k: v for k, v in (extra or {}).items() if not isinstance(v, (list, dict))},
    }
    return CheckResult.from_problems(check, subject, problems, passed=passed, figures=figures, notes=lines)


def _where_to_change(limits: list[Limit], ctx: CheckContext) -> str:
    """Where the failing limits were set (metadata.yaml or policy.yaml, with the key), and that a manifest key overrides a policy."""
    return f"to change a limit, edit {', '.join(sorted({lim.source for lim in limits}))} (a key in {ctx.where} overrides policy.yaml)"


def calibration_us(m: Measurement) -> float | None:
    """This run's calibration p50 in microseconds (the median of its bursts), or None when none ran."""
    return median(list(m.calibration_ns)) / 1e3 if m.calibration_ns else None


def scale_for(budget: DeviceBudget, m: Measurement) -> tuple[Scale | None, list[str]]:
    """How the budgets scale to this machine, when they carry `calibration_us`; and a note when they cannot."""
    if budget.calibration_us is None:
        return None, []
    here = calibration_us(m)
    if here is None:
        return None, [
            f"  {budget.calibration_us.source} is ignored on {m.device}: the calibration workload runs on the CPU only"
        ]
    scale = Scale(budget.calibration_us.value, here)
    return scale, [f"  budgets scaled to this machine: {scale} ({budget.calibration_us.source})"]


def _latency(
    ctx: CheckContext, budget: DeviceBudget, bench: Bench, options: BudgetOptions, subject: str
) -> CheckResult:
    from model_checks.core.machine import this_machine

    claim = (
        LatencyClaim(budget.latency_claim_ms, options.latency_claim_factor, budget.claim_machine, options.strict_claims)
        if budget.latency_claim_ms is not None
        else None
    )
    rounds = rounds_for(list(budget.latency_ms) or ["p50"], floor=BLOCKS * MIN_BLOCK)
    loosest = [(lim.value, f"{s} {lim.value:g} ms") for s, lim in budget.latency_ms.items()]
    if claim is not None:
        loosest.append(
            (
                claim.claim.value * max(claim.factor, 1.0),
                f"{max(claim.factor, 1.0):g} x the claimed {claim.claim.value:g} ms",
            )
        )
    m = measure(ctx, budget, bench, options, batch=1, rounds=rounds, per_call=max(loosest) if loosest else None)
    scale, scale_notes = scale_for(budget, m)
    policies = [LatencyBudget(s, lim, scale) for s, lim in budget.latency_ms.items()]
    failing = [p for p in policies if p.fails(m.percentiles)]
    problems = [p.fails(m.percentiles) or "" for p in failing]
    if failing:
        problems.append(_where_to_change([p.limit for p in failing], ctx))
    claim_figures: dict = {}
    notes = list(scale_notes)
    if claim is not None:
        here = this_machine(providers=False)
        cal = calibration_us(m)
        rec = (budget.claim_machine or {}).get("calibration_us")
        normalized = (median(m.normalized_blocks) * float(rec) / 1e3) if m.normalized_blocks and rec else None
        verdict = claim.judge(m.percentiles.p50, here.cpu, cal, normalized)
        claim_figures = {**verdict.figures, "claim_gated": verdict.gated}
        if verdict.problem:
            problems.append(verdict.problem)
        else:
            notes.append(f"  {verdict.line}")
        if not verdict.gated and claim.factor:
            warnings.warn(ClaimNotGated(f"{ctx.artifact.id}: {verdict.line}"), stacklevel=2)
    comparison, base_notes, saved = _baseline("latency", ctx, m, options)
    passed = [f"{p.statistic} {m.percentiles.get(p.statistic):.3f} ms <= {p.value:.4g}" for p in policies]
    if claim is not None:
        passed.append("the latency_ms claim " + ("holds" if claim_figures["claim_gated"] else "is reported, not gated"))
    extra = {
        **claim_figures,
        **saved,
        **{f"limit_{p.statistic}_ms": p.value for p in policies},
        **({"budget_scale": scale.ratio} if scale else {}),
    }
    return _result(
        "latency",
        ctx.artifact.id,
        subject,
        bench,
        m,
        problems,
        f"{', '.join(passed)} (n={m.percentiles.n}, batch 1)",
        comparison,
        notes + base_notes,
        extra,
    )


def _throughput(
    ctx: CheckContext, budget: DeviceBudget, bench: Bench, options: BudgetOptions, subject: str
) -> CheckResult:
    assert budget.throughput_per_s is not None
    per_call_ms = 1e3 * budget.batch_size / budget.throughput_per_s.value
    m = measure(
        ctx,
        budget,
        bench,
        options,
        batch=budget.batch_size,
        rounds=rounds_for(["p50"], floor=BLOCKS * MIN_BLOCK),
        per_call=(
            per_call_ms,
            f"the budget's {per_call_ms:.3g} ms a call ({budget.throughput_per_s.value:g} items/s at batch {budget.batch_size})",
        ),
    )
    scale, scale_notes = scale_for(budget, m)
    policy = ThroughputBudget(budget.throughput_per_s, budget.batch_size, scale)
    msg = policy.fails(m.throughput_per_s)
    comparison, notes, saved = _baseline("throughput", ctx, m, options)
    problems = [msg, _where_to_change([policy.limit], ctx)] if msg else []
    return _result(
        "throughput",
        ctx.artifact.id,
        subject,
        bench,
        m,
        problems,
        f"{m.throughput_per_s:.1f} items/s >= {policy.value:.1f} at batch {budget.batch_size}",
        comparison,
        scale_notes + notes,
        {**saved, "limit_throughput_per_s": policy.value, **({"budget_scale": scale.ratio} if scale else {})},
    )


def _speedup(
    ctx: CheckContext, budget: DeviceBudget, bench: Bench, options: BudgetOptions, subject: str
) -> CheckResult:
    assert budget.speedup_vs_reference is not None
    if ctx.reference_kind != "model":
        return skip(
            "speedup",
            budget.device,
            f"{subject}: speedup_vs_reference needs reference.path to name a model in {ctx.where}",
        )
    policy = SpeedupBudget(budget.speedup_vs_reference)
    ref, ref_create_ms, ref_first_ms = _open(ctx, budget, options, 1, reference=True)
    ref_ns: list[float] = []
    rounds = rounds_for(["p50"], floor=BLOCKS * MIN_BLOCK)
    order = iter(range(2 * rounds))

    def reference_call() -> None:
        """Runs as pedantic's setup and as its teardown; times the reference before the artifact's even samples
        and after its odd ones (R A A R R A ...), so neither side always finds the caches as the other left them."""
        if next(order) % 4 in (0, 3):
            t0 = time.perf_counter_ns()
            ref.call()
            ref_ns.append(time.perf_counter_ns() - t0)

    try:
        with Watchdog([ref], options.timeout_s, timeout_origin(options.timeout_s)):
            warm_up(ref.call)
        m = measure(
            ctx,
            budget,
            bench,
            options,
            batch=1,
            rounds=rounds,
            setup=reference_call,
            teardown=reference_call,
            also=(ref,),
        )
    finally:
        ref.close()
    ref_ms = median(ref_ns) / 1e6
    speedup = ref_ms / m.percentiles.p50
    msg = policy.fails(speedup)
    problems = [msg, _where_to_change([policy.limit], ctx)] if msg else []
    extra = {
        "speedup": speedup,
        "limit_speedup": policy.limit.value,
        "reference_p50_ms": ref_ms,
        "reference_session_create_ms": ref_create_ms,
        "reference_first_call_ms": ref_first_ms,
    }
    notes = [
        f"  interleaved in one run (R A A R ...): reference p50 {ref_ms:.3f} ms, artifact p50 {m.percentiles.p50:.3f} ms ({len(ref_ns)} pairs)"
    ]
    return _result(
        "speedup",
        ctx.artifact.id,
        subject,
        bench,
        m,
        problems,
        f"speedup {speedup:.2f}x over the reference >= {policy.limit.value:g}x",
        None,
        notes,
        extra,
    )


CHECKS = {"latency": _latency, "throughput": _throughput, "speedup": _speedup}  # declared in budgets/declare.py
