"""Stability of the latency figure: the coefficient of variation of p50 over repeated sessions (fresh
processes) of the same artifact, for a trivial model and a heavier one.

    .venv/bin/python bench/budget_stability.py [--sessions 5]
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from fixtures import artifacts  # noqa: E402
from fixtures.slow_models import chain  # noqa: E402

MODELS = {"trivial (MatMul+Add, 4x3)": None, "chain of 40 MatMul+Tanh, 128 wide": chain(40)}


def session(root: Path, artifact: str) -> dict:
    out = subprocess.run(
        [sys.executable, str(REPO / "bench" / "budget_session.py"), str(root), artifact],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def cv(values: list[float]) -> float:
    return statistics.stdev(values) / statistics.mean(values)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sessions", type=int, default=5)
    a = ap.parse_args()
    print(f"load average at start: {os.getloadavg()[0]:.2f} on {os.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as tmp:
        for i, (label, model) in enumerate(MODELS.items()):
            root = Path(tmp) / f"arts{i}"
            artifacts.onnx_artifact(
                root / "m",
                model,
                name="m",
                budgets={"cpu": {"threads": 1, "latency_ms": {"p50": 1000.0, "p99": 1000.0}}},
            )
            runs = [session(root, "m@1.0") for _ in range(a.sessions)]
            p50s = [r["p50_ms"] * 1e3 for r in runs]
            norm = [statistics.median(r["normalized_blocks"]) for r in runs]
            print(
                f"{label}: p50 over {a.sessions} sessions (us) {[round(p, 2) for p in p50s]}; CV {cv(p50s):.1%}; "
                f"calibrated (multiples of the calibration workload) {[round(n, 3) for n in norm]}; CV {cv(norm):.1%}"
            )
    print(f"load average at end: {os.getloadavg()[0]:.2f}")


if __name__ == "__main__":
    main()
