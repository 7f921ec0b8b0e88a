"""Models nobody here made (issue 20, points 1-4): the batch is a named dimension, not axis 0; each side gets
inputs of its own declared types; every dynamic axis is proven at two sizes; a refused model fails once."""

import numpy as np

from fixtures import artifacts as A
from fixtures import batch_models as B
from fixtures import onnx_models as M
from model_checks.checks.context import CheckContext
from model_checks.checks.equivalence import comparisons
from model_checks.core.session import GateSession


def session(root):
    return GateSession([root])


def check(root, name, check):
    gs = session(root)
    return gs.run_check(check, next(a for a in gs.artifacts if a.id.startswith(name)))


def samples(d, **arrays):
    np.savez(d / "samples.npz", **arrays)


# -- a "dynamic" batch hard-coded to 1 inside --------------------------------------------------------------------


def test_a_reshape_to_one_with_one_shipped_sample_fails_limits(tmp_path):
    # it passed: with one sample, limits "cut it to half", which stays 1, so only batch 1 ever ran
    d = A.onnx_artifact(
        tmp_path / "r1", B.reshape_to_one(), name="r1", samples="samples.npz", limits={"dynamic_axes": ["batch"]}
    )
    samples(d, input=np.ones((1, 4), np.float32))
    r = check(tmp_path, "r1", "limits")
    assert not r
    assert (
        "dynamic_axes: 'batch' of size 3 is refused by the model on the samples (samples.npz), its one sample repeated "
        "3 times [the batch is 'batch' (named so): axis 0 of 'input']: model.onnx: inference failed:"
    ) in str(r)


def test_a_reshape_to_one_without_samples_fails_limits(tmp_path):
    A.onnx_artifact(tmp_path / "r1", B.reshape_to_one(), name="r1", limits={"dynamic_axes": ["batch"]})
    r = check(tmp_path, "r1", "limits")
    assert (
        not r
        and "dynamic_axes: 'batch' of size 3 is refused by the model on generated inputs [the batch is 'batch'"
        in str(r)
    )


def test_a_model_that_answers_one_row_for_a_batch_fails_limits(tmp_path):
    d = A.onnx_artifact(
        tmp_path / "sum", B.batch_summed(), name="sum", samples="samples.npz", limits={"dynamic_axes": ["batch"]}
    )
    samples(d, input=np.ones((1, 4), np.float32))
    r = check(tmp_path, "sum", "limits")
    assert not r
    assert (
        "dynamic_axes: output 'logits' has 1 along 'batch' (axis 0) for a batch of 3 on the samples (samples.npz), "
        "its one sample repeated 3 times: the model does not keep its batch (a Reshape to a fixed size inside?) "
        "[the batch is 'batch' (named so): axis 0 of 'input']"
    ) in str(r)


def test_one_shipped_sample_of_a_really_dynamic_batch_passes(tmp_path):
    d = A.onnx_artifact(
        tmp_path / "lin", M.linear(), name="lin", samples="samples.npz", limits={"dynamic_axes": ["batch"]}
    )
    samples(d, input=np.ones((1, 4), np.float32))
    r = check(tmp_path, "lin", "limits")
    assert r, str(r)


# -- a state input with the batch in the middle --------------------------------------------------------------------


def state_pair(root, variant_model=None, **manifest):
    ref, var = A.pair(
        root,
        variant_model=variant_model or B.recurrent_state(),
        reference_model=B.recurrent_state(),
        samples="samples.npz",
        **manifest,
    )
    rng = np.random.default_rng(0)
    samples(
        var, input=rng.uniform(0, 1, (3, 4)).astype(np.float32), state=rng.uniform(0, 1, (2, 3, 8)).astype(np.float32)
    )
    return var


