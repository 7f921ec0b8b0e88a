"""The saturating int8 dot product of x86 without VNNI, emulated: checked against sums worked out by hand, and its
exact side against onnxruntime's own integer kernels."""

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import TensorProto, helper, numpy_helper

from fixtures import int8_models as Q
from model_checks.backends.onnx import int8


def test_a_pair_that_leaves_int16_is_clipped_and_counted():
    # one row, K = 4: pairs (200*127 + 200*127) = 50800 -> 32767 and (10*-128 + 3*5) = -1265 (fits)
    a = np.array([[200, 200, 10, 3]], np.uint8)
    w = np.array([[127], [127], [-128], [5]], np.int8)
    sat, exact, count = int8.saturating_pairs(a, w)
    assert exact.tolist() == [[50800 - 1265]]
    assert sat.tolist() == [[32767 - 1265]]
    assert count == 1


def test_a_negative_pair_saturates_at_the_bottom_and_an_odd_k_is_padded():
    a = np.array([[255, 255, 255]], np.uint8)
    w = np.array([[-128], [-128], [-128]], np.int8)
    sat, exact, count = int8.saturating_pairs(a, w)
    assert exact.tolist() == [[-255 * 128 * 3]]
    assert sat.tolist() == [[-32768 - 255 * 128]]  # (-65280 -> -32768) + the last product alone, paired with a zero
    assert count == 1


def test_seven_bit_weights_never_saturate_against_any_activation():
    a = np.full((3, 8), 255, np.uint8)
    w = np.full((8, 2), -64, np.int8)
    sat, exact, count = int8.saturating_pairs(a, w)
    assert count == 0 and (sat == exact).all()


def test_weight_range_decides_whether_a_kernel_can_saturate():
    full = int8.kernels(Q.qdq_matmul(weight_bits=8))
    reduced = int8.kernels(Q.qdq_matmul(weight_bits=7))
    assert [(k.name, k.op, k.kind, k.can_saturate) for k in full] == [("head/MatMul", "MatMul", "U8S8", True)]
    w = full[0].weight.astype(int)
    assert full[0].worst_pair() == 255 * max((w[0::2] + w[1::2]).max(), 0) > 32767
    assert [(k.kind, k.can_saturate, k.weight_range[1]) for k in reduced] == [("U8S8", False, 63)]
    assert int8.kernels(Q.qdq_matmul(act_signed=True))[0].kind == "S8S8"


