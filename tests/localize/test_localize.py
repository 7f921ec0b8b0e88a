"""Localisation on deliberately broken variants built here: the node it names first, what it refuses to
match, its bounds, and the lines a user reads under a failed equivalence."""

from pathlib import Path

import onnx
import pytest

from fixtures import artifacts as A
from fixtures import localize_models as L
from model_checks.localize import Caps, localize
from model_checks.localize.match import match


def _save(tmp: Path, **models) -> None:
    for name, m in models.items():
        onnx.save(m, tmp / f"{name}.onnx")


def _run(tmp: Path, name: str, limit=1e-3, caps=Caps()):
    return localize(
        tmp / f"{name}.onnx", tmp / "ref.onnx", tmp, {"input": L.inputs()}, "samples", limit, "metadata.yaml", caps
    )


def test_a_perturbed_conv_in_the_middle_is_named_first(tmp_path):
    ref = L.convnet()
    _save(tmp_path, ref=ref, bad=L.perturbed(ref, "conv3.weight"))
    found = _run(tmp_path, "bad")
    assert found.hint.node == "conv3" and found.hint.op == "Conv"
    assert all(r.rel_l2 == 0 for r in found.rows[: [r.node for r in found.rows].index("conv3")])
    text = str(found)
    assert (
        "hint: node 'conv3' (Conv) raises rel_l2 by 0.355 over its inputs, above the tolerance rel_l2 <= 0.001 (metadata.yaml): look there first"
        in text
    )
    marked = [line.split() for line in text.splitlines() if "<-- first over the limit" in line]
    assert marked == [["conv3_out", "conv3", "(Conv)", "0.355", "+0.355", "<--", "first", "over", "the", "limit"]]


def test_an_fp16_model_accumulates_without_a_culprit(tmp_path):
    ref = L.convnet(depth=12)
    _save(tmp_path, ref=ref, half=L.fp16(ref))
    found = _run(tmp_path, "half", limit=5e-4)
    assert found.hint is None and len(found.rows) == 39
    assert found.final["off"] > 5e-4  # the run it concludes from shows the failure
    assert found.rows[-1].rel_l2 > found.rows[0].rel_l2  # it grows along the network
    assert "hint: no single node raises rel_l2 by more than 0.0005 (metadata.yaml): the error accumulates" in str(found)


def test_a_run_within_the_tolerance_never_concludes_that_the_error_accumulates(tmp_path):
    """The fp16 network's final rel_l2 (about 4e-4) is within 1e-3: no node crosses it, and neither does the end."""
    ref = L.convnet()
    _save(tmp_path, ref=ref, half=L.fp16(ref))
    found = _run(tmp_path, "half")
    final = next(r.rel_l2 for r in found.rows if r.tensor == "logits")
    assert found.hint is None and found.final["off"] < 1e-3 and final < 1e-3
    text = str(found)
    assert "the error accumulates" not in text
    assert (
        f"hint: this run's final rel_l2 {final:.3g} (output 'logits') is within the tolerance rel_l2 <= 0.001 "
        "(metadata.yaml): it does not reproduce the failure as rel_l2; the failing metric is in the lines above"
    ) in text


def test_the_badly_calibrated_int8_layer_is_named_with_its_sqnr(tmp_path):
    ref = L.convnet()
    _save(tmp_path, ref=ref, int8=L.int8_miscalibrated(ref, tmp_path, "relu3_out", L.inputs(32, seed=5)))
    found = _run(tmp_path, "int8", limit=0.1)
    assert (found.hint.tensor, found.hint.node, found.hint.note) == (
        "relu3_out_DequantizeLinear_Output",
        "bn3",
        "Relu folded into the quantization clip",
    )
    worst = [s.tensor for s in found.sqnr[:2]]
    assert "relu3_out" in worst
    assert "relu3_out (activation, node bn3) 1.4 dB" in str(found)
    assert "to keep a node in float: model-checks quantize ... --exclude NODE" in str(found)


def test_matching_refuses_names_that_changed_meaning(tmp_path):
    """After BN fusion the Conv output holds the BN output; in QDQ the Conv output named relu*_out is taken before the clip."""
    from model_checks.producers.optimize import optimize

    ref = L.convnet(depth=2)
    _save(tmp_path, ref=ref)
    optimize(tmp_path / "ref.onnx", tmp_path / "fused.onnx", ["fuse_bn_into_conv"])
    pairs, skipped, _ = match(onnx.load(tmp_path / "fused.onnx"), ref)
    why = dict((s.tensor, s.reason) for s in skipped)
    assert "conv0_out" not in {p.tensor for p in pairs}
    assert (
        why["conv0_out"]
        == "in the reference it feeds BatchNormalization 'bn0', which is not among its consumers here (fused or rewritten)"
    )
    q = L.int8_miscalibrated(ref, tmp_path, "none", L.inputs(8))
    pairs, skipped, _ = match(q, ref)
    why = dict((s.tensor, s.reason) for s in skipped)
    assert why["relu0_out"] == "produced by BatchNormalization here, by Relu in the reference"
    assert ("relu0_out_DequantizeLinear_Output", "relu0_out") in {(p.tensor, p.reference) for p in pairs}