def test_sample_0_alone_cuts_the_state_along_its_batch_axis(tmp_path):
    # it cut state [2, 3, 8] to [1, 3, 8]: "invalid dimensions for input: state", on a correct model
    state_pair(tmp_path)
    r = check(tmp_path, "variant", "equivalence")
    assert r, str(r)
    gs = session(tmp_path)
    ctx = CheckContext(next(a for a in gs.artifacts if a.id.startswith("variant")), gs.pool)
    cases = ctx.cases()
    assert [c.label for c in cases] == [
        "samples (samples.npz)",
        "samples (samples.npz), sample 0 alone (the batch is 'batch' (named so))",
    ]
    assert cases[1].inputs["state"].shape == (2, 1, 8) and cases[1].inputs["input"].shape == (1, 4)
    np.testing.assert_array_equal(cases[1].inputs["state"][:, 0], cases[0].inputs["state"][:, 0])


def test_a_mutant_with_state_fails_for_its_own_reason(tmp_path):
    state_pair(tmp_path, variant_model=B.recurrent_state(mix_batch=True))
    r = check(tmp_path, "variant", "equivalence")
    assert not r
    assert "invalid dimensions" not in str(r)
    assert "case: samples (samples.npz), sample 0 alone (the batch is 'batch' (named so))" in str(r)
    assert "output 'output': FAILED" in str(r)


def test_limits_prove_the_batch_of_a_state_input_and_name_no_quantization(tmp_path):
    state_pair(tmp_path, variant_model=B.recurrent_state(mix_batch=True), limits={"dynamic_axes": ["batch"]})
    r = check(tmp_path, "variant", "limits")
    assert not r
    assert (
        "dynamic_axes: sample 0 of a 'batch'=3 run differs from the same sample run alone in output 'output': "
    ) in str(r)
    assert (
        "The output depends on the batch-mates (an op mixes the samples: a reduction, normalization or reshape across "
        "the batch axis) [the batch is 'batch' (named so): axis 0 of 'input', axis 1 of 'state']"
    ) in str(r)
    assert "quantization" not in str(r)


def test_limits_pass_a_correct_state_model(tmp_path):
    state_pair(tmp_path, limits={"dynamic_axes": ["batch"]})
    r = check(tmp_path, "variant", "limits")
    assert r, str(r)


def test_serving_request_bodies_cut_the_state_along_its_batch_axis(tmp_path):
    import json

    from model_checks.serving.check import request_bodies

    var = state_pair(tmp_path)
    gs = session(tmp_path)
    bodies = request_bodies(next(a for a in gs.artifacts if a.dir == var), gs.pool)
    shapes = [{t["name"]: t["shape"] for t in json.loads(b)["inputs"]} for b in bodies]
    assert shapes == [{"input": [1, 4], "state": [2, 1, 8]}] * 3


def test_property_feeds_share_one_batch_wherever_each_input_carries_it():
    from hypothesis import given, settings

    from model_checks.core.properties import feeds_strategy
    from model_checks.manifest.model import TensorSpec

    specs = [TensorSpec("x", "float32", ("sequence", "batch", 4)), TensorSpec("h", "float32", (1, "batch", 5))]

    @settings(max_examples=20, deadline=None, database=None)
    @given(feeds_strategy(specs, max_batch=3))
    def prop(feeds):
        assert feeds["h"].shape[0] == 1 and 1 <= feeds["h"].shape[1] <= 3
        assert feeds["x"].shape[1] == feeds["h"].shape[1] and feeds["x"].shape[::2] == (8, 4)

    prop()


# -- a time-major recurrent model ------------------------------------------------------------------------------------


def test_a_time_major_gru_proves_its_sequence_axis_at_two_lengths(tmp_path):
    # it failed: "the output depends on the batch-mates (dynamic quantization computes one scale per batch)",
    # the time steps taken for a batch of an unquantized model
    A.onnx_artifact(
        tmp_path / "gru", B.time_major_gru(), name="gru", limits={"dynamic_axes": ["sequence_length", "batch"]}
    )
    r = check(tmp_path, "gru", "limits")
    assert r, str(r)


