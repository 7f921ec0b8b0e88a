"""Localisation held to its caps on hostile models built here: a graph of thousands of nodes (linear work,
the time cap from the first byte), intermediates larger than the memory cap (skipped and listed, never
exposed), names that try to write to the terminal (escaped), and the gate's default: stop at the first node
over the tolerance, within a cap sized to the check."""

import json
import time
import types

import numpy as np
import onnx
import pytest

from fixtures import localize_models as L
from model_checks.localize import Caps, localize, locate, match, runner

CHAIN = 3200


class Counting(dict):
    """A dict that counts lookups: the work matching and the error walk do on a graph."""

    lookups = 0

    def get(self, key, default=None):
        Counting.lookups += 1
        return super().get(key, default)

    def __getitem__(self, key):
        Counting.lookups += 1
        return super().__getitem__(key)

    def __contains__(self, key):
        Counting.lookups += 1
        return super().__contains__(key)


@pytest.fixture
def counted(monkeypatch):
    real = match.Graph.__init__

    def init(self, model):
        real(self, model)
        self.producer, self.consumers = Counting(self.producer), Counting(self.consumers)

    monkeypatch.setattr(match.Graph, "__init__", init)
    Counting.lookups = 0
    return Counting


def test_a_graph_of_thousands_of_nodes_is_localised_in_linear_work(tmp_path, counted):
    """Matching once compared every tensor with every other (3,000 nodes took 16-30 s under a 3 s cap); now
    each node costs a bounded number of lookups, and the node that differs is still named."""
    onnx.save(L.chain(CHAIN), tmp_path / "ref.onnx")
    onnx.save(L.chain(CHAIN, perturb_at=1600), tmp_path / "bad.onnx")
    feeds = {"input": np.random.default_rng(0).uniform(0, 1, (1, 8)).astype(np.float32)}
    start = time.monotonic()
    found = localize(
        tmp_path / "bad.onnx",
        tmp_path / "ref.onnx",
        tmp_path,
        feeds,
        "samples",
        1e-3,
        "metadata.yaml",
        Caps(time_s=3.0),
        first_only=True,
    )
    took = time.monotonic() - start
    assert counted.lookups < 40 * CHAIN, f"{counted.lookups} graph lookups for {CHAIN} nodes: not linear"
    assert took < 3.0 + 30.0  # the cap, plus one chunk and a generous margin for a loaded machine
    if found.stopped in ("matching", "time"):  # a machine too loaded for 3 s still stops at its cap, and says so
        assert "stopped at the time cap of 3 s" in str(found)
    else:
        assert found.hint.node == "n1600" and found.rows[-1].tensor == "output"


def test_the_time_cap_stops_between_chunks_and_says_where_it_came_from(tmp_path, monkeypatch):
    ref = L.convnet(size=64)
    onnx.save(ref, tmp_path / "ref.onnx")
    onnx.save(L.perturbed(ref, "conv3.weight"), tmp_path / "bad.onnx")
    now = [time.monotonic()]
    monkeypatch.setattr(
        locate, "time", types.SimpleNamespace(monotonic=lambda: now[0])
    )  # a clock that runs with the runs
    real = runner.Exposed.run
    monkeypatch.setattr(
        runner.Exposed, "run", lambda self, names: now.__setitem__(0, now[0] + 1.0) or real(self, names)
    )
    caps = Caps.for_check(0.25)  # a check of a quarter second: the 5 s floor applies
    assert (caps.time_s, caps.basis) == (5.0, "the larger of 5 s and 10x the check's own 0.25 s")
    found = localize(
        tmp_path / "bad.onnx",
        tmp_path / "ref.onnx",
        tmp_path,
        {"input": L.inputs(4, size=64)},
        "samples",
        1e-3,
        "metadata.yaml",
        Caps(caps.time_s, 1, caps.basis),
    )
    # one tensor a chunk (1 MiB cap), a chunk takes two seconds (one a side): after two chunks (4 s), a third would
    # end past the 5 s cap, so it never starts
    assert found.stopped == "time" and len(found.rows) == 2
    assert (
        "stopped at the time cap of 5 s (the larger of 5 s and 10x the check's own 0.25 s): 19 tensor(s) not measured "
        "(the full table: model-checks localize ARTIFACT_DIR --time-cap S)"
    ) in str(found)
    assert "the error accumulates" not in str(found)  # a stopped table concludes nothing about what it did not reach
    assert Caps.for_check(2.0).time_s == 20.0
    assert Caps.for_check(100.0).basis == "the larger of 5 s and 10x the check's own 100.00 s, at most 60 s"