def _conv_integer(x_shape, w, group=1, pads=(1, 1, 1, 1), strides=(1, 1)):
    nodes = [
        helper.make_node(
            "ConvInteger", ["x", "W", "x_zp"], ["y"], name="conv", group=group, pads=list(pads), strides=list(strides)
        )
    ]
    graph = helper.make_graph(
        nodes,
        "conv",
        [helper.make_tensor_value_info("x", TensorProto.UINT8, list(x_shape))],
        [helper.make_tensor_value_info("y", TensorProto.INT32, None)],
        [numpy_helper.from_array(w, "W"), numpy_helper.from_array(np.array(7, np.uint8), "x_zp")],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    return model


def test_the_convolution_patches_reduce_to_what_onnxruntime_computes():
    """The emulated im2col's exact accumulators, less the zero point's share, equal ConvInteger's (grouped and
    strided too): the patches hold what the kernel multiplies, padding included."""
    rng = np.random.default_rng(0)
    for group, strides in ((1, (1, 1)), (2, (2, 1))):
        x = rng.integers(0, 256, (2, 4, 5, 6), dtype=np.uint8)
        w = rng.integers(-128, 128, (6, 4 // group, 3, 3), dtype=np.int8)
        model = _conv_integer(x.shape, w, group, strides=strides)
        got = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"]).run(None, {"x": x})[0]
        sat, exact, count = int8.accumulators(int8.kernels(model)[0], x, zp_u8=7)
        zp_share = 7 * w.astype(np.int64).sum(axis=(1, 2, 3)).reshape(1, -1, 1, 1)
        assert exact.shape == got.shape and (exact - zp_share == got).all()
        assert count > 0 and (sat != exact).any()  # full-range random weights against u8: some pairs saturate


def test_simulation_of_a_saturating_model_differs_from_its_exact_run_and_a_seven_bit_one_does_not(tmp_path):
    feeds = {"input": np.random.default_rng(1).uniform(0, 1, (32, Q.K)).astype(np.float32)}
    for bits, saturates in ((8, True), (7, False)):
        path = tmp_path / f"q{bits}.onnx"
        onnx.save(Q.qdq_matmul(weight_bits=bits), str(path))
        sim = int8.simulate(path, feeds)
        moved = float(np.abs(sim.outputs["logits"] - sim.exact["logits"]).max())
        if saturates:
            assert sim.saturated["head/MatMul"] > 0 and moved > 1.0
        else:
            assert sim.saturated == {} and moved == 0.0


def test_in_one_pass_the_kernels_are_emulated_on_unsaturated_inputs_and_still_replaced(tmp_path):
    feeds = {"input": np.random.default_rng(1).uniform(0, 1, (32, Q.K)).astype(np.float32)}
    path = tmp_path / "q8.onnx"
    onnx.save(Q.qdq_matmul(weight_bits=8), str(path))
    chained, one_pass = int8.simulate(path, feeds), int8.simulate(path, feeds, propagate=False)
    assert chained.propagated and not one_pass.propagated
    assert one_pass.saturated == chained.saturated  # one kernel: nothing upstream to propagate
    assert np.array_equal(one_pass.outputs["logits"], chained.outputs["logits"])


def _feeds(n: int = 32) -> dict[str, np.ndarray]:
    return {"input": np.random.default_rng(1).uniform(0, 1, (n, Q.K)).astype(np.float32)}


def _simulated(tmp_path, model, name):  # type: ignore[no-untyped-def]
    path = tmp_path / f"{name}.onnx"
    onnx.save(model, str(path))
    return int8.simulate(path, _feeds())


@pytest.mark.parametrize("form", ["qat", "qgemm", "qgemm, quantized output"])
def test_every_form_of_the_same_int8_kernel_is_found_with_the_same_weights(form):
    """Quantization-aware training's export (a float weight quantized in the graph) and onnxruntime's QOperator Gemm
    (com.microsoft QGemm, its weight transposed) hold the weights qdq_matmul stores as int8."""
    model = {"qat": Q.qat_matmul(), "qgemm": Q.qgemm(), "qgemm, quantized output": Q.qgemm(quantized_output=True)}[form]
    (k,) = int8.kernels(model)
    (stored,) = int8.kernels(Q.qdq_matmul())
    assert (k.kind, k.can_saturate, k.worst_pair()) == ("U8S8", True, stored.worst_pair())
    assert np.array_equal(int8.reduction_matrix(k), int8.reduction_matrix(stored))


@pytest.mark.parametrize("form", ["qat", "qgemm", "qgemm, quantized output"])
def test_every_form_saturates_as_the_stored_int8_weights_do(tmp_path, form):
    model = {"qat": Q.qat_matmul(), "qgemm": Q.qgemm(), "qgemm, quantized output": Q.qgemm(quantized_output=True)}[form]
    sim, stored = _simulated(tmp_path, model, "form"), _simulated(tmp_path, Q.qdq_matmul(), "stored")
    assert list(sim.saturated.values()) == list(stored.saturated.values()) and sum(sim.saturated.values()) > 0
    moved, moved_stored = sim.outputs["logits"] - sim.exact["logits"], stored.outputs["logits"] - stored.exact["logits"]
    assert np.abs(moved_stored).max() > 1.0
    # a quantized output moves by whole steps of its scale, clipped to its range; a float one as the stored weights'
    atol = 0.2 if form == "qgemm, quantized output" else 1e-5
    assert np.allclose(np.minimum(moved, 0), np.minimum(moved_stored, 0), atol=atol), np.abs(moved - moved_stored).max()


@pytest.mark.parametrize("op", ["MatMul", "Gemm"])
def test_onnxruntime_quantizer_formats_predict_the_same_saturation(tmp_path, op):
    """One float model quantized by onnxruntime's quantize_static as QDQ and as QOperator runs the same MLAS kernels
    once onnxruntime has fused the QDQ one: the emulations agree. In the QOperator model the first kernel's output is
    int8 clipped at its zero point (the Relu) and a Gemm is com.microsoft QGemm; the saturated output is requantized
    from the whole accumulator, not from the exact output that the clip already cut."""
    models = Q.quantized_pair(tmp_path, op)
    qdq, qop = _simulated(tmp_path, models["qdq"], "qdq"), _simulated(tmp_path, models["qoperator"], "qop")
    assert sorted(qdq.saturated.values()) == sorted(qop.saturated.values()) and sum(qop.saturated.values()) > 0
    exact, moved = qdq.exact["logits"], qdq.outputs["logits"]
    assert np.allclose(qop.exact["logits"], exact, atol=1e-4)
    rel = np.linalg.norm(moved - exact) / np.linalg.norm(exact)
    rel_qop = np.linalg.norm(qop.outputs["logits"] - exact) / np.linalg.norm(exact)
    assert rel > 0.05 and abs(rel_qop - rel) < 0.01 * rel, (rel, rel_qop)


def test_a_quantized_output_is_requantized_from_its_accumulator_as_onnxruntime_does(tmp_path):
    """Where saturation moves nothing the requantized accumulator is what onnxruntime's QLinearMatMul gives: the
    integer sums, zero points and bias as its kernel takes them (bias and zero points of QGemm too)."""
    models = Q.quantized_pair(tmp_path, "Gemm")
    model = models["qoperator"]
    path = tmp_path / "qop.onnx"
    onnx.save(model, str(path))
    feeds = _feeds()
    first = int8.kernels(model)[0]
    inits = {i.name: numpy_helper.to_array(i) for i in model.graph.initializer}
    fetched = int8._fetch(model, feeds, {}, [first.act, first.output])
    act, exact_out = fetched[first.act], fetched[first.output]
    zp_u8 = int(inits[first.act_zp]) + (128 if act.dtype == np.int8 else 0)
    moved = np.ones(exact_out.shape, np.int64)  # every place moved by one accumulator unit: requantized everywhere
    requantized = int8._node_output(first, exact_out, moved, inits, fetched, act, zp_u8).astype(np.int64)
    raw = int8.accumulators(first, act, zp_u8)[1]  # the exact sums simulate keeps: the zero point taken out of them
    assert np.array_equal(int8._node_output(first, exact_out, moved, inits, fetched, act, zp_u8, raw), requantized)
    unit = float(inits[first.act_scale] * inits[first.weight_scale] / inits[first.out_scale])
    assert unit < 0.5  # one unit of the accumulator moves the output by less than half a step: mostly nothing
    assert np.abs(requantized - exact_out.astype(np.int64)).max() <= 1
    assert (requantized == exact_out).mean() > 0.95


def test_onnxruntime_own_ops_between_kernels_do_not_stop_the_emulation(tmp_path):
    """A com.microsoft op (QLinearAdd, as the QOperator quantizer writes a residual Add) feeding a kernel that can
    saturate: shape inference does not type its output, which is fetched untyped for onnxruntime to type, where a
    guessed float stopped the session from loading."""
    model = Q.qdq_matmul()
    nodes = list(model.graph.node)
    add = helper.make_node(
        "QLinearAdd", ["x_q", "x_scale", "x_zp", "zero_q", "x_scale", "x_zp", "x_scale", "x_zp"], ["x_q2"],
        name="residual", domain="com.microsoft",
    )  # fmt: skip
    nodes[1].input[0] = "x_q2"  # the activation's DequantizeLinear reads the Add's output
    del model.graph.node[:]
    model.graph.node.extend([nodes[0], add, *nodes[1:]])
    model.graph.initializer.append(numpy_helper.from_array(np.zeros((1, Q.K), np.uint8), "zero_q"))
    model.opset_import.append(helper.make_opsetid("com.microsoft", 1))
    sim = _simulated(tmp_path, model, "residual")
    stored = _simulated(tmp_path, Q.qdq_matmul(), "stored")
    assert sim.saturated == stored.saturated and np.array_equal(sim.outputs["logits"], stored.outputs["logits"])