def test_a_time_major_gru_without_a_batch_name_is_not_split_along_its_steps(tmp_path):
    # it failed: each time step "alone" against the sequence, and blamed dynamic quantization
    d = A.onnx_artifact(
        tmp_path / "gru",
        B.time_major_gru(batch=1),
        name="gru",
        samples="samples.npz",
        limits={"dynamic_axes": ["sequence_length"]},
    )
    samples(d, x=np.random.default_rng(0).uniform(0, 1, (3, 1, 4)).astype(np.float32))
    r = check(tmp_path, "gru", "limits")
    assert r, str(r)
    samples(d, x=np.random.default_rng(0).uniform(0, 1, (1, 1, 4)).astype(np.float32))  # one step: tiled to 2
    assert check(tmp_path, "gru", "limits")


def test_a_sequence_axis_hard_coded_inside_fails(tmp_path):
    # a Reshape to a fixed length: two lengths are run, the second refused
    A.onnx_artifact(
        tmp_path / "r1",
        B.reshape_to_one(),
        name="r1",
        limits={"dynamic_axes": ["sequence"]},
        inputs=[{"name": "input", "dtype": "float32", "shape": [1, "sequence"]}],
    )
    d = tmp_path / "r1"
    samples(d, input=np.ones((1, 4), np.float32))
    A.write_manifest(
        d,
        {
            "model_name": "r1",
            "version": "1.0",
            "file": "model.onnx",
            "samples": "samples.npz",
            "inputs": [{"name": "input", "dtype": "float32", "shape": [1, "sequence"]}],
            "limits": {"dynamic_axes": ["sequence"]},
        },
    )
    r = check(tmp_path, "r1", "limits")
    assert not r
    assert (
        "dynamic_axes: 'sequence' of size 2 is refused by the model on the samples (samples.npz), cut to a prefix:"
        in str(r)
    )


def test_an_initial_state_is_generated_with_the_batch_at_axis_1(tmp_path):
    # it was fed [1, 8, 5]: a named dim at a non-leading position got 8 even when it carried the batch's name
    A.onnx_artifact(tmp_path / "gru", B.time_major_gru(initial_h=True), name="gru", limits={"dynamic_axes": ["batch"]})
    gs = session(tmp_path)
    ctx = CheckContext(gs.artifacts[0], gs.pool)
    cases = ctx.cases()
    assert [(c.label, c.inputs["x"].shape, c.inputs["initial_h"].shape) for c in cases] == [
        ("generated, batch 1", (8, 1, 4), (1, 1, 5)),
        ("generated, batch 4", (8, 4, 4), (1, 4, 5)),
        ("generated, batch 4, sequence_length 3", (3, 4, 4), (1, 4, 5)),
    ]
    assert gs.run_check("limits", gs.artifacts[0]), "limits on a correct GRU with an initial state"


# -- float16 inputs and outputs against a float32 reference ------------------------------------------------------------

FP16_IO = {
    "inputs": [{"name": "input", "dtype": "float16", "shape": ["batch", 4]}],
    "outputs": [{"name": "logits", "dtype": "float16", "shape": ["batch", 3]}],
}


def fp16_pair(root, sample_dtype, **manifest):
    keys = {**FP16_IO, "tolerance": {"rel_l2": 1e-2, "mae": None}, **manifest}
    ref, var = A.pair(
        root, variant_model=M.linear(dtype=np.float16), reference_model=M.linear(), samples="samples.npz", **keys
    )
    samples(var, input=np.random.default_rng(0).uniform(0, 1, (5, 4)).astype(sample_dtype))
    return var


def compared(root, name="variant"):
    gs = session(root)
    return comparisons(CheckContext(next(a for a in gs.artifacts if a.id.startswith(name)), gs.pool))


WIDENED = "compared in float32 (declared float16 in outputs[].dtype, the reference gives float32)"


def test_an_fp16_io_model_is_compared_with_its_fp32_reference_on_fp16_samples(tmp_path):
    # it failed: "input 'input' is float16, the model wants float32" (the reference fed the samples uncast)
    fp16_pair(tmp_path, np.float16)
    r = check(tmp_path, "variant", "equivalence")
    assert r, str(r)
    results = compared(tmp_path)
    assert [label for label, _ in results] == [
        "samples (samples.npz); for the reference 'input' cast float16 -> float32",
        "samples (samples.npz), sample 0 alone (the batch is 'batch' (named so)); "
        "for the reference 'input' cast float16 -> float32",
    ]
    assert [c.outputs[0].note for _, c in results] == [WIDENED, WIDENED]


