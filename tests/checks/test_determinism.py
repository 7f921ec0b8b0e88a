"""`determinism`: a tolerance below the noise the runtime itself shows fails, naming the spread that shows it."""

import numpy as np

from fixtures import artifacts as A
from fixtures import runtime_models as R
from model_checks.checks import determinism
from model_checks.checks.context import CheckContext
from model_checks.core.session import GateSession

INPUTS = [{"name": "input", "dtype": "float32", "shape": ["batch", 3, 16, 16]}]


def conv_bn_artifact(root, tolerance):
    """The same Conv + BatchNormalization model as variant and reference: equivalence on onnxruntime is exact."""
    A.onnx_artifact(root / "ref", R.conv_bn_random(), name="ref", inputs=INPUTS)
    A.onnx_artifact(
        root / "variant",
        R.conv_bn_random(),
        name="variant",
        inputs=INPUTS,
        reference={"path": "../ref/model.onnx"},
        tolerance=tolerance,
        determinism=True,
    )
    gs = GateSession([root])
    return gs, next(a for a in gs.artifacts if a.id == "variant@1.0")


def test_a_tolerance_below_the_graph_optimization_spread_fails(tmp_path):
    gs, art = conv_bn_artifact(tmp_path, {"rel_l2": 1e-9, "mae": None})
    assert gs.run_check("equivalence", art), "the same model on the same runtime and settings matches exactly"
    r = gs.run_check("determinism", art)
    assert not r
    problem = next(line for line in r.details if "below this runtime's" in line)
    spread = r.figures["noise_rel_l2"]
    assert spread > 1e-9
    assert problem == (
        f"  - output 'output': rel_l2 1e-09 (metadata.yaml) is below this runtime's graph-optimization spread "
        f"{spread:.3g}: the check would flake; set it above {spread:.3g} in 'tolerance' of variant/metadata.yaml "
        "(or policy.yaml)"
    )
    assert any(line.startswith("    graph-optimization  'output': rel_l2 ") for line in r.details)


def test_a_tolerance_above_the_noise_passes_and_reports_it(tmp_path):
    gs, art = conv_bn_artifact(tmp_path, {"rel_l2": 1e-3, "mae": None})
    r = gs.run_check("determinism", art)
    assert r, str(r)
    assert r.headline == "determinism: variant@1.0: every declared tolerance is above the runtime's own noise"
    assert any(line.startswith("    run-to-run          'output': rel_l2 ") for line in r.details)


def test_a_thread_count_spread_above_the_tolerance_is_named(tmp_path):
    A.onnx_artifact(tmp_path / "m", name="m", tolerance={"rel_l2": 1e-7, "mae": None}, determinism=True)
    gs = GateSession([tmp_path])
    spread = {
        "run": {"logits": {"rel_l2": 0.0, "mae": 0.0, "max_abs": 0.0}},
        "threads": {"logits": {"rel_l2": 3e-6, "mae": 1e-7, "max_abs": 2e-6}},
        "optimization": {"logits": {"rel_l2": 1e-8, "mae": 0.0, "max_abs": 0.0}},
    }
    r = determinism.judge(CheckContext(gs.artifacts[0], gs.pool), spread)
    assert not r
    assert r.details[0] == (
        "  - output 'logits': rel_l2 1e-07 (metadata.yaml) is below this runtime's thread-count spread 3e-06: "
        "the check would flake; set it above 3e-06 in 'tolerance' of m/metadata.yaml (or policy.yaml)"
    )


def test_the_measurement_spans_threads_and_optimizations(tmp_path):
    path = A.onnx_artifact(tmp_path, R.conv_bn_random(), name="c") / "model.onnx"
    x = {"input": np.random.default_rng(0).standard_normal((1, 3, 16, 16)).astype(np.float32)}
    spread = determinism.measure(path, tmp_path, x)
    assert set(spread) == {"run", "threads", "optimization"}
    assert (
        spread["optimization"]["output"]["max_abs"] > 0
    )  # folding BatchNormalization into the weights rounds differently


def test_determinism_is_collected_where_asked_and_in_a_nightly_run(tmp_path):
    from model_checks.checks import applicable

    A.onnx_artifact(tmp_path / "on", name="on", determinism=True)
    A.onnx_artifact(tmp_path / "off", name="off")
    arts = {a.id: a for a in GateSession([tmp_path]).artifacts}
    assert "determinism" in applicable(arts["on@1.0"]) and "determinism" not in applicable(arts["off@1.0"])
    assert "determinism" in applicable(arts["off@1.0"], nightly=True)
