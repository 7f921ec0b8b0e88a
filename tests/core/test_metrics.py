import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

from model_checks.core.metrics import compare_output, compare_outputs, mae, max_abs, rel_l2, top1_agreement
from model_checks.manifest.model import Limit

DEFAULT = {"rel_l2": Limit(1e-3, "default"), "mae": Limit(1e-3, "default")}
finite = hnp.arrays(
    np.float32,
    hnp.array_shapes(min_dims=1, max_dims=3, max_side=6),
    elements=st.floats(-1e3, 1e3, allow_nan=False, allow_infinity=False, width=32),
)


@given(finite)
def test_identical_arrays_pass(a):
    c = compare_output("y", a, a.copy(), DEFAULT)
    assert c.ok, c.render()
    assert c.value("rel_l2") == 0.0 and c.value("mae") == 0.0


@given(finite, st.data())
def test_any_nan_fails(a, data):
    b = a.copy()
    idx = data.draw(st.tuples(*[st.integers(0, s - 1) for s in a.shape]))
    b[idx] = np.nan
    for out, ref in ((b, a), (a, b)):
        c = compare_output("y", out, ref, DEFAULT)
        assert not c.ok
        assert "NaN" in c.problem and list(idx) == [
            int(i) for i in c.problem.split("index [")[1].split("]")[0].split(", ")
        ]


@settings(max_examples=50)
@given(finite, st.floats(1e-3, 1e3))
def test_scaling_both_sides_keeps_rel_l2(a, k):
    rng = np.random.default_rng(0)
    ref = a.astype(np.float64)
    out = ref + rng.normal(0, 1, ref.shape)
    if np.linalg.norm(ref) == 0:
        return
    assert rel_l2(out * k, ref * k) == pytest.approx(rel_l2(out, ref), rel=1e-9)


def test_inf_fails():
    a = np.ones((2, 3), np.float32)
    b = a.copy()
    b[1, 2] = np.inf
    c = compare_output("y", b, a, DEFAULT)
    assert not c.ok and "1 Inf" in c.problem and "[1, 2]" in c.problem


@given(finite, st.data())
def test_non_finite_values_at_the_same_places_on_both_sides_fail_and_say_so(a, data):
    """A reference recorded where the inputs leave the model's domain (an ONNX test's sqrt of negatives) has NaN
    where the model has them: still a failure (agreeing there proves nothing), said as such. The same places with
    other values (NaN against an infinity, or an opposite infinity) keep the one-sided message."""
    idx = data.draw(st.tuples(*[st.integers(0, s - 1) for s in a.shape]))
    value = data.draw(st.sampled_from([np.nan, np.inf, -np.inf]))
    out, ref = a.copy(), a.copy() + 1
    out[idx] = ref[idx] = value
    c = compare_output("y", out, ref, DEFAULT)
    assert not c.ok and c.problem == (
        f"the output and the reference both have {int(np.isnan(value))} NaN and {int(np.isinf(value))} Inf values, "
        f"at the same places (first at index {list(idx)}): the inputs reach outside what the model computes (a "
        "square root or a logarithm of a negative, say); a non-finite output never passes, so compare on inputs "
        "inside its domain"
    )
    ref[idx] = -np.inf if value == np.inf else np.inf
    c = compare_output("y", out, ref, DEFAULT)
    assert not c.ok and c.problem.startswith("the output has") and "a non-finite output never passes" in c.problem


def test_zero_norm_reference_uses_absolute_error():
    ref = np.zeros((2, 2), np.float32)
    out = np.full((2, 2), 0.5, np.float32)
    assert rel_l2(out, ref) == pytest.approx(1.0)  # ||[.5,.5,.5,.5]|| = 1, not a division by zero
    c = compare_output("y", out, ref, DEFAULT)
    assert not c.ok and "all zeros" in "\n".join(c.render())


def test_shapes_never_broadcast():
    c = compare_output("y", np.ones((1, 3), np.float32), np.ones((3,), np.float32), DEFAULT)
    assert not c.ok and "shape [1, 3] differs from the reference's [3]" in c.problem


def test_dtypes_must_match():
    c = compare_output("y", np.ones(3, np.float16), np.ones(3, np.float32), DEFAULT)
    assert not c.ok and "dtype float16 differs" in c.problem


def test_empty_output_fails():
    c = compare_output("y", np.ones((0, 3), np.float32), np.ones((0, 3), np.float32), DEFAULT)
    assert not c.ok and "empty" in c.problem


def test_metric_values():
    ref = np.array([[1.0, 2.0], [3.0, 4.0]])
    out = np.array([[1.0, 2.5], [3.0, 4.0]])
    assert mae(out, ref) == pytest.approx(0.125)
    assert max_abs(out, ref) == pytest.approx(0.5)
    assert rel_l2(out, ref) == pytest.approx(0.5 / np.sqrt(30))
    assert top1_agreement(np.array([[0, 1], [1, 0]]), np.array([[0, 1], [0, 1]])) == 0.5


