"""The weight list in graph order, and ONNXModel feeding a model what it wants."""

from __future__ import annotations

import numpy as np
from onnx import numpy_helper

from fixtures import onnx_models
from model_checks.producers.onnx_model import ONNXModel, layout_of, providers, weights


def test_weights_come_in_the_order_the_graph_uses_them():
    model = onnx_models.conv_bn(bias_add=True)
    model.graph.initializer.append(numpy_helper.from_array(np.zeros(3, np.float32), "unused"))
    names = [n for n, _ in weights(model)]
    assert names == ["W", "bias", "scale", "bnb", "mean", "var", "unused"]
    w = dict(weights(model))["W"]
    assert w.shape == (2, 1, 3, 3) and w.dtype == np.float32


def test_channel_last_input_is_transposed_for_a_channel_first_model(fp32_onnx, images):
    m = ONNXModel(fp32_onnx)
    assert m.layout == "NCHW" and m.input_name == "input" and m.provider == "CPUExecutionProvider"
    want = m(images)
    np.testing.assert_allclose(m(images.transpose(0, 2, 3, 1)), want, rtol=1e-6)  # NHWC in
    np.testing.assert_allclose(m(images[0]), want[:1], rtol=1e-6)  # no batch dim: one is added
    np.testing.assert_allclose(m(images.astype(np.float64)), want, rtol=1e-6)  # cast to float32


def test_an_fp16_model_gets_fp16(tmp_path):
    path = onnx_models.save(onnx_models.linear(dtype=np.float16), tmp_path / "h.onnx")
    m = ONNXModel(path)
    assert m.dtype == np.float16 and m.layout is None
    out = m(np.ones((2, 4), np.float32))
    assert out.dtype == np.float16 and out.shape == (2, 3)


def test_accuracy_of_a_model_on_its_own_labels(tmp_path):
    path = onnx_models.save(onnx_models.linear(), tmp_path / "l.onnx")
    m = ONNXModel(path)
    x = np.random.default_rng(0).uniform(0, 1, (20, 4)).astype(np.float32)
    y = np.argmax(m(x), axis=-1)
    assert m.accuracy(x, y, batch=7) == 1.0
    assert m.accuracy(x, (y + 1) % 3) == 0.0


def test_a_gpu_provider_comes_first_when_there_is_one():
    assert providers(["CPUExecutionProvider", "CUDAExecutionProvider"]) == [
        "CUDAExecutionProvider",
        "CPUExecutionProvider",
    ]
    assert providers(["CPUExecutionProvider"]) == ["CPUExecutionProvider"]


def test_layout_is_judged_by_the_small_channel_dim():
    assert layout_of(["batch", 3, 224, 224]) == "NCHW"
    assert layout_of(["batch", 224, 224, 3]) == "NHWC"
    assert layout_of(["batch", 16, 16, 16]) is None and layout_of(["batch", 4]) is None
