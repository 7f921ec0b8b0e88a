"""PyTorch -> ONNX through both exporters: named I/O, a dynamic batch, checked against PyTorch, then gated."""

from __future__ import annotations

import onnx
import pytest
import torch

from model_checks.producers.package import package
from model_checks.producers.torch_export import export_onnx
from model_checks.producers.verify import ProducerError
from tests.producers.helpers import assert_passes, make_cnn, record


@pytest.mark.parametrize("exporter", ["torchscript", "dynamo"])
def test_export_names_a_dynamic_batch_and_matches_pytorch_in_the_gate(tmp_path, cnn, images, gate, exporter):
    root = tmp_path / "root"
    d = root / exporter
    result = export_onnx(
        cnn,
        torch.from_numpy(images[:4]),
        d / "model.onnx",
        input_names=("pixels",),
        output_names=("logits",),
        exporter=exporter,
        opset=18 if exporter == "dynamo" else 17,
    )
    assert result.exporter == exporter and result.comparison
    model = onnx.load(str(d / "model.onnx"))
    assert [i.name for i in model.graph.input] == ["pixels"] and [o.name for o in model.graph.output] == ["logits"]
    assert model.graph.input[0].type.tensor_type.shape.dim[0].dim_param == "batch"
    with torch.no_grad():
        eager = cnn(torch.from_numpy(images)).numpy()
    record(d / "eager.npz", {"pixels": images}, {"logits": eager})  # PyTorch's outputs at batch 32, as the reference
    package(
        d / "model.onnx",
        d,
        model_name=f"cnn_{exporter}",
        reference=d / "eager.npz",
        limits={"dynamic_axes": ["batch"]},
        runs=3,
    )
    assert_passes(gate(root, d, "integrity", "metadata", "limits", "equivalence"))


def test_fold_constants_off_keeps_batchnorm_for_the_optimizer(fp32_onnx):
    ops = {n.op_type for n in onnx.load(str(fp32_onnx)).graph.node}
    assert "BatchNormalization" in ops


def test_export_refuses_bad_arguments_and_writes_nothing(tmp_path, cnn, images):
    out = tmp_path / "m.onnx"
    with pytest.raises(ProducerError, match="exporter: 'onnx' is not one of torchscript, dynamo"):
        export_onnx(cnn, torch.from_numpy(images[:2]), out, exporter="onnx")
    with pytest.raises(ProducerError, match=r"input_names: 2 name\(s\)"):
        export_onnx(cnn, torch.from_numpy(images[:2]), out, input_names=("a", "b"))
    with pytest.raises(ProducerError, match=r"output_names: 2 name\(s\) \['a', 'b'\] for 1 model output"):
        export_onnx(cnn, torch.from_numpy(images[:2]), out, output_names=("a", "b"))
    assert not out.exists()


def test_export_refuses_a_model_onnx_cannot_reproduce(tmp_path, cnn, images, monkeypatch):
    """The check before writing is real: an exporter that returns another model's graph is caught."""
    from model_checks.producers import torch_export

    other = make_cnn(seed=1)
    real = torch_export._export_bytes
    monkeypatch.setattr(torch_export, "_export_bytes", lambda model, *a, **kw: real(other, *a, **kw))
    out = tmp_path / "m.onnx"
    with pytest.raises(ProducerError, match="outputs differ from the source model; nothing was written"):
        export_onnx(cnn, torch.from_numpy(images[:2]), out)
    assert not out.exists()
