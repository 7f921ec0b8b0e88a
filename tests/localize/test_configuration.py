"""Localisation examines the configuration that failed: the check's own session options and, where the error
appears only with onnxruntime's graph optimizations on, the optimized graph with its fused nodes named.

The divergence is made in the test, the same on every CPU: onnxruntime fuses onnx's erf spelling of GELU into
one node, and with the session option `optimization.enable_gelu_approximation` (injected into the check's
session options here) into FastGelu, a tanh approximation about 1e-4 away; with graph optimizations off the
artifact matches its reference to about 1e-8. The tolerance, 1e-6, sits between the two."""

import numpy as np
import onnx
import pytest

from fixtures import artifacts as A
from fixtures import localize_models as L
from model_checks.localize import localize

TOL = 1e-6
X = np.random.default_rng(1).normal(0, 2, (4, 16)).astype(np.float32)


@pytest.fixture
def approximating(monkeypatch):
    """The check's session options (`backends.onnx.runner.session_options`) ask for onnxruntime's GELU approximation."""
    from model_checks.backends.onnx import runner

    real = runner.session_options

    def options(*args, **kwargs):
        so = real(*args, **kwargs)
        so.add_session_config_entry("optimization.enable_gelu_approximation", "1")
        return so

    monkeypatch.setattr(runner, "session_options", options)


def test_an_error_that_only_fused_kernels_make_is_localised_as_the_check_ran(tmp_path, approximating):
    art, ref = L.gelu_pair()
    onnx.save(ref, tmp_path / "ref.onnx")
    onnx.save(art, tmp_path / "art.onnx")
    found = localize(tmp_path / "art.onnx", tmp_path / "ref.onnx", tmp_path, {"x": X}, "samples", TOL, "metadata.yaml")
    on, off = found.final["on"], found.final["off"]
    assert found.optimizations == "on" and on > 10 * TOL and off < TOL / 10
    assert found.hint.op == "FastGelu" and found.hint.note == "fused from div, erf, add, mul, gelu"
    text = str(found)
    assert text.startswith(
        "localisation (case: samples; runtime graph optimizations on, as the check ran them): 1 tensor(s) compared"
    )
    assert (
        f"the divergence appears only with runtime graph optimizations on: output 'y' rel_l2 {on:.3g} "
        f"with them (as the "
        f"check ran), {off:.3g} with them off, against the tolerance rel_l2 <= 1e-06 (metadata.yaml): onnxruntime's "
        f"rewritten kernels compute differently"
    ) in text
    assert (
        f"fused nodes: FastGelu '{found.hint.node}' (from div, erf, add, mul, gelu): look there first; with "
        f"graph_optimization_level ORT_DISABLE_ALL at deployment the artifact stays within the tolerance"
    ) in text
    assert f"hint: node '{found.hint.node}' (FastGelu) raises rel_l2 by {on:.3g} over its inputs" in text
    assert "the error accumulates" not in text


def test_without_the_fused_kernel_nothing_differs_and_the_table_runs_unoptimized(tmp_path):
    art, ref = L.gelu_pair()
    onnx.save(ref, tmp_path / "ref.onnx")
    onnx.save(art, tmp_path / "art.onnx")
    found = localize(tmp_path / "art.onnx", tmp_path / "ref.onnx", tmp_path, {"x": X}, "samples", TOL, "metadata.yaml")
    assert found.optimizations == "off" and found.final["on"] < TOL and not found.fused
    assert "runtime graph optimizations off on both sides" in str(found)


def test_a_failed_equivalence_says_the_error_comes_with_the_optimizations(tmp_path, approximating):
    """Through the check, in this process: the message a user reads names the fused node."""
    from model_checks.core.session import GateSession

    art, ref = L.gelu_pair()
    A.pair(
        tmp_path / "arts",
        art,
        ref,
        tolerance={"rel_l2": TOL},
        inputs=[{"name": "x", "dtype": "float32", "shape": ["batch", 16]}],
        outputs=[{"name": "y", "dtype": "float32", "shape": ["batch", 16]}],
    )
    gs = GateSession(roots=[tmp_path / "arts"])
    result = gs.run_check("equivalence", next(a for a in gs.artifacts if a.id == "variant@1.0"))
    gs.pool.close()
    text = "\n".join(result.details)
    assert not result
    assert "; runtime graph optimizations on, as the check ran them): 1 tensor(s) compared" in text
    assert "  the divergence appears only with runtime graph optimizations on: output 'y' rel_l2 " in text
    assert "fused nodes: FastGelu " in text and "(from div, erf, add, mul, gelu): look there first" in text
    assert result.figures["localize_hint"].endswith(" (FastGelu)")


def test_int8_kernels_are_read_through_their_fused_nodes(tmp_path):
    """Injected: the check measured 2.0 where the unoptimized run gives about 0.3, against a limit of 1. The table
    is then measured on the optimized graph: quantized tensors are read where they survive and dequantized here,
    and each row names the fused kernel (QLinearConv) that computed it. Its own final error is within the limit,
    so it says it does not reproduce the failure instead of concluding that the error accumulates."""
    ref = L.convnet()
    onnx.save(ref, tmp_path / "ref.onnx")
    onnx.save(L.int8_miscalibrated(ref, tmp_path, "relu3_out", L.inputs(32, seed=5)), tmp_path / "q.onnx")
    args = (
        tmp_path / "q.onnx",
        tmp_path / "ref.onnx",
        tmp_path,
        {"input": L.inputs()},
        "samples",
        1.0,
        "metadata.yaml",
    )
    unoptimized = localize(*args)
    found = localize(*args, output="logits", check_error=2.0)
    assert unoptimized.optimizations == "off" and found.optimizations == "on"
    fused = [r for r in found.rows if r.note.startswith("fused from conv")]
    assert fused and all(r.op == "QLinearConv" for r in fused)
    same = {r.tensor: r.rel_l2 for r in unoptimized.rows}
    assert all(abs(r.rel_l2 - same[r.tensor]) < 0.02 for r in found.rows)  # the same int8 arithmetic, fused or not
    final = next(r.rel_l2 for r in found.rows if r.tensor == "logits")
    assert (
        f"hint: this run's final rel_l2 {final:.3g} (output 'logits') is within the tolerance rel_l2 <= 1 "
        "(metadata.yaml): "
        "it does not reproduce the failure as rel_l2"
    ) in str(found)
    assert "the error accumulates" not in str(found)
