"""onnxoptimizer passes: the fused graph shows what the manifest claims, outputs match, bad passes named."""

from __future__ import annotations

import onnx
import pytest

from fixtures import onnx_models
from model_checks.producers import optimize as opt
from model_checks.producers.package import package
from model_checks.producers.verify import ProducerError
from tests.producers.helpers import assert_passes


def test_bn_fusion_on_an_exported_cnn_and_the_gate_sees_it(fp32_onnx, images, gate):
    root = fp32_onnx.parent.parent
    assert "BatchNormalization" in {n.op_type for n in onnx.load(str(fp32_onnx)).graph.node}
    r = opt.optimize(fp32_onnx, root / "opt" / "model.onnx", samples={"input": images})
    assert [n.op_type for n in onnx.load(str(r.path)).graph.node] == ["Conv", "Relu", "Flatten", "Gemm"]
    claims = ["eliminate_deadend", "fuse_add_bias_into_conv", "fuse_bn_into_conv"]
    package(r.path, r.path.parent, model_name="opt", reference=fp32_onnx, samples=images, optimization=claims, runs=3)
    assert_passes(gate(root, r.path.parent, "metadata", "equivalence"))


def test_dead_nodes_and_bias_adds_go(tmp_path, gate):
    root = tmp_path / "root"
    src = onnx_models.save(onnx_models.conv_bn(fused=True, dead_node=True, bias_add=True), root / "src" / "model.onnx")
    r = opt.optimize(src, root / "opt" / "model.onnx")
    ops = [n.op_type for n in onnx.load(str(r.path)).graph.node]
    assert "Neg" not in ops and "Add" not in ops and r.nodes_after < r.nodes_before
    package(
        r.path,
        r.path.parent,
        model_name="opt",
        reference=src,
        optimization=["eliminate_deadend", "fuse_add_bias_into_conv"],
        runs=3,
    )
    assert_passes(gate(root, r.path.parent, "metadata", "equivalence"))


def test_the_gate_catches_a_claimed_fusion_that_did_not_happen(tmp_path, gate):
    root = tmp_path / "root"
    src = onnx_models.save(onnx_models.conv_bn(), root / "src" / "model.onnx")
    r = opt.optimize(src, root / "opt" / "model.onnx", passes=["eliminate_deadend"])
    package(r.path, r.path.parent, model_name="opt", optimization=["fuse_bn_into_conv"], runs=3)
    (meta,) = gate(root, r.path.parent, "metadata")
    assert not meta and "claims fuse_bn_into_conv, but BatchNormalization nodes remain" in str(meta)


def test_unknown_pass_names_the_closest(tmp_path):
    src = onnx_models.save(onnx_models.conv_bn(), tmp_path / "m.onnx")
    with pytest.raises(
        ProducerError, match="passes: 'fuse_bn_into_cnv' is not an onnxoptimizer pass; did you mean 'fuse_bn_into_conv'"
    ):
        opt.optimize(src, tmp_path / "o.onnx", passes=["fuse_bn_into_cnv"])


def test_a_pass_that_changes_outputs_is_not_written(tmp_path, monkeypatch):
    import onnxoptimizer

    src = onnx_models.save(onnx_models.conv_bn(seed=0), tmp_path / "m.onnx")
    monkeypatch.setattr(onnxoptimizer, "optimize", lambda model, passes: onnx_models.conv_bn(seed=1))  # a broken pass
    out = tmp_path / "o.onnx"
    with pytest.raises(ProducerError, match="optimize: outputs differ from the source model"):
        opt.optimize(src, out)
    assert not out.exists()
