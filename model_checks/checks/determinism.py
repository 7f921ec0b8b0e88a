"""`determinism`: the noise floor under the verdicts. The same case run repeatedly, at 1 and N threads, with
onnxruntime's graph optimizations off and on; the spread between runs and between configurations, per output, is
the least difference any comparison of this model can resolve. A declared tolerance below it would flake.

Opt-in (`determinism: true` in metadata.yaml or policy.yaml); a nightly run (--model-checks-nightly-report)
checks every ONNX artifact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check
from model_checks.core.lazy import lazy
from model_checks.core.results import CheckResult

np = lazy("numpy")

NAME = "determinism"
REPEATS = 3
THREADS = 4  # "N": more than one, and a count that splits work differently from 1 on any machine
# what each spread is called in a message
SPREADS = {"run": "run-to-run", "threads": "thread-count", "optimization": "graph-optimization"}
METRICS = ("rel_l2", "mae", "max_abs")

Spread = dict[str, dict[str, dict[str, float]]]  # kind -> output -> metric -> value


def _metrics(a: np.ndarray, b: np.ndarray) -> dict[str, float]:
    from model_checks.core.metrics import mae, max_abs, rel_l2

    return {"rel_l2": rel_l2(a, b), "mae": mae(a, b), "max_abs": max_abs(a, b)}


def _widen(into: dict[str, dict[str, float]], out: dict, base: dict) -> None:
    for name, a in out.items():
        b = base.get(name)
        if b is None or np.asarray(a).dtype.kind != "f" or np.shape(a) != np.shape(b):
            continue
        row = into.setdefault(name, dict.fromkeys(METRICS, 0.0))
        for k, v in _metrics(np.asarray(a), np.asarray(b)).items():
            row[k] = max(row[k], v)


def measure(path: Path, root: Path, feeds: dict, repeats: int = REPEATS, threads: int = THREADS) -> Spread:
    """The spreads of an ONNX model on onnxruntime (run in the onnx worker): run-to-run within each configuration,
    thread count (1 against N, optimizations equal) and optimization (off against on, threads equal)."""
    from model_checks.backends.onnx.runner import OnnxRunner

    first: dict[tuple[int, bool], dict] = {}
    spread: Spread = {k: {} for k in SPREADS}
    for t in (1, threads):
        for optimize in (True, False):
            runner = OnnxRunner(path, root, t, optimize=optimize)
            try:
                runs = [runner.infer(feeds) for _ in range(repeats)]
            finally:
                runner.close()
            for r in runs[1:]:
                _widen(spread["run"], r, runs[0])
            first[(t, optimize)] = runs[0]
    for optimize in (True, False):
        _widen(spread["threads"], first[(threads, optimize)], first[(1, optimize)])
    for t in (1, threads):
        _widen(spread["optimization"], first[(t, False)], first[(t, True)])
    return spread


@dataclass(frozen=True)
class Floor:
    """The largest spread of one metric of one output, and where it shows."""

    value: float
    kind: str


def floors(spread: Spread) -> dict[str, dict[str, Floor]]:
    """Per output and metric, the largest spread of any kind."""
    out: dict[str, dict[str, Floor]] = {}
    for kind, outputs in spread.items():
        for name, row in outputs.items():
            for metric, v in row.items():
                have = out.setdefault(name, {}).get(metric)
                if have is None or v > have.value:
                    out[name][metric] = Floor(v, kind)
    return out


def judge(ctx: CheckContext, spread: Spread) -> CheckResult:
    """Fail every declared tolerance below the noise the runtime itself shows."""
    problems, figures = [], {}
    for name, row in sorted(floors(spread).items()):
        limits = ctx.manifest.tolerance.for_output(name)
        for metric in METRICS:
            floor = row.get(metric)
            if floor is None:
                continue
            figures[f"noise_{metric}"] = max(float(figures.get(f"noise_{metric}") or 0.0), floor.value)
            lim = limits.get(metric)
            if lim is not None and floor.value > lim.value:
                problems.append(
                    f"output '{name}': {metric} {lim.value:.3g} ({lim.source}) is below this runtime's "
                    f"{SPREADS[floor.kind]} spread {floor.value:.3g}: the check would flake; set it above "
                    f"{floor.value:.3g} in 'tolerance' of {ctx.where} (or policy.yaml)"
                )
    lines = [f"  spread over {REPEATS} runs, 1 and {THREADS} threads, graph optimizations off and on:"]
    for kind, outputs in spread.items():
        for name, r in sorted(outputs.items()):
            lines.append(f"    {SPREADS[kind]:<19} '{name}': " + ", ".join(f"{m} {v:.3g}" for m, v in r.items()))
    subject = ctx.artifact.id
    passed = "every declared tolerance is above the runtime's own noise"
    return CheckResult.from_problems(NAME, subject, problems, passed, figures=figures, notes=lines)


def run(ctx: CheckContext) -> CheckResult:
    if ctx.fmt != "onnx":
        return CheckResult.skip(
            NAME, f"the determinism check measures ONNX models on onnxruntime; {ctx.manifest.file} is {ctx.fmt}"
        )
    feeds = ctx.cases()[0].inputs
    spread = ctx.pool.run_isolated("onnx", ctx.model_path, measure, ctx.model_path, ctx.artifact.root, feeds)
    return judge(ctx, spread)


# opt-in (`determinism: true`); a nightly run asks for it on every artifact
CHECK = Check(NAME, run, applies=lambda m: bool(m.determinism), nightly=True)
