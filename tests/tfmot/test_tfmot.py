"""tfmot checks: a model both transforms accept, and each failure class produced on purpose, named by layer.
One TensorFlow import for the module; models are tiny so each transform takes a second or two."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("tensorflow_model_optimization")

from model_checks.backends.keras.loader import keras_modules  # noqa: E402
from model_checks.checks import applicable  # noqa: E402
from model_checks.core.artifact import Artifact  # noqa: E402
from model_checks.core.session import GateSession  # noqa: E402
from model_checks.tfmot import NESTED_MODEL, NON_LAYER_OP, TENSOR_RANK, UNSUPPORTED  # noqa: E402
from model_checks.tfmot.prune import check_prune  # noqa: E402
from model_checks.tfmot.quantize import check_quantize, plan  # noqa: E402

tf, keras = keras_modules()
X_IMG = np.random.default_rng(0).uniform(0, 1, (4, 8, 8, 3)).astype(np.float32)
X_VEC = np.random.default_rng(0).uniform(0, 1, (4, 8)).astype(np.float32)


class Doubler(keras.layers.Layer):
    """A custom layer tfmot knows nothing about."""

    def call(self, x):
        return x * 2.0


def good():
    keras.utils.set_random_seed(0)
    i = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Rescaling(2.0, offset=-1.0, name="rescale")(i)
    x = keras.layers.Conv2D(8, 3, name="conv")(x)
    x = keras.layers.BatchNormalization(name="bn")(x)
    x = keras.layers.ReLU()(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    x = keras.layers.Dense(16, activation="relu", name="fc")(x)
    return keras.Model(i, keras.layers.Dense(3, name="logits")(x))


def nested_sequential():
    i = keras.Input((8,))
    return keras.Model(
        i,
        keras.Sequential([keras.layers.Dense(16, name="inner1"), keras.layers.Dense(3, name="inner2")], name="head")(
            keras.layers.Dense(8, name="stem")(i)
        ),
    )


def bare_sum():
    i = keras.Input((8,))
    return keras.Model(i, keras.layers.Dense(4, name="a")(i) + keras.layers.Dense(4, name="b")(i))


def conv1d():
    i = keras.Input((8, 3))
    return keras.Model(i, keras.layers.Conv1D(4, 3, name="temporal")(i))


def custom():
    i = keras.Input((8,))
    return keras.Model(i, keras.layers.Dense(3, name="fc")(Doubler(name="doubler")(i)))


def only(report, reason, layer):
    assert not report
    assert [p.reason for p in report.problems] == [reason] and report.problems[0].layer.startswith(layer), (
        report.problems
    )
    return str(report)


def test_the_plan_gives_bn_and_preprocessing_their_configs():
    configs, problems = plan(good())
    assert not problems
    assert configs["bn"] == "bn-8bit-moving-average" and configs["rescale"] == "no-op" and configs["conv"] == "default"


def test_quantize_applies_runs_close_and_round_trips():
    r = check_quantize(good(), [X_IMG])
    assert r, str(r)
    assert 0 < r.rel_l2 < 0.05  # calibrated 8-bit fake quantization: close, but not identical
    assert r.roundtrip is None and "saves and loads back" in str(r)


def test_prune_reaches_the_target_and_writes_summaries(tmp_path):
    r = check_prune(good(), [X_IMG], target=0.6, log_dir=tmp_path)
    assert r, str(r)
    assert set(r.sparsity) == {"conv", "fc", "logits"} and min(r.sparsity.values()) >= 0.59
    assert r.skipped == ("rescale",) and r.summaries >= 1 and list(tmp_path.rglob("events.out.tfevents*"))


def test_sparsity_comes_from_the_masks_and_the_weights_together(tmp_path):
    """A fit that diverges leaves NaN where the masks prune (NaN * 0 is NaN): still on target, with a note.
    Weights the masks never reached (finite, non-zero where the mask is 0) are not pruned: below target."""
    from model_checks.tfmot.prune import fit_briefly, prune_model, reached_sparsity
    from model_checks.tfmot.prune import plan as prune_plan

    model = good()
    decisions, _ = prune_plan(model)
    pmodel, _, _ = prune_model(model, decisions, 0.5)
    fit_briefly(pmodel, [X_IMG], [model(X_IMG).numpy()], tmp_path)
    conv = next(
        layer for layer in pmodel.layers if getattr(layer, "layer", None) is not None and layer.layer.name == "conv"
    )
    ((weight, mask, _),) = conv.pruning_vars
    on_target, diverged = reached_sparsity(pmodel)
    assert abs(on_target["conv"] - 0.5) < 0.01 and diverged == []
    pruned = np.asarray(mask) == 0
    weight.assign(np.where(pruned, np.nan, np.asarray(weight)))
    sparsity, diverged = reached_sparsity(pmodel)
    assert sparsity["conv"] == on_target["conv"] and diverged == ["conv"]
    weight.assign(np.where(pruned, 0.5, np.asarray(weight)))
    sparsity, _ = reached_sparsity(pmodel)
    assert sparsity["conv"] == 0.0


def test_nested_model_quantize_fails_prune_recurses():
    text = only(check_quantize(nested_sequential(), [X_VEC]), NESTED_MODEL, "head")
    assert "layer 'head' (Sequential): nested model" in text
    r = check_prune(nested_sequential(), [X_VEC])
    assert r and set(r.sparsity) == {"stem", "inner1", "inner2"}, str(r)  # the nested model's layers are pruned too


def test_a_bare_tensor_sum_is_a_non_layer_operation():
    for report in (check_quantize(bare_sum(), [X_VEC]), check_prune(bare_sum(), [X_VEC])):
        text = only(report, NON_LAYER_OP, "tf.__operators__.add")
        assert "(a + b)" in text and "keras.layers.Add()" in text


def test_separable_conv2d_is_quantized_through_tfmot_transforms_but_1d_is_a_rank_problem():
    i = keras.Input((8, 8, 3))
    sep2 = keras.Model(i, keras.layers.GlobalAveragePooling2D()(keras.layers.SeparableConv2D(4, 3, name="sep2")(i)))
    assert check_quantize(sep2, [X_IMG], roundtrip=False)
    i = keras.Input((8, 3))
    sep1 = keras.Model(i, keras.layers.SeparableConv1D(4, 3, name="sep1")(i))
    assert "SeparableConv2D on rank-4 tensors" in only(check_quantize(sep1, [X_IMG[:, 0]]), TENSOR_RANK, "sep1")


def test_conv1d_is_a_tensor_rank_problem_for_quantization_only():
    text = only(check_quantize(conv1d(), [X_IMG[:, 0]]), TENSOR_RANK, "temporal")
    assert "Conv2D on rank-4 tensors, not Conv1D on rank-3" in text
    assert check_prune(conv1d(), [X_IMG[:, 0]])


def test_a_custom_layer_is_unsupported_until_listed_for_pruning():
    only(check_quantize(custom(), [X_VEC]), UNSUPPORTED, "doubler")
    assert "tfmot.skip_layers" in only(check_prune(custom(), [X_VEC]), UNSUPPORTED, "doubler")
    r = check_prune(custom(), [X_VEC], skip=["doubler"])
    assert r and r.skipped == ("doubler",) and list(r.sparsity) == ["fc"]


def artifact(d: Path, model, **tfmot) -> Path:
    d.mkdir(parents=True)
    model.save(d / "model.keras")
    (d / "metadata.yaml").write_text(
        yaml.safe_dump({"model_name": d.name, "version": "1", "file": "model.keras", "tfmot": tfmot})
    )
    return d


def test_through_the_gate_collected_only_for_keras_that_declares_tfmot(tmp_path):
    artifact(tmp_path / "ok", good(), quantize=True, prune=True, target_sparsity=0.5)
    artifact(tmp_path / "bad", bare_sum(), quantize=True)
    artifact(tmp_path / "none", custom())
    gs = GateSession(roots=[tmp_path])
    arts = {a.manifest.model_name: a for a in gs.artifacts}
    assert "tfmot_prune" in applicable(arts["ok"]) and "tfmot_prune" not in applicable(arts["bad"])
    assert not {"tfmot_quantize", "tfmot_prune"} & set(applicable(arts["none"]))
    assert gs.run_check("tfmot_quantize", arts["ok"]) and gs.run_check("tfmot_prune", arts["ok"])
    r = gs.run_check("tfmot_quantize", arts["bad"])
    assert not r and r.headline.endswith("quantization-aware training does not apply (non-layer operation)")
    assert "declares tfmot.quantize: true" in str(r)


def test_onnx_artifacts_never_get_tfmot_checks(tmp_path):
    from fixtures import artifacts as A

    A.onnx_artifact(tmp_path / "o", tfmot={"quantize": True, "prune": True})
    art = GateSession(roots=[tmp_path]).artifacts[0]
    assert isinstance(art, Artifact) and not {"tfmot_quantize", "tfmot_prune"} & set(applicable(art))


def test_the_package_selects_keras_2_itself():
    """A fresh process, TF_USE_LEGACY_KERAS unset, tf_keras never imported by the user."""
    code = textwrap.dedent("""
        import os
        os.environ.pop("TF_USE_LEGACY_KERAS", None)
        from model_checks.tfmot.quantize import tfmot_module
        tfmot = tfmot_module()
        import tensorflow as tf
        print("KERAS", tf.keras.__name__.split(".")[0], os.environ["TF_USE_LEGACY_KERAS"])
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert "KERAS tf_keras 1" in out.stdout, out.stderr[-2000:]