def test_fp32_samples_are_cast_for_an_fp16_model(tmp_path):
    fp16_pair(tmp_path, np.float32)
    # the model gets them as float16, and the reference those same float16 values back as float32
    assert compared(tmp_path)[0][0] == (
        "samples (samples.npz); for the model 'input' cast float32 -> float16; for the reference "
        "'input' cast float16 -> float32"
    )
    assert check(tmp_path, "variant", "equivalence")


def test_an_fp16_model_out_of_tolerance_names_the_casts_in_its_case_line(tmp_path):
    fp16_pair(tmp_path, np.float16, tolerance={"rel_l2": 1e-9, "mae": None})
    r = check(tmp_path, "variant", "equivalence")
    assert not r
    assert "  case: samples (samples.npz); for the reference 'input' cast float16 -> float32\n" in str(r)
    assert f"    note: {WIDENED}" in str(r)


def test_an_undeclared_fp16_output_is_still_refused_with_the_key_to_declare(tmp_path):
    fp16_pair(tmp_path, np.float16, outputs=[{"name": "logits", "shape": ["batch", 3]}])
    r = check(tmp_path, "variant", "equivalence")
    assert not r
    assert (
        "dtype float16 differs from the reference's float32; cast explicitly when packaging, "
        "or declare outputs[].dtype: float16 in metadata.yaml to compare both in float32 or wider "
        "(fp16 is never compared with fp32 silently)"
    ) in str(r)


# -- a model the runtime refuses fails once ------------------------------------------------------------------------


def verdicts(root, name):
    gs = session(root)
    a = next(a for a in gs.artifacts if a.id.startswith(name))
    return {c: gs.result(c, a) for c in ("manifest", "integrity", "metadata", "limits", "equivalence")}


def test_a_model_onnxruntime_refuses_but_the_checker_accepts_fails_integrity_once(tmp_path):
    A.onnx_artifact(tmp_path / "bad", B.custom_domain_op(), name="bad", limits={"dynamic_axes": ["batch"]})
    rs = verdicts(tmp_path, "bad")
    r = rs["integrity"]
    assert not r and r.headline == "integrity: bad@1.0: model cannot be loaded"
    assert "  model.onnx: onnxruntime cannot open it: " in str(
        r
    ) and "com.example:MatMul(-1) is not a registered function/op" in str(r)
    assert (
        "  onnx.checker (full check, shape inference) accepts it: the model is valid, but this runtime cannot run it"
    ) in str(r)
    assert {c: r.skipped for c, r in rs.items() if c not in ("manifest", "integrity")} == {
        c: "not run: test_integrity[bad@1.0] failed" for c in ("metadata", "limits", "equivalence")
    }


def test_a_model_both_refuse_shows_both_reasons_and_fails_once(tmp_path):
    # integrity showed only the checker's error, limits failed again with "model cannot be loaded"
    model = M.linear()
    model.graph.node[1].op_type = "NoSuchOp"
    A.onnx_artifact(tmp_path / "bad", model, name="bad", limits={"dynamic_axes": ["batch"]})
    rs = verdicts(tmp_path, "bad")
    r = rs["integrity"]
    assert not r and r.headline == "integrity: bad@1.0: model cannot be loaded"
    assert "  model.onnx: onnxruntime cannot open it: " in str(r)
    assert "  onnx.checker (full check, shape inference) refuses it too:" in str(r)
    assert "    - onnx.checker (full check, shape inference): ValidationError: No Op registered for NoSuchOp" in str(r)
    assert rs["limits"].skipped == "not run: test_integrity[bad@1.0] failed"


