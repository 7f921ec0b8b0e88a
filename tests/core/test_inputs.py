"""Generated inputs that are valid for the model: inclusive integer ranges, every value drawn, no range
invented for an integer input (issue 10, point 1)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checks.core.errors import InputGenerationError
from model_checks.core.inputs import generate, generated_cases, integers
from model_checks.manifest.model import TensorSpec


@settings(max_examples=200, deadline=None)
@given(lo=st.integers(-1000, 1000), width=st.integers(0, 200), seed=st.integers(0, 2**32 - 1))
def test_every_declared_value_occurs_once_the_draw_is_large_enough(lo, width, seed):
    hi = lo + width
    out = integers(np.random.default_rng(seed), (lo, hi), (width + 1, 3))
    assert set(np.unique(out).tolist()) == set(range(lo, hi + 1))


@settings(max_examples=200, deadline=None)
@given(
    lo=st.integers(-(2**40), 2**40),
    width=st.integers(0, 2**40),
    size=st.integers(0, 50),
    seed=st.integers(0, 2**32 - 1),
)
def test_nothing_outside_the_range_and_both_ends_drawn_where_there_is_room(lo, width, size, seed):
    hi = lo + width
    out = integers(np.random.default_rng(seed), (lo, hi), (size,))
    assert out.size == size and (out >= lo).all() and (out <= hi).all()
    if size >= 2:
        assert lo in out and hi in out


def test_a_mask_range_of_0_1_draws_both_values():
    # it used to be drawn half-open: all zeros, so a model ignoring its token types passed
    feeds = generate([TensorSpec("attention_mask", "int64", ("batch", "sequence"), range=(0, 1))], batch=1)
    assert set(np.unique(feeds["attention_mask"]).tolist()) == {0, 1}


def test_bools_get_both_values():
    assert set(np.unique(generate([TensorSpec("m", "bool", (1, 4))], batch=1)["m"]).tolist()) == {False, True}


def test_an_integer_input_without_a_range_is_refused_with_the_key_to_declare():
    with pytest.raises(InputGenerationError) as e:
        generate([TensorSpec("attention_mask", "int64", ("batch", 8))], batch=1)
    assert str(e.value) == (
        "input 'attention_mask' (int64): no range declared and none the graph proves (an index into an embedding's rows); "
        "declare inputs[].range for 'attention_mask' in metadata.yaml (inclusive: [0, 1] for a mask or token types, "
        "[0, vocab_size - 1] for token ids) or give samples"
    )


def test_a_string_input_is_refused_not_a_type_error():
    with pytest.raises(InputGenerationError) as e:
        generate([TensorSpec("text", "string", ("batch",))], batch=1)
    assert (
        str(e.value)
        == "input 'text' is string: the gate generates numbers and bools only; give samples (an .npz with an array named 'text')"
    )


def test_named_dynamic_dims_run_at_two_lengths():
    specs = [TensorSpec("ids", "int64", ("batch", "sequence"), range=(0, 9))]
    cases = generated_cases(specs, "a@1")
    assert [(c.label, c.inputs["ids"].shape) for c in cases] == [
        ("generated, batch 1", (1, 8)),
        ("generated, batch 4", (4, 8)),
        ("generated, batch 4, sequence 3", (4, 3)),
    ]