def test_the_memory_cap_splits_the_run_and_the_time_cap_stops_it(tmp_path, monkeypatch):
    from model_checks.localize import runner

    ref = L.convnet(size=64)
    _save(tmp_path, ref=ref, bad=L.perturbed(ref, "conv3.weight"))
    calls = []
    real = runner.Exposed.run
    monkeypatch.setattr(runner.Exposed, "run", lambda self, names: calls.append(len(names)) or real(self, names))
    feeds = {"input": L.inputs(4, size=64)}  # each conv, bn and relu output: 4 x 8 x 64 x 64 float32, 512 KiB
    small = localize(
        tmp_path / "bad.onnx",
        tmp_path / "ref.onnx",
        tmp_path,
        feeds,
        "samples",
        1e-3,
        "metadata.yaml",
        Caps(memory_mb=1),
    )
    assert set(calls[:18]) == {1} and len(small.rows) == 21  # half a MiB a side: every large tensor alone
    stopped = _run(tmp_path, "bad", caps=Caps(time_s=0.0))  # the cap runs from the first byte: matching included
    assert stopped.stopped == "matching" and not stopped.rows
    assert "stopped at the time cap of 0 s while matching the two graphs: nothing measured" in str(stopped)


IFACE = {
    "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 3, 8, 8]}],
    "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 10]}],
}


@pytest.fixture
def broken(pytester):
    ref = L.convnet()
    A.pair(pytester.path / "arts", L.perturbed(ref, "conv3.weight"), ref, **IFACE)
    return pytester


def test_a_failed_equivalence_names_the_node(broken):
    r = broken.runpytest("--model-checks", "arts", "-p", "no:cacheprovider", "-k", "variant and equivalence")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(
        [
            "*localisation (case: generated, batch 1; runtime graph optimizations off on both sides): 21 tensor(s) compared*",
            "*hint: node 'conv3' (Conv) raises rel_l2 by * over its inputs, above the tolerance rel_l2 <= 0.001 (default (model-checks)): look there first",
        ]
    )
    assert "Traceback" not in r.stdout.str()


def test_localize_off_keeps_the_same_verdict_without_the_table(broken):
    r = broken.runpytest(
        "--model-checks",
        "arts",
        "-p",
        "no:cacheprovider",
        "-k",
        "variant and equivalence",
        "--model-checks-localize=off",
    )
    r.assert_outcomes(failed=1)
    assert "localisation" not in r.stdout.str()
    r = broken.runpytest("--model-checks", "arts", "-p", "no:cacheprovider", "--model-checks-localize=maybe")
    r.stderr.fnmatch_lines(["*--model-checks-localize: invalid choice: 'maybe' (choose from *on*off*)"])


def test_the_nightly_report_shows_the_worst_tensors_by_sqnr():
    from model_checks.nightly.document import ArtifactFigures, section

    a = ArtifactFigures()
    a.add(
        "equivalence",
        "failed",
        {"sqnr_worst": "relu3_out (activation, node bn3) 1.4 dB, conv4_out (activation, node conv4) 1.3 dB"},
    )
    assert (
        "five worst tensors by SQNR: relu3_out (activation, node bn3) 1.4 dB, conv4_out (activation, node conv4) 1.3 dB"
        in section("q@1", a, []).lines
    )


def test_a_failed_int8_equivalence_carries_its_sqnr_figures(tmp_path):
    from model_checks.core.artifact import Artifact  # noqa: F401  (the session builds it)
    from model_checks.core.session import GateSession

    ref = L.convnet()
    q = L.int8_miscalibrated(ref, tmp_path, "relu3_out", L.inputs(32, seed=5))
    A.pair(tmp_path / "arts", q, ref, tolerance={"rel_l2": 0.1}, **IFACE)
    gs = GateSession(roots=[tmp_path / "arts"])
    art = next(a for a in gs.artifacts if a.id == "variant@1.0")
    result = gs.run_check("equivalence", art)
    gs.pool.close()
    assert not result and result.figures["localize_hint"] == "bn3 (BatchNormalization)"
    assert "relu3_out (activation, node bn3)" in result.figures["sqnr_worst"]
