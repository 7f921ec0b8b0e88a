import numpy as np
import onnx
import pytest
from onnx import helper, numpy_helper

from fixtures import onnx_models as M
from model_checks.backends.onnx.facts import facts, precision_of


def test_facts_of_a_linear_model():
    f = facts(M.linear(opset=15))
    assert f.opset == 15 and f.precision == "fp32"
    assert [i.name for i in f.inputs] == ["input"] and f.inputs[0].shape == ("batch", 4)
    assert f.outputs[0].dtype == "float32" and dict(f.ops) == {"MatMul": 1, "Add": 1}


def test_fp16_weights():
    assert precision_of(M.linear(dtype=np.float16))[0] == "fp16"


def test_mixed_float_weights():
    m = M.linear(n_in=8, n_out=8)
    m.graph.initializer.append(numpy_helper.from_array(np.ones((8, 8), np.float16), "half"))
    prec, why = precision_of(m)
    assert prec == "mixed" and "float16" in why and "float32" in why


def test_quantized_graph_is_int8_or_uint8_by_its_weights():
    for dtype, name in ((np.int8, "int8"), (np.uint8, "uint8")):
        w = numpy_helper.from_array(np.ones((4, 3), dtype), "Wq")
        s = numpy_helper.from_array(np.array(0.1, np.float32), "s")
        z = numpy_helper.from_array(np.array(0, dtype), "z")
        g = helper.make_graph(
            [
                helper.make_node("DequantizeLinear", ["Wq", "s", "z"], ["W"]),
                helper.make_node("MatMul", ["input", "W"], ["logits"]),
            ],
            "q",
            [helper.make_tensor_value_info("input", onnx.TensorProto.FLOAT, ["batch", 4])],
            [helper.make_tensor_value_info("logits", onnx.TensorProto.FLOAT, ["batch", 3])],
            [w, s, z],
        )
        prec, why = precision_of(helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)]))
        assert prec == name and "DequantizeLinear" in why


def test_optimization_leftovers():
    f = facts(M.conv_bn(dead_node=True, bias_add=True))
    assert f.optimization_leftovers["fuse_bn_into_conv"][1] == ("bn",)
    assert f.optimization_leftovers["eliminate_deadend"][1] == ("dead_neg",)
    assert f.optimization_leftovers["fuse_add_bias_into_conv"][1] == ("bias_add",)
    clean = facts(M.conv_bn(fused=True))
    assert not any(nodes for _, nodes in clean.optimization_leftovers.values())


@pytest.mark.parametrize(
    "runtime, ok",
    [
        ("onnxruntime 1.17", True),
        ("onnxruntime >=1.0,<99", True),
        ("onnxruntime 0.5", False),
        ("onnxruntime >=99", False),
        ("notapackage 1.0", False),
        ("onnxruntime", False),
    ],
)
def test_runtime_requirements(runtime, ok):
    from model_checks.checks.metadata import _runtime_problem

    assert (_runtime_problem(runtime) is None) == ok


def test_bare_version_means_same_major():
    from model_checks.checks.metadata import runtime_specifier

    assert str(runtime_specifier("onnxruntime 1.18.0")[1]) in ("<2,>=1.18.0", ">=1.18.0,<2")
