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


_MODULE = """
import torch


class Small(torch.nn.Module):
    def __init__(self):
        super().__init__()
        torch.manual_seed(0)
        self.linear = torch.nn.Linear(4, 3)

    def forward(self, x):
        return torch.relu(self.linear(x))
"""


def _small_from(directory) -> torch.nn.Module:
    """`Small` as module `small_model` from a file in `directory`: the same code, another path."""
    import importlib.util
    import sys

    directory.mkdir(parents=True)
    (directory / "small_model.py").write_text(_MODULE)
    spec = importlib.util.spec_from_file_location("small_model", directory / "small_model.py")
    module = importlib.util.module_from_spec(spec)
    sys.modules["small_model"] = module
    try:
        spec.loader.exec_module(module)
        return module.Small()
    finally:
        del sys.modules["small_model"]


def test_the_dynamo_export_holds_no_build_path_and_is_the_same_from_another_checkout(tmp_path):
    """The dynamo exporter notes each node's source lines, with the build machine's absolute paths: the same model
    from two checkouts gave two files, each naming its checkout and the Python install."""
    example = torch.randn(2, 4)
    data = []
    for checkout in ("one", "elsewhere/two"):
        out = tmp_path / checkout / "model.onnx"
        export_onnx(_small_from(tmp_path / checkout / "src"), example, out, exporter="dynamo", opset=18)
        data.append(out.read_bytes())
    assert data[0] == data[1]
    assert str(tmp_path).encode() not in data[0] and torch.__file__.rsplit("/", 2)[0].encode() not in data[0]
    notes = {p.key for n in onnx.load_from_string(data[0]).graph.node for p in n.metadata_props}
    assert "pkg.torch.onnx.fx_node" in notes and "pkg.torch.onnx.stack_trace" not in notes
    kept = tmp_path / "kept.onnx"
    export_onnx(_small_from(tmp_path / "kept"), example, kept, exporter="dynamo", opset=18, keep_debug=True)
    assert str(tmp_path / "kept" / "small_model.py").encode() in kept.read_bytes()  # asked for: kept


def test_stack_traces_go_from_subgraphs_and_functions_too():
    from onnx import helper

    from model_checks.producers.torch_export import STACK_TRACE_KEY, _without_stack_traces

    def noted(node):
        helper.set_metadata_props(node, {STACK_TRACE_KEY: 'File "/home/me/model.py", line 3', "keep": "me"})
        return node

    branch = helper.make_graph([noted(helper.make_node("Identity", ["x"], ["y"]))], "branch", [], [])
    cond = noted(helper.make_node("If", ["c"], ["y"], then_branch=branch, else_branch=branch))
    graph = helper.make_graph([cond], "main", [], [])
    function = helper.make_function("local", "f", ["x"], ["y"], [noted(helper.make_node("Relu", ["x"], ["y"]))], [])
    model = _without_stack_traces(helper.make_model(graph, functions=[function]))
    every = [model.graph.node[0], *model.graph.node[0].attribute[0].g.node, *model.functions[0].node]
    assert len(every) == 3 and all([(p.key, p.value) for p in n.metadata_props] == [("keep", "me")] for n in every)
