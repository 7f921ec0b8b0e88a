"""onnxruntime quantization: dynamic int8/uint8 and static QDQ int8 from each calibration source, with the
pre-processing step; each result packaged against its fp32 model and passed by the gate."""

from __future__ import annotations

import numpy as np
import onnx
import pytest

from model_checks.producers import ort_quantize
from model_checks.producers.package import package
from model_checks.producers.verify import ProducerError, onnx_outputs
from tests.producers.helpers import assert_passes

# int8 on a small random CNN: the class agrees, the logits move by a few percent
INT8_TOLERANCE = {"rel_l2": 0.1, "mae": None, "top1_agreement": 0.9}


def _package_and_gate(gate, fp32, q, images, precision):  # type: ignore[no-untyped-def]
    root = fp32.parent.parent
    p = package(
        q.path,
        q.path.parent,
        model_name=q.path.parent.name,
        root=root,
        reference=fp32,
        samples=images,
        tolerance=INT8_TOLERANCE,
        optimization=list(q.steps),
        runs=3,
    )
    assert p.manifest["precision"] == precision
    results = gate(root, q.path.parent, "integrity", "metadata", "equivalence")
    assert_passes(results)
    return results


@pytest.mark.parametrize("weight_type", ["int8", "uint8"])
def test_dynamic(fp32_onnx, images, gate, weight_type):
    out = fp32_onnx.parent.parent / f"dyn_{weight_type}" / "model.onnx"
    q = ort_quantize.quantize_dynamic(fp32_onnx, out, weight_type=weight_type)
    portable = ("target_portable", "reduce_range") if weight_type == "int8" else ("target_portable",)
    assert q.steps == ("quant_pre_process", "quantize_dynamic", *portable) and q.size_bytes < q.source_bytes
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert "DynamicQuantizeLinear" in ops or "MatMulInteger" in ops
    _package_and_gate(gate, fp32_onnx, q, images, weight_type)


def _generator(images):  # type: ignore[no-untyped-def]
    for i in range(0, len(images), 8):
        yield images[i : i + 8]


@pytest.mark.parametrize("source", ["array", "generator", "npz"])
def test_static_qdq_from_each_source(fp32_onnx, images, gate, tmp_path, source):
    calibration = {
        "array": lambda: images,
        "generator": lambda: _generator(images),
        "npz": lambda: (np.savez(tmp_path / "cal.npz", input=images), tmp_path / "cal.npz")[1],
    }[source]()
    out = fp32_onnx.parent.parent / f"qdq_{source}" / "model.onnx"
    q = ort_quantize.quantize_static(fp32_onnx, out, calibration, batch=8)
    assert q.calibration_batches == 4 and q.per_channel and "quantize_qdq" in q.steps
    ops = {n.op_type for n in onnx.load(str(out)).graph.node}
    assert {"QuantizeLinear", "DequantizeLinear"} <= ops
    _package_and_gate(gate, fp32_onnx, q, images, "int8")


def test_preprocess_keeps_the_function(fp32_onnx, images, tmp_path):
    pre = ort_quantize.preprocess(fp32_onnx, tmp_path / "pre.onnx")
    got, want = onnx_outputs(pre, {"input": images}), onnx_outputs(fp32_onnx, {"input": images})
    np.testing.assert_allclose(got["logits"], want["logits"], rtol=1e-4, atol=1e-5)
    assert all(v.type.tensor_type.HasField("shape") for v in onnx.load(str(pre)).graph.value_info)  # shapes inferred


def test_static_without_calibration_and_other_bad_arguments(fp32_onnx, tmp_path):
    out = tmp_path / "q.onnx"
    with pytest.raises(ProducerError, match="calibration: static quantization needs calibration data"):
        ort_quantize.quantize_static(fp32_onnx, out, None)
    with pytest.raises(ProducerError, match="weight_type: 'int4' is not one of int8, uint8"):
        ort_quantize.quantize_dynamic(fp32_onnx, out, weight_type="int4")
    with pytest.raises(ProducerError, match="model: .*nope.onnx does not exist"):
        ort_quantize.quantize_dynamic(tmp_path / "nope.onnx", out)
    with pytest.raises(ProducerError, match="calibration: the source yielded no batches"):
        ort_quantize.quantize_static(fp32_onnx, out, iter([]))
    assert not out.exists()
