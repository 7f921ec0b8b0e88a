"""False alarms and power of the regression comparison.

    .venv/bin/python bench/budget_false_alarms.py [--sessions 20] [--depth 40]

Measured: a baseline is taken over 3 sessions of a model (a chain of `depth` MatMul+Tanh steps); then, in
alternating fresh sessions, the unchanged model (how often is a regression flagged: false alarms) and a
model about 10% slower (chain of depth * 1.1, same artifact id; how often is it caught: power). The true
slowdown is measured interleaved in one process and printed.

Simulated (deterministic): the same decision on synthetic block medians, with and without a session-wide
shift (what load does to a whole session), to show what the noise floor buys."""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from fixtures import artifacts  # noqa: E402
from fixtures.slow_models import chain  # noqa: E402
from model_checks.checks.budgets.baseline import Baseline  # noqa: E402

BUDGET = {"cpu": {"threads": 1, "latency_ms": {"p50": 1000.0}}}


def session(root: Path, baselines: Path, update: bool = False) -> dict:
    cmd = [sys.executable, str(REPO / "bench" / "budget_session.py"), str(root), "m@1.0", "--baselines", str(baselines)]
    out = subprocess.run(cmd + (["--update"] if update else []), capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def true_slowdown(a: Path, b: Path, rounds: int = 2000) -> float:
    """median(b) / median(a), calls interleaved in one process, 1 thread."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
    sa, sb = (ort.InferenceSession(str(p), so, providers=["CPUExecutionProvider"]) for p in (a, b))
    x = {"input": np.random.default_rng(0).uniform(0, 1, (1, 128)).astype(np.float32)}
    ta, tb = [], []
    for _ in range(rounds):
        for s, t in ((sa, ta), (sb, tb)):
            t0 = time.perf_counter_ns()
            s.run(None, x)
            t.append(time.perf_counter_ns() - t0)
    return statistics.median(tb[200:]) / statistics.median(ta[200:])


def measured(sessions: int, depth: int) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        same, slow, store = Path(tmp) / "same", Path(tmp) / "slow", Path(tmp) / "baselines"
        artifacts.onnx_artifact(same / "m", chain(depth), name="m", budgets=BUDGET)
        artifacts.onnx_artifact(slow / "m", chain(round(depth * 1.1)), name="m", budgets=BUDGET)
        ratio = true_slowdown(same / "m" / "model.onnx", slow / "m" / "model.onnx")
        for _ in range(3):
            session(same, store, update=True)
        floor = Baseline(
            **{k: v for k, v in json.loads((store / "m@1.0" / "latency-cpu.json").read_text()).items() if k != "schema"}
        ).noise_floor(normalized=True)
        verdicts: dict[str, Counter] = {"unchanged": Counter(), "slower": Counter()}
        for _ in range(sessions):
            verdicts["unchanged"][session(same, store)["baseline_verdict"]] += 1
            verdicts["slower"][session(slow, store)["baseline_verdict"]] += 1
        print(
            f"measured: chain({depth}) vs chain({round(depth * 1.1)}), true slowdown {ratio - 1:+.1%} (interleaved, one process); "
            f"baseline noise floor {floor:.1%} over 3 calibrated sessions"
        )
        fa, pw = verdicts["unchanged"]["regression"], verdicts["slower"]["regression"]
        print(
            f"  unchanged model, {sessions} sessions: regression flagged {fa}/{sessions} ({fa / sessions:.0%}); all verdicts {dict(verdicts['unchanged'])}"
        )
        print(
            f"  ~10% slower model, {sessions} sessions: caught {pw}/{sessions} ({pw / sessions:.0%}); all verdicts {dict(verdicts['slower'])}"
        )


def simulated(trials: int = 2000) -> None:
    """Synthetic sessions: 8 blocks with 2% noise each, every session shifted by N(0, shift)."""
    rng = np.random.default_rng(0)

    def blocks(scale: float, shift: float) -> list[float]:
        return list(scale * np.exp(rng.normal(0, shift) + rng.normal(0, 0.02, 8)))

    for shift in (0.0, 0.03, 0.10):
        for pooled in (3, 5):
            rates = []
            for scale in (1.0, 1.10):
                hits = 0
                for _ in range(trials):
                    fp = {"x": 1}
                    b = Baseline(
                        "m", "latency", "cpu", fp, [], {}, sessions=[blocks(1.0, shift) for _ in range(pooled)]
                    )
                    hits += b.compare(blocks(scale, shift), fp, 0.05).verdict == "regression"
                rates.append(hits / trials)
            print(
                f"simulated: session shift sd {shift:.0%}, baseline of {pooled} session(s): false alarms {rates[0]:.1%}, "
                f"power at +10% {rates[1]:.1%} ({trials} trials)"
            )


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=20)
    ap.add_argument("--depth", type=int, default=40)
    ap.add_argument("--no-measured", action="store_true")
    a = ap.parse_args()
    simulated()
    if not a.no_measured:
        print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
        measured(a.sessions, a.depth)
        print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
