"""A fixed reference workload timed in bursts between the blocks of a CPU measurement. A whole session on a
shared machine can run slower (another job on the cores, the clock, a noisy neighbour); the calibration runs
slower with it, so block medians divided by the calibration's speed around them compare across sessions far
better than raw times (on the 2-core CI machine under load: CV of p50 over sessions 17.5% raw, 7.6% normalized)."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from model_checks.checks.budgets.percentiles import median

DEPTH, WIDTH = 8, 128  # about 10 us a call on one core: short enough to run often, long enough to time
BURST = 30


def _model() -> Any:
    from onnx import TensorProto, helper, numpy_helper

    w = (np.random.default_rng(0).standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(np.float32)
    nodes, last = [], "x"
    for i in range(DEPTH):
        nodes += [helper.make_node("MatMul", [last, "W"], [f"m{i}"]), helper.make_node("Tanh", [f"m{i}"], [f"t{i}"])]
        last = f"t{i}"
    graph = helper.make_graph(nodes, "calibration", [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, WIDTH])],
                              [helper.make_tensor_value_info(last, TensorProto.FLOAT, [1, WIDTH])], [numpy_helper.from_array(w, "W")])
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


class Calibration:
    """The calibration workload on onnxruntime's CPU provider with the budget's threads."""

    def __init__(self, threads: int | None):
        from model_checks.backends.onnx.runtime import onnxruntime

        ort = onnxruntime()

        from model_checks.backends.onnx.runner import session_options

        self.session = ort.InferenceSession(_model().SerializeToString(), session_options(threads), providers=["CPUExecutionProvider"])
        self.feeds = {"x": np.full((1, WIDTH), 0.5, np.float32)}
        self.bursts: list[float] = []
        self.burst(100)  # warm
        self.bursts.clear()

    def burst(self, n: int = BURST) -> float:
        """Median nanoseconds of `n` calls, recorded."""
        times = []
        for _ in range(n):
            t0 = time.perf_counter_ns()
            self.session.run(None, self.feeds)
            times.append(time.perf_counter_ns() - t0)
        self.bursts.append(median(times))
        return self.bursts[-1]