def test_failure_table_names_metric_value_limit_source_and_worst_elements():
    ref = np.zeros((2, 4), np.float32) + 1
    out = ref.copy()
    out[1, 3] = 1.5
    c = compare_output("logits", out, ref, {"rel_l2": Limit(1e-3, "metadata.yaml"), "mae": Limit(1e-3, "default")})
    text = "\n".join(c.render())
    assert "output 'logits': FAILED" in text
    assert "rel_l2" in text and "<= 0.001" in text and "metadata.yaml" in text and "<-- exceeds" in text
    assert "[1, 3]: 1.5 vs 1" in text


def test_top1_agreement_is_a_lower_bound():
    ref = np.eye(4, dtype=np.float32)
    out = ref.copy()
    out[0] = [0, 1, 0, 0]
    c = compare_output("p", out, ref, {"top1_agreement": Limit(0.9, "metadata.yaml")})
    assert not c.ok and c.value("top1_agreement") == 0.75
    assert compare_output("p", out, ref, {"top1_agreement": Limit(0.75, "x")}).ok


def test_no_tolerance_never_passes():
    a = np.ones(3, np.float32)
    assert not compare_output("y", a, a, {}).ok


def test_missing_extra_and_reordered_outputs():
    a = np.ones(2, np.float32)
    c = compare_outputs({"x": a, "z": a}, {"x": a, "y": a}, lambda n: DEFAULT)
    assert not c
    text = "\n".join(c.render())
    assert "outputs missing from the model: y" in text and "outputs the reference does not have: z" in text
    # reordered names match by name, not position
    b = np.array([5.0, 6.0], np.float32)
    assert compare_outputs({"y": b, "x": a}, {"x": a, "y": b}, lambda n: DEFAULT)


def test_rel_l2_sums_its_squares_without_blas(monkeypatch):
    """The norms are numpy's pairwise sums of squares, not BLAS's dot (np.linalg.norm, np.dot): a threaded BLAS
    spins on the core the worker needs after every dot of more than ~10,000 values. Values as the textbook says."""

    def no_blas(*a, **k):
        raise AssertionError("a BLAS norm or dot was called")

    from model_checks.core import metrics

    monkeypatch.setattr(np.linalg, "norm", no_blas)
    monkeypatch.setattr(np, "dot", no_blas)
    monkeypatch.setattr(metrics.np, "dot", no_blas)  # the module's lazy numpy holds its own copy of the names
    ref = np.linspace(-3.0, 5.0, 20_000)
    out = ref + np.where(np.arange(ref.size) % 7 == 0, 1e-3, 0.0)
    expected = math.sqrt(math.fsum((o - r) ** 2 for o, r in zip(out, ref))) / math.sqrt(math.fsum(r * r for r in ref))
    assert rel_l2(out, ref) == pytest.approx(expected, rel=1e-12)
    c = compare_output("y", out.astype(np.float32), ref.astype(np.float32), DEFAULT)
    assert c.value("rel_l2") == pytest.approx(rel_l2(out.astype(np.float32), ref.astype(np.float32)), rel=0)
    zeros = compare_output("y", np.full(20_000, 1e-4), np.zeros(20_000), DEFAULT)
    assert zeros.note == "the reference is all zeros: rel_l2 is the absolute L2 norm of the difference"
    assert zeros.value("rel_l2") == pytest.approx(1e-4 * math.sqrt(20_000), rel=1e-12)


@settings(max_examples=50)
@given(finite, st.floats(0, 10), st.sampled_from([np.float32, np.float64]))
def test_compare_output_reports_what_the_metric_functions_compute(a, noise, dtype):
    """rel_l2, mae and max_abs come from one float64 copy of each side and one difference: bit for bit what the
    functions compute on their own, and the verdict they give."""
    ref = a.astype(dtype)
    out = (ref + noise * np.cos(np.arange(ref.size)).reshape(ref.shape)).astype(dtype)
    c = compare_output("y", out, ref, DEFAULT)
    for metric, f in (("rel_l2", rel_l2), ("mae", mae), ("max_abs", max_abs)):
        assert c.value(metric) == f(out, ref)  # exactly: the same figures in junit and the reports
    assert c.ok == (rel_l2(out, ref) <= 1e-3 and mae(out, ref) <= 1e-3)


def test_the_worst_elements_are_worked_out_for_a_failing_output_only():
    """Only a failing output shows its worst elements: one that holds does not search for them (an argpartition
    over every element, a third of comparing the outputs of row a's 97 small models)."""
    ref = np.arange(12, dtype=np.float32).reshape(3, 4)
    assert compare_output("y", ref + np.float32(1e-6), ref, DEFAULT).worst == ()
    out = ref.copy()
    out[2, 1] += 5
    out[0, 3] -= 2
    c = compare_output("y", out, ref, DEFAULT)
    assert c.worst[:2] == (((2, 1), 14.0, 9.0), ((0, 3), 1.0, 3.0))
    assert "      [2, 1]: 14 vs 9" in c.render()
