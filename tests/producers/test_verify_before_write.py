"""Producers verify before they write: each failing instance is built here with onnx.helper, and the test asserts
the sentence a user sees (from the CLI, with its flags) and that nothing was written, or that the fix works."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto as T
from onnx import helper as h
from onnx import numpy_helper as nh

from model_checks.cli import main
from model_checks.producers import ort_quantize
from model_checks.producers.verify import ProducerError, onnx_outputs, verified


def run(argv: list[str], capsys) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    try:
        code = main([str(a) for a in argv])
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, " ".join((out.out + out.err).split())  # one line: argparse and our messages wrap


def conv_model(opset: int = 13, constant: bool = False, weight: str = "conv1_weights") -> onnx.ModelProto:
    """Conv -> Relu -> Flatten -> MatMul on [batch, 1, 8, 8], weights as initializers or as Constant nodes."""
    rng = np.random.default_rng(0)
    arrays = {
        weight: rng.normal(0, 0.5, (4, 1, 3, 3)).astype(np.float32),
        "b": np.zeros(4, np.float32),
        "fw": rng.normal(0, 0.3, (4 * 8 * 8, 10)).astype(np.float32),
    }
    nodes = [h.make_node("Constant", [], [k], value=nh.from_array(v, k)) for k, v in arrays.items()] if constant else []
    nodes += [
        h.make_node("Conv", ["x", weight, "b"], ["c"], pads=[1, 1, 1, 1], name="conv1"),
        h.make_node("Relu", ["c"], ["r"]),
        h.make_node("Flatten", ["r"], ["f"]),
        h.make_node("MatMul", ["f", "fw"], ["y"], name="fc"),
    ]
    g = h.make_graph(
        nodes,
        "cnn",
        [h.make_tensor_value_info("x", T.FLOAT, ["batch", 1, 8, 8])],
        [h.make_tensor_value_info("y", T.FLOAT, ["batch", 10])],
        [] if constant else [nh.from_array(v, k) for k, v in arrays.items()],
    )
    m = h.make_model(g, opset_imports=[h.make_opsetid("", opset)], ir_version=7)
    onnx.checker.check_model(m)
    return m


def save(model: onnx.ModelProto, path: Path) -> Path:
    onnx.save(model, str(path))
    return path


@pytest.fixture
def calib(tmp_path: Path) -> Path:
    path = tmp_path / "cal.npz"
    np.savez(path, x=np.random.default_rng(1).uniform(0, 1, (32, 1, 8, 8)).astype(np.float32))
    return path


def test_per_channel_on_opset_12_is_refused_with_the_fix_and_the_fix_works(tmp_path, calib, capsys):
    src = save(conv_model(opset=12), tmp_path / "m12.onnx")
    out = tmp_path / "q.onnx"
    code, text = run(["quantize", src, "--mode", "static", "--calibration", calib, "--out", out], capsys)
    assert code == 1 and not out.exists()
    assert (
        "quantize: per-channel quantization needs opset 13 or later (DequantizeLinear's axis), and m12.onnx is "
        "opset 12: "
        "the result would be an invalid model; nothing was written; upgrade it first (--upgrade-opset: "
        "onnx.version_converter "
        "to 13) or quantize per tensor (--no-per-channel)"
    ) in text
    with pytest.raises(ProducerError, match=r"upgrade it first \(upgrade_opset=True.*\(per_channel=False\)"):
        ort_quantize.quantize_static(src, out, calib)
    code, text = run(
        ["quantize", src, "--mode", "static", "--calibration", calib, "--upgrade-opset", "--out", out], capsys
    )
    assert code == 0, text
    q = onnx.load(str(out))
    onnx.checker.check_model(q)
    assert next(o.version for o in q.opset_import if o.domain == "") == 13
    code, text = run(
        [
            "quantize",
            src,
            "--mode",
            "static",
            "--calibration",
            calib,
            "--no-per-channel",
            "--out",
            tmp_path / "pt.onnx",
        ],
        capsys,
    )
    assert code == 0, text
    onnx.checker.check_model(onnx.load(str(tmp_path / "pt.onnx")))


def test_constant_weights_quantize_nothing_and_are_refused_until_converted(tmp_path, capsys):
    src = save(conv_model(constant=True), tmp_path / "const.onnx")
    out = tmp_path / "q.onnx"
    # pre-processing's graph optimization folds Constant nodes into initializers; without it (a model it fails on)
    # the quantizer sees no weight
    code, text = run(["quantize", src, "--no-preprocess", "--out", out], capsys)
    assert code == 1 and not out.exists()
    assert (
        "quantize: no weight was quantized: the weights are Constant nodes ('fw'); nothing was written; convert "
        "them to "
        "initializers first (--constants-to-initializers)"
    ) in text
    with pytest.raises(ProducerError, match=r"convert them to initializers first \(constants_to_initializers=True\)"):
        ort_quantize.quantize_dynamic(src, out, preprocess=False)
    code, text = run(["quantize", src, "--no-preprocess", "--constants-to-initializers", "--out", out], capsys)
    assert code == 0 and "1 weight(s) quantized" in text, text
    q = ort_quantize.quantize_dynamic(src, out, preprocess=False, constants_to_initializers=True)
    assert q.steps[0] == "constants_to_initializers" and q.quantized_weights == 1


def test_a_model_with_nothing_to_quantize_is_refused(tmp_path):
    g = h.make_graph(
        [h.make_node("Relu", ["x"], ["y"])],
        "g",
        [h.make_tensor_value_info("x", T.FLOAT, ["batch", 4])],
        [h.make_tensor_value_info("y", T.FLOAT, ["batch", 4])],
    )
    src = save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)], ir_version=7), tmp_path / "relu.onnx")
    with pytest.raises(ProducerError) as e:
        ort_quantize.quantize_dynamic(src, tmp_path / "q.onnx")
    assert str(e.value) == (
        "quantize: no weight was quantized: relu.onnx has no MatMul/Gemm node with a weight initializer the "
        "quantizer takes; nothing was written"
    )
    assert not (tmp_path / "q.onnx").exists()


def test_an_unsorted_graph_is_sorted_before_it_is_written(tmp_path, capsys):
    """onnxruntime loads a graph in any order; onnx.checker and every other tool want it sorted."""
    m = conv_model(opset=15)
    nodes = list(m.graph.node)
    del m.graph.node[:]
    m.graph.node.extend(reversed(nodes))  # onnxruntime loads it, onnx.checker does not
    with pytest.raises(onnx.checker.ValidationError, match="topologically sorted"):
        onnx.checker.check_model(m)
    src = save(m, tmp_path / "unsorted.onnx")
    out = tmp_path / "o.onnx"
    code, text = run(["optimize", src, "--out", out], capsys)  # onnxoptimizer keeps the order it is given
    assert code == 0, text
    assert "outputs match the input model; nodes sorted topologically (onnx.checker requires it)" in text
    onnx.checker.check_model(onnx.load(str(out)))


def test_pre_processing_fails_in_one_sentence_naming_the_step_and_leaves_nothing_behind(tmp_path, capsys, monkeypatch):
    w = np.random.default_rng(0).normal(size=(8, 8)).astype(np.float32)
    g = h.make_graph(
        [h.make_node("MatMul", ["x", "w"], ["a"]), h.make_node("Foo", ["a"], ["y"], domain="com.example")],
        "g",
        [h.make_tensor_value_info("x", T.FLOAT, ["batch", 8])],
        [h.make_tensor_value_info("y", T.FLOAT, ["batch", 8])],
        [nh.from_array(w, "w")],
    )
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13), h.make_opsetid("com.example", 1)], ir_version=7)
    src = save(m, tmp_path / "custom.onnx")
    work = tmp_path / "cwd"
    work.mkdir()
    monkeypatch.chdir(work)
    code, text = run(["quantize", src, "--out", tmp_path / "q.onnx"], capsys)
    assert code == 1 and "Traceback" not in text
    assert (
        "quantize: pre-processing (onnxruntime's quant_pre_process) failed at symbolic shape inference on custom.onnx: "
        "Exception: Incomplete symbolic shape inference; nothing was written; quantize without it (--no-preprocess)"
    ) in text
    assert (
        os.listdir(work) == []
    )  # onnxruntime saves sym_shape_infer_temp.onnx and a <uuid>.data in the working directory
    assert not (tmp_path / "q.onnx").exists()


def test_pre_processing_names_an_assertion_without_a_message(tmp_path, monkeypatch):
    from onnxruntime.quantization import shape_inference

    def fails(*_args, **_kwargs):  # symbolic shape inference's bare `assert`s fail this way
        raise AssertionError()

    monkeypatch.setattr(shape_inference, "quant_pre_process", fails)
    src = save(conv_model(), tmp_path / "m.onnx")
    with pytest.raises(ProducerError) as e:
        ort_quantize.preprocess(src, tmp_path / "pre.onnx")
    assert str(e.value) == (
        "quantize: pre-processing (onnxruntime's quant_pre_process) failed at symbolic shape inference on m.onnx: "
        "AssertionError with no message; nothing was written; quantize without it (preprocess=False)"
    )


def test_quantization_out_of_tolerance_is_refused(tmp_path, calib, capsys):
    src = save(conv_model(), tmp_path / "m.onnx")
    out = tmp_path / "q.onnx"
    code, text = run(
        ["quantize", src, "--mode", "static", "--calibration", calib, "--tolerance", "rel_l2=1e-7", "--out", out],
        capsys,
    )
    assert code == 1 and not out.exists()
    assert (
        "quantize (static int8): outputs differ from the source model; nothing was written; keep the nodes that "
        "lose most in "
        "float (--exclude NODE: model-checks localize names them) or pass a looser --tolerance"
    ) in text
    assert "rel_l2" in text and "1e-07" in text


def _weights(path: Path) -> np.ndarray:
    q = onnx.load(str(path))
    return np.concatenate(
        [nh.to_array(i).ravel().astype(np.int32) for i in q.graph.initializer if i.data_type == T.INT8 and i.dims]
    )


def test_the_default_target_is_portable_and_says_so(tmp_path, calib, capsys):
    """x86 CPUs without VNNI sum pairs of u8 x s8 products in int16 (VPMADDUBSW): with weights within [-64, 64],
    2 x 255 x 64 = 32640 fits; full-range int8 weights can reach 2 x 255 x 127 = 64770 and saturate."""
    src = save(conv_model(), tmp_path / "m.onnx")
    code, text = run(
        ["quantize", src, "--mode", "static", "--calibration", calib, "--out", tmp_path / "q.onnx"], capsys
    )
    assert code == 0, text
    assert (
        "target portable: int8 weights per channel in 7 bits (reduce_range: [-64, 64]), uint8 activations "
        "(7-bit weights: "
        "no 16-bit pair sum can saturate in the U8S8 kernels of x86 CPUs without VNNI (VPMADDUBSW)"
    ) in text
    w = _weights(tmp_path / "q.onnx")
    assert w.min() >= -64 and w.max() <= 64
    code, text = run(["quantize", src, "--mode", "dynamic", "--out", tmp_path / "d.onnx"], capsys)
    assert code == 0 and "target portable: int8 weights in 7 bits" in text, text
    w = _weights(tmp_path / "d.onnx")
    assert w.min() >= -64 and w.max() <= 64
    code, text = run(
        [
            "quantize",
            src,
            "--mode",
            "static",
            "--calibration",
            calib,
            "--target",
            "x86-vnni",
            "--out",
            tmp_path / "v.onnx",
        ],
        capsys,
    )
    assert code == 0 and "target x86-vnni: int8 weights per channel, uint8 activations" in text, text
    assert np.abs(_weights(tmp_path / "v.onnx")).max() > 64  # full 8 bits where VNNI sums in 32 bits
    code, text = run(
        [
            "quantize",
            src,
            "--mode",
            "static",
            "--calibration",
            calib,
            "--no-reduce-range",
            "--out",
            tmp_path / "n.onnx",
        ],
        capsys,
    )
    assert code == 0 and "but reduce_range is off: on x86 without VNNI its int8 kernels can saturate" in text, text


def test_the_chosen_target_is_recorded_as_producer_steps(tmp_path, calib):
    src = save(conv_model(), tmp_path / "m.onnx")
    q = ort_quantize.quantize_static(src, tmp_path / "q.onnx", calib, target="arm64")
    assert q.steps == ("quant_pre_process", "quantize_qdq", "target_arm64", "per_channel")
    assert q.settings.activation_type == "int8" and not q.settings.reduce_range


def if_model_with_a_cast_in_a_branch() -> onnx.ModelProto:
    """An If whose then-branch casts a shape to float: onnxconverter-common makes the value float16, leaves the Cast."""
    then = h.make_graph(
        [
            h.make_node("Shape", ["x"], ["sh"]),
            h.make_node("Cast", ["sh"], ["shf"], to=T.FLOAT),
            h.make_node("ReduceSum", ["shf"], ["n"], keepdims=1),
            h.make_node("Mul", ["x", "n"], ["t"]),
        ],
        "then",
        [],
        [h.make_tensor_value_info("t", T.FLOAT, ["batch", 4])],
    )
    other = h.make_graph(
        [h.make_node("Add", ["x", "two"], ["e"])], "else", [], [h.make_tensor_value_info("e", T.FLOAT, ["batch", 4])]
    )
    g = h.make_graph(
        [
            h.make_node("ReduceSum", ["x"], ["s"], keepdims=0),
            h.make_node("Greater", ["s", "zero"], ["c"]),
            h.make_node("If", ["c"], ["y"], then_branch=then, else_branch=other),
        ],
        "g",
        [h.make_tensor_value_info("x", T.FLOAT, ["batch", 4])],
        [h.make_tensor_value_info("y", T.FLOAT, ["batch", 4])],
        [nh.from_array(np.array(2.0, np.float32), "two"), nh.from_array(np.array(0.0, np.float32), "zero")],
    )
    m = h.make_model(g, opset_imports=[h.make_opsetid("", 13)], ir_version=7)
    onnx.checker.check_model(m)
    return m


def test_fp16_converts_a_model_with_if_subgraphs(tmp_path, capsys):
    src = save(if_model_with_a_cast_in_a_branch(), tmp_path / "if.onnx")
    for keep in ("--keep-io-types", "--no-keep-io-types"):
        code, text = run(["fp16", src, keep, "--out", tmp_path / "half.onnx"], capsys)
        assert code == 0 and "worst rel_l2 against fp32" in text, (
            text
        )  # was onnxruntime's traceback: Type Error ... (shf)


def test_a_result_onnxruntime_refuses_is_one_sentence(tmp_path):
    m = if_model_with_a_cast_in_a_branch()
    feeds = {"x": np.ones((2, 4), np.float32)}
    want = onnx_outputs(m.SerializeToString(), feeds)
    then = next(a.g for a in m.graph.node[2].attribute if a.name == "then_branch")
    then.node[1].attribute[0].i = T.DOUBLE  # the branch now yields a double where float is declared
    with pytest.raises(ProducerError) as e:
        verified(m, "fp16 conversion", feeds, want, hint="try keeping fp32 inputs and outputs")
    text = str(e.value)
    assert text.startswith("fp16 conversion: onnxruntime cannot run the result (") and "Traceback" not in text
    assert text.endswith("; nothing was written; try keeping fp32 inputs and outputs")


def test_optimize_folds_an_opset_12_unsqueeze(tmp_path, capsys):
    g = h.make_graph(
        [h.make_node("Unsqueeze", ["c"], ["cu"], axes=[0]), h.make_node("Add", ["x", "cu"], ["y"])],
        "g",
        [h.make_tensor_value_info("x", T.FLOAT, ["batch", 4])],
        [h.make_tensor_value_info("y", T.FLOAT, ["batch", 4])],
        [nh.from_array(np.arange(4, dtype=np.float32), "c")],
    )
    src = save(h.make_model(g, opset_imports=[h.make_opsetid("", 12)], ir_version=7), tmp_path / "u12.onnx")
    code, text = run(["optimize", src, "--out", tmp_path / "o.onnx"], capsys)
    assert code == 0 and "2 -> 1 nodes; outputs match the input model" in text, text  # was TypeError ... 'Unsqueeze_13'
    assert [n.op_type for n in onnx.load(str(tmp_path / "o.onnx")).graph.node] == ["Add"]


def test_to_torch_converts_constant_weights(tmp_path, capsys):
    if importlib.util.find_spec("onnx2torch") is None:
        pytest.skip("onnx2torch is not installed")
    src = save(conv_model(constant=True), tmp_path / "c.onnx")
    code, text = run(["to-torch", src, tmp_path / "c.pt"], capsys)
    assert code == 0 and "matches onnxruntime" in text, text  # was KeyError: 'conv1_weights'


def test_without_samples_the_cli_asks_for_its_flag_not_for_metadata(tmp_path, capsys):
    g = h.make_graph(
        [h.make_node("Cast", ["ids"], ["f"], to=T.FLOAT), h.make_node("MatMul", ["f", "w"], ["y"])],
        "g",
        [h.make_tensor_value_info("ids", T.INT64, ["batch", 4])],
        [h.make_tensor_value_info("y", T.FLOAT, ["batch", 4])],
        [nh.from_array(np.eye(4, dtype=np.float32), "w")],
    )
    src = save(h.make_model(g, opset_imports=[h.make_opsetid("", 13)], ir_version=7), tmp_path / "ids.onnx")
    for command in (["fp16"], ["optimize"], ["quantize"]):
        code, text = run([*command, src, "--out", tmp_path / "o.onnx"], capsys)
        assert code == 1 and "metadata.yaml" not in text, text
        assert (
            f"{command[0]}: cannot compare the result with its source on generated inputs: input 'ids' (int64) "
            f"has no range the "
            "graph proves (an index into an embedding's rows), so seeded values could be ids the model cannot "
            "take; nothing "
            "was written; pass --samples FILE.npz (arrays named by input: 'ids')"
        ) in text
    np.savez(tmp_path / "s.npz", ids=np.arange(8, dtype=np.int64).reshape(2, 4))
    code, text = run(["fp16", src, "--samples", tmp_path / "s.npz", "--out", tmp_path / "o.onnx"], capsys)
    assert code == 0, text


def test_package_refuses_a_model_onnx_checker_refuses(tmp_path, capsys):
    """What onnxruntime's quantizer writes for a per-channel opset-12 graph: DequantizeLinear with `axis`."""
    w = nh.from_array(np.ones((2, 4), np.int8), "w_q")
    scale, zero = nh.from_array(np.ones(2, np.float32), "s"), nh.from_array(np.zeros(2, np.int8), "z")
    g = h.make_graph(
        [h.make_node("DequantizeLinear", ["w_q", "s", "z"], ["w"], axis=0), h.make_node("MatMul", ["x", "w"], ["y"])],
        "g",
        [h.make_tensor_value_info("x", T.FLOAT, ["batch", 2])],
        [h.make_tensor_value_info("y", T.FLOAT, ["batch", 4])],
        [w, scale, zero],
    )
    src = save(h.make_model(g, opset_imports=[h.make_opsetid("", 12)], ir_version=7), tmp_path / "bad.onnx")
    code, text = run(["package", src, "--out", tmp_path / "root" / "bad", "--name", "bad", "--runs", "1"], capsys)
    assert code == 1 and not (tmp_path / "root" / "bad").exists()
    assert (
        "package: bad.onnx is not a valid ONNX model (onnx.checker: ValidationError: Unrecognized attribute: "
        "axis for operator "
        "DequantizeLinear"
    ) in text and text.endswith("nothing was written")


def test_samples_the_source_cannot_take_are_one_sentence(tmp_path, capsys):
    src = save(conv_model(), tmp_path / "m.onnx")
    np.savez(tmp_path / "s.npz", image=np.zeros((2, 1, 8, 8), np.float32))  # the model's input is named x
    for command in ("fp16", "optimize", "quantize"):
        code, text = run([command, src, "--samples", tmp_path / "s.npz", "--out", tmp_path / "o.onnx"], capsys)
        assert code == 1 and "Traceback" not in text and not (tmp_path / "o.onnx").exists()
        assert f"{command}: onnxruntime cannot run the source model m.onnx on the inputs to compare on (" in text
        assert text.endswith("; nothing was written; check the names and shapes of the arrays in --samples")
