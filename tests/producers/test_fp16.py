"""fp16 conversion, with and without fp32 I/O, checked before writing and then by the gate."""

from __future__ import annotations

import numpy as np
import pytest

from model_checks.producers.fp16 import to_fp16
from model_checks.producers.package import package
from model_checks.producers.verify import ProducerError
from tests.producers.helpers import assert_passes

FP16 = {"rel_l2": 1e-2, "mae": None}


def test_keep_io_types_compares_like_dtypes_with_fp32(fp32_onnx, images, gate):
    root = fp32_onnx.parent.parent
    r = to_fp16(fp32_onnx, root / "fp16" / "model.onnx", keep_io_types=True, samples={"input": images})
    assert r.size_bytes < 0.6 * r.source_bytes and r.comparison.worst("rel_l2") < 1e-2
    p = package(
        r.path,
        r.path.parent,
        model_name="fp16",
        reference=fp32_onnx,
        samples=images,
        tolerance=FP16,
        optimization=["fp16", "keep_io_types"],
        runs=3,
    )
    assert p.manifest["precision"] == "fp16" and p.manifest["inputs"][0]["dtype"] == "float32"
    assert_passes(gate(root, r.path.parent, "integrity", "metadata", "equivalence"))


def test_without_io_types_the_model_takes_fp16(fp32_onnx, gate):
    root = fp32_onnx.parent.parent
    r = to_fp16(fp32_onnx, root / "fp16io" / "model.onnx", keep_io_types=False)
    p = package(r.path, r.path.parent, model_name="fp16io", runs=3)
    assert p.manifest["inputs"][0]["dtype"] == "float16" and p.manifest["outputs"][0]["dtype"] == "float16"
    assert_passes(gate(root, r.path.parent, "integrity", "metadata"))


def test_a_model_fp16_breaks_is_not_written(tmp_path):
    from fixtures import onnx_models

    src = onnx_models.save(onnx_models.linear(scale=1e6), tmp_path / "big.onnx")  # weights past fp16's range
    out = tmp_path / "half.onnx"
    with pytest.raises(ProducerError, match="fp16 conversion: outputs differ"):
        to_fp16(src, out, samples={"input": np.ones((2, 4), np.float32)})
    assert not out.exists()