def test_the_gate_stops_at_the_first_node_over_the_tolerance(tmp_path):
    ref = L.convnet(size=64)
    onnx.save(ref, tmp_path / "ref.onnx")
    onnx.save(L.perturbed(ref, "conv3.weight"), tmp_path / "bad.onnx")
    args = (
        tmp_path / "bad.onnx",
        tmp_path / "ref.onnx",
        tmp_path,
        {"input": L.inputs(4, size=64)},
        "samples",
        1e-3,
        "metadata.yaml",
        Caps(memory_mb=1),
    )
    hint_only = localize(*args, first_only=True)
    full = localize(*args)
    assert hint_only.hint.node == full.hint.node == "conv3"
    assert hint_only.rows[-1].node == "conv3" and len(hint_only.rows) == 10 and len(full.rows) == 21
    assert (
        "stopped at the first node over the tolerance: 11 later tensor(s) not measured "
        "(the full table: model-checks localize ARTIFACT_DIR)"
    ) in str(hint_only)


def test_intermediates_over_the_memory_cap_are_skipped_listed_and_never_exposed(tmp_path, monkeypatch):
    """2 MiB tensors against a 2 MiB cap (1 MiB a side): with a shape inference can size, the tensor is never
    exposed; with a shape only the run reveals, it is dropped before it is measured."""
    exposed = []
    real = runner.Exposed.run
    monkeypatch.setattr(runner.Exposed, "run", lambda self, names: exposed.extend(names) or real(self, names))
    onnx.save(L.broadcast(2048), tmp_path / "ref.onnx")
    onnx.save(L.broadcast(2048, scale=1.5), tmp_path / "bad.onnx")
    x = np.random.default_rng(0).uniform(0, 1, (1, 256)).astype(np.float32)
    found = localize(
        tmp_path / "bad.onnx",
        tmp_path / "ref.onnx",
        tmp_path,
        {"x": x},
        "samples",
        1e-3,
        "metadata.yaml",
        Caps(memory_mb=2),
    )
    assert "wide" not in exposed and [r.tensor for r in found.rows] == ["mean", "y"]
    assert found.hint.node == "scale"
    assert "not comparable: wide: 2.0 MiB, over the memory cap of 1.0 MiB a side: skipped" in str(found)

    onnx.save(L.broadcast(2048, shape_input=True), tmp_path / "ref.onnx")
    onnx.save(L.broadcast(2048, scale=1.5, shape_input=True), tmp_path / "bad.onnx")
    feeds = {"x": x, "shape": np.array([2048, 256], np.int64)}
    found = localize(
        tmp_path / "bad.onnx",
        tmp_path / "ref.onnx",
        tmp_path,
        feeds,
        "samples",
        1e-3,
        "metadata.yaml",
        Caps(memory_mb=2),
    )
    assert [r.tensor for r in found.rows] == ["mean", "y"]
    assert (
        "not comparable: wide: 2.0 MiB, over the memory cap of 1.0 MiB a side: skipped (its size was only known once "
        "it had run)"
    ) in str(found)


HOSTILE = (
    "conv3\x1b[2K\r\x07\nPASSED tests/test_gate.py::test_equivalence[forged@1]\x1b[32m "
    "\x1b]8;;https://example.invalid/\x07click\x1b]8;;\x07\u202e"
)


