"""The saturating int8 dot product of x86 without VNNI, emulated: checked against sums worked out by hand, and its
exact side against onnxruntime's own integer kernels."""

import numpy as np
import onnx
import onnxruntime as ort
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
