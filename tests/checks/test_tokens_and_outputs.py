"""The models teams ship (issue 10): token inputs, integer and label outputs, ZipMap, batch dependence on
real samples, and the errors that used to reach the user as tracebacks."""

import numpy as np
import pytest

from fixtures import artifacts as A
from fixtures import onnx_models as M
from fixtures import token_models as T
from model_checks.core.session import GateSession

MASKED = [dict(t, range=[0, 1]) if t["name"] != "input_ids" else t for t in T.TOKEN_INPUTS]


def check(root, name, check):
    gs = GateSession([root])
    return gs.run_check(check, next(a for a in gs.artifacts if a.id.startswith(name)))


def test_an_export_that_ignores_its_token_types_fails_equivalence(tmp_path):
    # with [0, 1] drawn half-open, token_type_ids were all zeros and this passed
    A.pair(tmp_path, variant_model=T.encoder(ignore_token_types=True), reference_model=T.encoder(), inputs=MASKED)
    r = check(tmp_path, "variant", "equivalence")
    assert not r
    assert (
        "equivalence: variant@1.0 differs from its reference ../ref/model.onnx (3 failure(s) in 3 of 3 case(s))"
        in str(r)
    )
    assert "  case: generated, batch 4, sequence 3" in str(r)


def test_token_ids_get_their_range_from_the_embedding_and_limits_pass(tmp_path):
    A.onnx_artifact(
        tmp_path / "enc", T.encoder(), name="enc", inputs=MASKED, limits={"dynamic_axes": ["batch", "sequence"]}
    )
    r = check(tmp_path, "enc", "limits")
    assert r, str(r)


def test_an_undeclared_mask_is_refused_naming_the_key_not_blaming_the_batch(tmp_path):
    # it used to draw 0..9 and fail with "'batch' of size 3 is refused by the model"
    A.onnx_artifact(tmp_path / "enc", T.encoder(), name="enc", limits={"dynamic_axes": ["batch"]})
    r = check(tmp_path, "enc", "limits")
    assert not r and r.headline == "limits: enc@1.0: no valid inputs for the model"
    assert "  input 'attention_mask' (int64): no range declared and none the graph proves" in str(r)
    assert "refused by the model" not in str(r)


def test_limits_use_the_shipped_samples_and_name_the_samples_that_depend_on_their_batch(tmp_path):
    d = tmp_path / "mix"
    A.onnx_artifact(
        d,
        M.batch_mixing(),
        name="mix",
        samples="samples.npz",
        limits={"dynamic_axes": ["batch"]},
        tolerance={"rel_l2": None, "mae": None, "top1_agreement": 0.95},
    )
    x = np.tile(np.eye(4, dtype=np.float32), (2, 1)) + np.linspace(0, 0.1, 8, dtype=np.float32)[:, None]
    np.savez(d / "samples.npz", input=x)
    r = check(tmp_path, "mix", "limits")
    assert not r
    assert (
        "dynamic_axes: sample 1 of a 'batch'=8 run differs from the same sample run alone in output 'output': "
        "top1_agreement 0 vs 0.95 (6 of 8 samples of the samples (samples.npz) differ: 1, 2, 3, 5, 6, 7; "
        "top-1 flips for sample(s) 1, 2, 3, 5, 6, 7). The output depends on the batch-mates"
    ) in str(r)


def test_one_token_id_off_by_one_in_1000_fails_exactly(tmp_path):
    # under rel_l2/MAE 1e-3 it passed: an integer output is exact or it is not
    A.pair(tmp_path, variant_model=T.token_ids(off_by_one_at=17), reference_model=T.token_ids())
    r = check(tmp_path, "variant", "equivalence")
    assert not r
    text = str(r)
    assert (
        "      mismatch_fraction       0.001        <= 0  default (model-checks): integer, bool and string outputs are exact   <-- exceeds"
        in text
    )
    assert "      note: 1 of 1000 int64 elements differ" in text and "        [0, 17]: 84 vs 83" in text


def test_a_label_output_may_allow_a_declared_share_of_mismatches(tmp_path):
    A.pair(
        tmp_path,
        variant_model=T.token_ids(off_by_one_at=17),
        reference_model=T.token_ids(),
        tolerance={"mismatch_fraction": 0.01},
    )
    r = check(tmp_path, "variant", "equivalence")
    assert r, str(r)


@pytest.mark.parametrize("ref", ["model.onnx", "./model.onnx", "sub/../model.onnx", "alias.onnx"])
def test_a_reference_that_is_the_artifacts_own_model_is_an_error(tmp_path, ref):
    A.onnx_artifact(tmp_path / "self", name="self", reference={"path": ref})
    (tmp_path / "self" / "sub").mkdir()
    (tmp_path / "self" / "alias.onnx").symlink_to("model.onnx")  # a link to the model is the model
    r = check(tmp_path, "self", "equivalence")
    assert not r and r.headline == "equivalence: self@1.0: invalid manifest"
    assert (
        f"self/metadata.yaml: reference.path: {ref} resolves to this artifact's own model (model.onnx); "
        "a model compared with itself proves nothing: name the model it was made from"
    ) in str(r)


def test_duplicate_output_names_and_no_outputs_fail_integrity(tmp_path):
    A.onnx_artifact(tmp_path / "dup", T.outputs_named(["y", "y"]), name="dup")
    A.onnx_artifact(tmp_path / "none", T.outputs_named([]), name="none")
    dup, none = check(tmp_path, "dup", "integrity"), check(tmp_path, "none", "integrity")
    assert (
        not dup
        and "  - output names are not unique: 'y' appear more than once among 2 outputs; outputs are matched by name"
        in str(dup)
    )
    assert not none and "  - the graph declares no outputs: it computes nothing that could be checked" in str(none)


def test_a_string_input_is_a_failure_message_not_a_type_error(tmp_path):
    A.pair(tmp_path, variant_model=T.string_input(), reference_model=T.string_input())
    r = check(tmp_path, "variant", "equivalence")
    assert not r and "input 'text' is string: the gate generates numbers and bools only; give samples" in str(r)


def test_any_error_of_a_check_is_a_failure_message_with_its_cause_first(tmp_path):
    A.onnx_artifact(tmp_path / "m", name="m")
    gs = GateSession([tmp_path])

    def broken(ctx):
        return {}["missing key"]

    r = gs.run_check("equivalence", gs.artifacts[0], broken)
    assert not r and r.headline == "equivalence: m@1.0: the check could not finish"
    assert r.details[0] == "  KeyError: 'missing key'"