def test_hostile_node_and_tensor_names_are_escaped_everywhere_it_prints(tmp_path):
    ref = L.convnet()
    names = {"conv3": HOSTILE, "conv3_out": HOSTILE + "_out"}
    onnx.save(L.renamed(ref, names), tmp_path / "ref.onnx")
    onnx.save(L.renamed(L.perturbed(ref, "conv3.weight"), names), tmp_path / "bad.onnx")
    found = localize(
        tmp_path / "bad.onnx",
        tmp_path / "ref.onnx",
        tmp_path,
        {"input": L.inputs()},
        "case\x1b[1m",
        1e-3,
        "metadata.yaml",
    )
    assert found.hint.node == HOSTILE  # the value keeps the name; what prints is escaped
    text = str(found)
    assert all(line.isprintable() for line in text.splitlines())
    assert not any(line.lstrip().startswith("PASSED") for line in text.splitlines())
    assert (
        "hint: node 'conv3\\x1b[2K\\r\\x07\\nPASSED tests/test_gate.py::test_equivalence[forged@1]\\x1b[32m "
        "\\x1b]8;;https://example.invalid/\\x07click\\x1b]8;;\\x07\\u202e' (Conv) raises rel_l2 by"
    ) in text
    assert "localisation (case: case\\x1b[1m;" in text
    assert "\\u202e_out  " in text  # the tensor's cell, cut to its width, escaped before it was cut
    assert "\x1b" not in json.dumps(found.to_json())  # `model-checks localize --json` escapes as JSON does


def test_a_failed_equivalence_prints_hostile_names_escaped(tmp_path):
    """Through the check: the lines under the failure and the figure for reports carry the names escaped."""
    from fixtures import artifacts as A
    from model_checks.core.session import GateSession

    ref = L.convnet()
    names = {"conv3": HOSTILE, "conv3_out": HOSTILE + "_out"}
    A.pair(
        tmp_path / "arts",
        L.renamed(L.perturbed(ref, "conv3.weight"), names),
        L.renamed(ref, names),
        inputs=[{"name": "input", "dtype": "float32", "shape": ["batch", 3, 8, 8]}],
        outputs=[{"name": "logits", "dtype": "float32", "shape": ["batch", 10]}],
    )
    gs = GateSession(roots=[tmp_path / "arts"])
    result = gs.run_check("equivalence", next(a for a in gs.artifacts if a.id == "variant@1.0"))
    gs.pool.close()
    assert not result and all(line.isprintable() for line in result.details)
    assert any(line.startswith("    hint: node 'conv3\\x1b[2K\\r\\x07\\nPASSED ") for line in result.details)
    assert not any("stopped at" in line for line in result.details)  # one chunk measured it all: nothing was left
    assert result.figures["localize_hint"].isprintable() and result.figures["localize_hint"].endswith("\\u202e (Conv)")


def test_under_a_check_one_pass_of_each_model_serves_the_table_and_the_final_outputs(tmp_path, monkeypatch):
    """The check's rel_l2 is handed on and the first chunk fetches the graph's outputs: two sessions in all, where
    a separate run for the final comparison made four."""
    ref = L.convnet()
    onnx.save(ref, tmp_path / "ref.onnx")
    onnx.save(L.perturbed(ref, "conv3.weight"), tmp_path / "bad.onnx")
    sessions = []
    real = runner.Exposed.session
    monkeypatch.setattr(
        runner.Exposed, "session", lambda self, *a, **k: sessions.append(self.optimized) or real(self, *a, **k)
    )
    found = localize(
        tmp_path / "bad.onnx",
        tmp_path / "ref.onnx",
        tmp_path,
        {"input": L.inputs()},
        "samples",
        1e-3,
        "metadata.yaml",
        Caps.for_check(0.1),
        output="logits",
        check_error=0.2,
        first_only=True,
    )
    assert sessions == [False, False] and found.hint.node == "conv3"
    assert found.final["off"] > 1e-3 and found.final["on"] == 0.2  # the check's figure, reused
