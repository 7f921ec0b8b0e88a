"""The calibration adapter reads the input name and dtype from the model and takes arrays, lists, generators,
feed dicts and .npz files; bad sources name what is wrong."""

from __future__ import annotations

import numpy as np
import pytest

from fixtures import onnx_models
from model_checks.producers.calibration import CalibrationReader
from model_checks.producers.verify import ProducerError

X = (
    np.random.default_rng(0).uniform(0, 1, (10, 4)).astype(np.float64)
)  # float64: the reader casts to the model's float32


@pytest.fixture
def model(tmp_path):  # type: ignore[no-untyped-def]
    return onnx_models.save(onnx_models.linear(in_name="features"), tmp_path / "linear.onnx")


def batches(reader: CalibrationReader) -> list[np.ndarray]:
    out = []
    for feed in reader:
        assert list(feed) == ["features"] and feed["features"].dtype == np.float32
        out.append(feed["features"])
    return out


def _npz(path, **arrays):  # type: ignore[no-untyped-def]
    np.savez(path, **arrays)
    return path


@pytest.mark.parametrize(
    "kind", ["array", "list", "generator", "dicts", "npz-by-input", "npz-x", "npz-single", "samples"]
)
def test_every_source_gives_the_same_batches(tmp_path, model, kind):
    source = {
        "array": lambda: X,
        "list": lambda: [X[i : i + 4] for i in range(0, 10, 4)],
        "generator": lambda: (X[i : i + 4] for i in range(0, 10, 4)),
        "dicts": lambda: [{"features": X[i : i + 4]} for i in range(0, 10, 4)],
        "npz-by-input": lambda: _npz(tmp_path / "a.npz", features=X, other=X[:1]),
        "npz-x": lambda: _npz(tmp_path / "b.npz", x=X, y=np.zeros(10)),
        "npz-single": lambda: _npz(tmp_path / "c.npz", whatever=X),
        "samples": lambda: [row for row in X],  # single samples, no batch dim: one is added
    }[kind]()
    got = batches(CalibrationReader(source, model, batch=4))
    joined = np.concatenate(got)
    np.testing.assert_array_equal(joined, X.astype(np.float32))
    assert len(got) == (10 if kind == "samples" else 3)


def test_limit_caps_the_batches(model):
    reader = CalibrationReader(X, model, batch=2, limit=2)
    assert len(batches(reader)) == 2 and reader.count == 2


def test_the_model_can_be_a_proto(model):
    import onnx

    assert CalibrationReader(X, onnx.load(str(model))).input_name == "features"


@pytest.mark.parametrize(
    "source, message",
    [
        ({"features": X}, "a dict is one feed"),
        (X[:, :2, None, None], r"shape \[10, 2, 1, 1\] for input 'features' of rank 2"),
        ([{"wrong": X}], "a feed dict has wrong, not the model's input 'features'"),
        (42, "int is neither an array"),
        ("missing.npz", "missing.npz is not an .npz file"),
    ],
)
def test_bad_sources_say_what_is_wrong(model, source, message):
    with pytest.raises(ProducerError, match=message):
        batches(CalibrationReader(source, model))


def test_an_npz_with_no_usable_array_names_the_input(tmp_path, model):
    path = _npz(tmp_path / "d.npz", a=X, b=X)
    with pytest.raises(ProducerError, match="name the one to use features"):
        batches(CalibrationReader(path, model))


def test_multi_input_models_are_refused(tmp_path):
    import onnx
    from onnx import TensorProto, helper

    g = helper.make_graph(
        [helper.make_node("Add", ["a", "b"], ["c"])],
        "add",
        [helper.make_tensor_value_info(n, TensorProto.FLOAT, [1]) for n in "ab"],
        [helper.make_tensor_value_info("c", TensorProto.FLOAT, [1])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    with pytest.raises(ProducerError, match="the model has 2 inputs"):
        CalibrationReader([], m)
    assert onnx.checker.check_model(m) is None
