"""Equivalence by property (opt-in): passes on equal models, and shows the smallest input that tells two apart."""

import numpy as np
import onnx
from onnx import TensorProto, helper, numpy_helper

from fixtures import artifacts as A
from model_checks.core.pool import ModelPool
from model_checks.core.properties import describe, equivalence_property, feeds_strategy
from model_checks.core.session import GateSession
from model_checks.manifest.model import TensorSpec


def kinked(threshold: float | None) -> onnx.ModelProto:
    """y = x, plus relu(x - threshold) when a threshold is given: equal to the identity until an input passes it."""
    nodes = [helper.make_node("Identity", ["input"], ["y"])]
    inits = []
    if threshold is not None:
        inits = [numpy_helper.from_array(np.array(threshold, np.float32), "T")]
        nodes = [
            helper.make_node("Sub", ["input", "T"], ["d"]),
            helper.make_node("Relu", ["d"], ["r"]),
            helper.make_node("Add", ["input", "r"], ["y"]),
        ]
    g = helper.make_graph(
        nodes,
        "kinked",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 6])],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, ["batch", 6])],
        inits,
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 13)])
    m.ir_version = 8
    return m


IFACE = {"inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 6], "range": [-1.0, 1.0]}]}


def art(tmp_path, threshold):
    A.pair(tmp_path, variant_model=kinked(threshold), reference_model=kinked(None), **IFACE)
    gs = GateSession(roots=[tmp_path])
    return gs.pool, next(a for a in gs.artifacts if a.manifest.model_name == "variant")


def test_drawn_feeds_respect_the_interface():
    from hypothesis import given, settings

    specs = [
        TensorSpec("x", "float32", ("batch", 3), range=(-2.0, -1.0)),
        TensorSpec("k", "int64", ("batch", 2), range=(0, 5)),
    ]

    @settings(max_examples=30, deadline=None, database=None)
    @given(feeds_strategy(specs, max_batch=3))
    def prop(feeds):
        assert 1 <= feeds["x"].shape[0] <= 3 and feeds["x"].shape[0] == feeds["k"].shape[0]  # one batch for all inputs
        assert feeds["x"].dtype == np.float32 and -2.0 <= feeds["x"].min() and feeds["x"].max() <= -1.0
        assert (
            feeds["k"].dtype == np.int64 and 0 <= feeds["k"].min() and feeds["k"].max() <= 5
        )  # inclusive since issue 10

    prop()


def test_equal_models_pass(tmp_path):
    pool, variant = art(tmp_path, None)
    r = equivalence_property(pool, variant, max_examples=15, derandomize=True)
    assert r and "on 15 generated input(s)" in str(r)


def test_a_failure_shows_the_smallest_input_and_is_reproducible(tmp_path):
    pool, variant = art(tmp_path, 0.5)
    first = equivalence_property(pool, variant, max_examples=60, derandomize=True)
    assert not first
    text = str(first)
    assert "smallest input found" in text and "input: shape [1, 6]" in text  # shrunk to one sample
    assert "output 'y': FAILED" in text
    again = equivalence_property(ModelPool(), variant, max_examples=60, derandomize=True)
    assert str(again) == text  # derandomized: the same run, the same smallest input


def test_describe_large_inputs_by_their_odd_values():
    a = np.zeros((1, 3, 8, 8), np.float32)
    a[0, 1, 2, 3] = 0.75
    (line,) = describe({"image": a})
    assert "shape [1, 3, 8, 8]" in line and "1 value(s) other than" in line and "[0, 1, 2, 3]=" in line


def test_the_documented_opt_in_runs_per_artifact(pytester):
    """The snippet from model_checks.core.properties' docstring, as a user's test file, over a gate run."""
    import model_checks.core.properties as P

    A.pair(pytester.path / "arts", variant_model=kinked(0.5), reference_model=kinked(None), **IFACE)
    code = "import pytest\n" + "\n".join(
        line[4:] for line in P.__doc__.splitlines() if line.startswith("    ")
    )  # the indented snippet
    pytester.makepyfile(test_property=code)
    r = pytester.runpytest_subprocess("--model-checks", "arts", "test_property.py", "-p", "no:cacheprovider", "-v")
    r.stdout.fnmatch_lines(
        [
            "*test_equivalence_by_property?ref@1.0? SKIPPED*",
            "*test_equivalence_by_property?variant@1.0? FAILED*",
            "*smallest input found*",
        ]
    )