def test_a_model_the_checker_refuses_but_onnxruntime_opens_is_checked_further(tmp_path):
    A.onnx_artifact(tmp_path / "odd", B.wrong_output_shape(), name="odd", limits={"dynamic_axes": ["batch"]})
    rs = verdicts(tmp_path, "odd")
    r = rs["integrity"]
    assert not r and r.headline == "integrity: odd@1.0: 1 problem"
    assert "Inferred shape and existing shape differ in dimension 1: (3) vs (5)" in str(r)
    assert "  onnxruntime opens it all the same: the other checks run on it" in str(r)
    assert not rs["limits"].skipped


def test_a_refused_model_fails_once_in_an_isolated_worker_too(tmp_path):
    from model_checks.isolation.limits import Limits

    A.onnx_artifact(tmp_path / "bad", B.custom_domain_op(), name="bad", limits={"dynamic_axes": ["batch"]})
    gs = GateSession([tmp_path], isolation=Limits(memory_mb=2048, timeout_s=60))
    try:
        a = gs.artifacts[0]
        r = gs.result("integrity", a)
        assert not r and r.headline == "integrity: bad@1.0: model cannot be loaded"
        assert "onnx.checker (full check, shape inference) accepts it" in str(r)
        assert gs.result("limits", a).skipped == "not run: test_integrity[bad@1.0] failed"
    finally:
        gs.pool.close()


# -- which dimension is the batch ---------------------------------------------------------------------------------


def test_the_batch_is_found_by_its_name_wherever_it_sits_else_by_the_default():
    from model_checks.core.batch import find
    from model_checks.manifest.model import TensorSpec as T

    assert find([T("x", shape=("sequence", 4)), T("h", shape=(2, "batch_size", 8))]).describe() == (
        "the batch is 'batch_size' (named so)"
    )
    assert find([T("x", shape=("N", 3, "H", "W"))]).name == "N"
    assert find([T("x", shape=("s0", 4))]).describe() == (
        "the batch is 's0' (the first dynamic leading dim, of input 'x': no dim is named batch)"
    )
    assert find([T("x", shape=("?", 4))]).axis(T("y", shape=(3, "?"))) is None  # an unnamed batch only leads
    for time_major in (("sequence_length", 1, 4), ("seq_len", 4), ("T", 4), ("time", 2)):
        assert find([T("x", shape=time_major)]) is None, time_major
    assert find([T("x", shape=(1, 4))]) is None


def test_an_axis_that_cannot_be_run_at_two_sizes_fails_as_unproven(tmp_path):
    # samples whose inputs disagree on the batch, and an integer input without a range: nothing can be generated
    from onnx import TensorProto, helper

    m = helper.make_model(
        helper.make_graph(
            [
                helper.make_node("Cast", ["ids"], ["f"], to=TensorProto.FLOAT),
                helper.make_node("Add", ["f", "x"], ["y"]),
            ],
            "two",
            [
                helper.make_tensor_value_info("ids", TensorProto.INT64, ["batch", 4]),
                helper.make_tensor_value_info("x", TensorProto.FLOAT, ["batch", 4]),
            ],
            [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 4])],
        ),
        opset_imports=[helper.make_opsetid("", 13)],
    )
    m.ir_version = 8
    d = A.onnx_artifact(tmp_path / "two", m, name="two", samples="samples.npz", limits={"dynamic_axes": ["batch"]})
    samples(d, ids=np.zeros((3, 4), np.int64), x=np.zeros((2, 4), np.float32))
    r = check(tmp_path, "two", "limits")
    assert not r
    assert (
        "dynamic_axes: 'batch' could not be proven at two sizes (the samples (samples.npz) do not agree on one size "
        "along the batch: 'ids' axis 0, 'x' axis 0), and no inputs can be generated (input 'ids' (int64): no range "
        "declared"
    ) in str(r)


def test_localisation_of_a_failing_fp16_model_feeds_the_reference_its_own_dtype(tmp_path):
    # it said "localisation not available: ... Unexpected input data type ... float16": the reference was fed the
    # artifact's float16 samples uncast
    fp16_pair(tmp_path, np.float16, tolerance={"rel_l2": 1e-9, "mae": None})
    r = check(tmp_path, "variant", "equivalence")
    assert not r
    assert "localisation not available" not in str(r), str(r)
    assert "  localisation" in str(r), str(r)
