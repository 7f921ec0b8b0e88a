"""The budget harness's own overhead: the median latency of a trivial ONNX model measured through the budget
check (pytest-benchmark's fixture, pedantic, one call a sample) against a bare `time.perf_counter_ns` loop
around `session.run`, in one process, alternating, same model, same thread count.

    .venv/bin/python bench/budget_overhead.py [--repeats 5]

Prints the medians in microseconds and the difference. The gate's figure comes from the benchmark JSON
(`extra_info.p50`, from the raw samples)."""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
from fixtures import artifacts  # noqa: E402


def through_gate(root: Path, out: Path) -> float:
    """p50 (µs) of test_latency through pytest and pytest-benchmark, in this process."""
    import pytest

    code = pytest.main(
        [
            str(root),
            "--model-checks",
            str(root),
            "-m",
            "cpu",
            "-q",
            "-p",
            "no:cacheprovider",
            "--model-checks-isolate",
            "off",
            "--benchmark-json",
            str(out),
            "--benchmark-quiet",
            "--rootdir",
            str(root),
            "-c",
            "/dev/null",
            "-W",
            "ignore",
        ]
    )
    assert code == 0, f"the gate failed ({code})"
    (b,) = json.loads(out.read_text())["benchmarks"]
    return b["extra_info"]["p50"] * 1e3


def bare(model: Path, rounds: int) -> float:
    """p50 (µs) of a bare loop: perf_counter_ns around session.run, after the same kind of warm-up."""
    import numpy as np
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads, so.inter_op_num_threads = 1, 1
    sess = ort.InferenceSession(str(model), so, providers=["CPUExecutionProvider"])
    feeds = {"input": np.random.default_rng(0).uniform(0, 1, (1, 4)).astype(np.float32)}
    names = [o.name for o in sess.get_outputs()]  # as the gate asks: by name (None costs a lookup per call)
    for _ in range(100):
        sess.run(names, feeds)
    times = []
    for _ in range(rounds):
        t0 = time.perf_counter_ns()
        sess.run(names, feeds)
        times.append(time.perf_counter_ns() - t0)
    return statistics.median(times) / 1e3


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--repeats", type=int, default=5)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "arts"
        artifacts.onnx_artifact(
            root / "tiny", name="tiny", budgets={"cpu": {"threads": 1, "latency_ms": {"p50": 100.0, "p99": 100.0}}}
        )
        gate, plain = [], []
        for i in range(a.repeats):
            gate.append(through_gate(root, Path(tmp) / f"b{i}.json"))
            plain.append(bare(root / "tiny" / "model.onnx", 662))
        g, p = statistics.median(gate), statistics.median(plain)
        print(json.dumps({"gate_p50_us": [round(x, 2) for x in gate], "bare_p50_us": [round(x, 2) for x in plain]}))
        print(f"trivial ONNX model, 1 thread, {a.repeats} alternating repeats of 662 calls each:")
        print(
            f"  median p50 through the budget check: {g:.2f} us; bare perf_counter_ns loop: {p:.2f} us; overhead {g - p:+.2f} us ({g / p - 1:+.1%})"
        )


if __name__ == "__main__":
    main()
