"""Cross-framework feeding without a framework: layouts declared, detected and by convention."""

import numpy as np
import pytest

from model_checks.core.errors import ArtifactLoadError
from model_checks.core.layout import detect, feeds_for, layout_of, outputs_as
from model_checks.manifest.model import TensorSpec


@pytest.mark.parametrize(
    "shape, want",
    [
        ((1, 3, 32, 32), "NCHW"),
        ((1, 32, 32, 3), "NHWC"),
        (("b", 1, 28, 28), "NCHW"),
        (("b", "h", "w", 3), "NHWC"),
        ((1, 3, 3, 3), None),
        ((1, 8), None),
    ],
)
def test_detect(shape, want):
    assert detect(shape) == want


def test_declared_layout_wins_over_detection_and_convention():
    assert layout_of(TensorSpec("x", shape=(1, 3, 3, 3), layout="NHWC"), "torchscript") == "NHWC"
    assert layout_of(TensorSpec("x", shape=None), "keras") == "NHWC"  # convention when nothing tells
    assert layout_of(TensorSpec("x", shape=None), "onnx") is None


@pytest.mark.parametrize(
    "src_shape, dst_shape, dst_fmt", [((2, 3, 8, 8), ("?", 8, 8, 3), "keras"), ((2, 8, 8, 3), ("?", 3, 8, 8), "onnx")]
)
def test_feeds_transposed_and_renamed_by_order(src_shape, dst_shape, dst_fmt):
    x = np.arange(np.prod(src_shape), dtype=np.float32).reshape(src_shape)
    out = feeds_for(
        {"image": x},
        [TensorSpec("image", shape=src_shape)],
        "onnx",
        [TensorSpec("input_1", "float32", dst_shape)],
        dst_fmt,
    )
    assert list(out) == ["input_1"] and out["input_1"].shape == (2, *dst_shape[1:])
    back = np.moveaxis(out["input_1"], 3, 1) if src_shape[1] == 3 else np.moveaxis(out["input_1"], 1, 3)
    assert np.array_equal(back, x)


def test_outputs_by_name_then_order_and_transposed_feature_maps():
    got = {"scores": np.zeros((2, 4, 5, 5)), "aux": np.zeros((2, 3))}
    ref = {"output_0": np.ones((2, 5, 5, 4)), "output_1": np.ones((2, 3))}
    out = outputs_as(ref, got)
    assert list(out) == ["scores", "aux"] and out["scores"].shape == (2, 4, 5, 5)
    with pytest.raises(ArtifactLoadError, match="cannot be matched by order"):
        outputs_as({"a": ref["output_1"]}, got)
