"""The budgets' calibration workload (checks/budgets/calibration.py) as an ONNX model on onnxruntime's CPU
provider: a fixed chain of MatMul and Tanh, about 10 us a call on one core."""

from __future__ import annotations

from typing import Any, Callable

import numpy as np

DEPTH, WIDTH = 8, 128  # about 10 us a call on one core: short enough to run often, long enough to time


def _model() -> Any:
    from onnx import TensorProto, helper, numpy_helper

    w = (np.random.default_rng(0).standard_normal((WIDTH, WIDTH)) / np.sqrt(WIDTH)).astype(np.float32)
    nodes, last = [], "x"
    for i in range(DEPTH):
        nodes += [helper.make_node("MatMul", [last, "W"], [f"m{i}"]), helper.make_node("Tanh", [f"m{i}"], [f"t{i}"])]
        last = f"t{i}"
    graph = helper.make_graph(
        nodes,
        "calibration",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, WIDTH])],
        [helper.make_tensor_value_info(last, TensorProto.FLOAT, [1, WIDTH])],
        [numpy_helper.from_array(w, "W")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def workload(threads: int | None) -> Callable[[], Any]:
    """One call of the workload on onnxruntime's CPU provider with `threads` intra-op threads."""
    from model_checks.backends.onnx.runner import session_options
    from model_checks.backends.onnx.runtime import onnxruntime

    session = onnxruntime().InferenceSession(
        _model().SerializeToString(), session_options(threads), providers=["CPUExecutionProvider"]
    )
    feeds = {"x": np.full((1, WIDTH), 0.5, np.float32)}
    return lambda: session.run(None, feeds)
