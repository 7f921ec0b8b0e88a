"""Keras (.keras, .h5) and SavedModel artifacts through every check, and against ONNX in both layouts.
TensorFlow is imported once for this module (about 5 s); the models are tiny."""

from pathlib import Path

import numpy as np
import pytest
import yaml

pytest.importorskip("tensorflow")
pytest.importorskip("tf_keras")

from model_checks.backends.keras.loader import keras_modules  # noqa: E402
from model_checks.checks import registry  # noqa: E402
from model_checks.core.session import GateSession  # noqa: E402

# every check each artifact gets, bar the manifest's (the registry's, not a list of ours)
CHECKS = tuple(name for name, check in registry().items() if check.applies is None and check.blocking != "failure")
IFACE = {
    "inputs": [{"name": "image", "dtype": "float32", "shape": ["batch", 8, 8, 3], "layout": "NHWC"}],
    "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 5]}],
}


def small(seed=0):
    _, keras = keras_modules()
    keras.utils.set_random_seed(seed)
    i = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, activation="relu")(i)
    x = keras.layers.GlobalAveragePooling2D()(x)
    return keras.Model(i, keras.layers.Dense(5, name="logits")(x))


def write(d: Path, file: str, **manifest) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    (d / "metadata.yaml").write_text(
        yaml.safe_dump({"model_name": d.name, "version": "1", "file": file, **manifest}, sort_keys=False)
    )
    return d


def results(root, name, trust=True):
    gs = GateSession(roots=[root], trust_code=trust)
    art = next(a for a in gs.artifacts if a.manifest.model_name == name)
    return {c: gs.run_check(c, art) for c in CHECKS}


@pytest.fixture(scope="module")
def model():
    return small()


@pytest.fixture(scope="module")
def root(tmp_path_factory, model):
    """A .keras reference, the same model as .h5 and as a SavedModel, and ONNX conversions in NHWC and NCHW."""
    tf, _ = keras_modules()
    import tf2onnx

    root = tmp_path_factory.mktemp("arts")
    (root / "ref").mkdir()
    model.save(root / "ref" / "model.keras")
    write(root / "ref", "model.keras")
    x = np.random.default_rng(0).uniform(0, 1, (32, 8, 8, 3)).astype(np.float32)
    np.savez(root / "eval.npz", x=x, y=np.argmax(model(x).numpy(), 1))
    (root / "h5").mkdir()
    model.save(root / "h5" / "model.h5")
    tf.saved_model.save(model, str(root / "sm" / "model"))
    sig = [tf.TensorSpec([None, 8, 8, 3], tf.float32, name="image")]
    for name, nchw in (("onnx_nhwc", None), ("onnx_nchw", ["image"])):
        proto, _ = tf2onnx.convert.from_keras(model, input_signature=sig, opset=13, inputs_as_nchw=nchw)
        (root / name).mkdir()
        (root / name / "model.onnx").write_bytes(proto.SerializeToString())
    return root


def test_keras_passes_every_check(root):
    write(
        root / "k",
        "../ref/model.keras",
        precision="fp32",
        eval_data="../eval.npz",
        accuracy_drop=0.0,
        reference={"path": "../h5/model.h5"},
        limits={
            "max_size_mb": 1,
            "dynamic_axes": ["batch"],
            "allowed_ops": ["InputLayer", "Conv2D", "GlobalAveragePooling2D", "Dense"],
            "max_accuracy_drop": 0.0,
        },
        **IFACE,
    )
    r = results(root, "k")
    assert all(r.values()) and not any(x.skipped for x in r.values()), "\n".join(map(str, r.values()))
    assert r["equivalence"].figures["max_abs"] == 0.0 and r["accuracy"].figures["accuracy"] == 1.0


def test_claims_against_the_keras_model(root):
    write(
        root / "bad",
        "../ref/model.keras",
        precision="fp16",
        limits={"allowed_ops": ["Dense"]},
        inputs=[{"name": "pixels", "shape": ["batch", 8, 8, 3]}],
        outputs=[{"name": "logits", "dtype": "float32", "shape": ["batch", 10]}],
    )
    r = results(root, "bad")
    text = str(r["metadata"])
    assert "precision: declared fp16, the model is fp32" in text
    assert "inputs: declared pixels but the model's inputs are image" in text
    assert "output 'logits': dim 1 declared 10, the model has 5" in text
    assert not r["limits"] and "Conv2D (x1)" in str(r["limits"])


def test_saved_model_and_h5_need_trust_and_then_pass(root):
    write(root / "h5", "model.h5", reference={"path": "../ref/model.keras"})
    write(root / "sm", "model", reference={"path": "../ref/model.keras"}, **IFACE)
    for name in ("h5", "sm"):
        refused = results(root, name, trust=False)["integrity"]
        assert not refused and "--model-checks-trust-code" in str(refused)
        r = results(root, name)
        assert r["integrity"] and r["metadata"] and r["equivalence"], "\n".join(map(str, r.values()))


def test_keras_safe_mode_refuses_a_lambda(tmp_path):
    _, keras = keras_modules()
    i = keras.Input((4,))
    (tmp_path / "m").mkdir()
    keras.Model(i, keras.layers.Lambda(lambda t: t * 2)(i)).save(tmp_path / "m" / "model.keras")
    write(tmp_path / "m", "model.keras")
    r = results(tmp_path, "m")["integrity"]
    assert not r and "safe mode" in str(r).lower()


@pytest.mark.parametrize("onnx_dir, layout", [("onnx_nhwc", "NHWC"), ("onnx_nchw", "NCHW")])
def test_onnx_against_keras_and_keras_against_onnx(root, onnx_dir, layout):
    """Both directions, both ONNX layouts: the Keras side is always fed NHWC, the ONNX side as declared or detected."""
    shape = ["batch", 8, 8, 3] if layout == "NHWC" else ["batch", 3, 8, 8]
    write(
        root / onnx_dir,
        "model.onnx",
        reference={"path": "../ref/model.keras"},
        inputs=[{"name": "image", "dtype": "float32", "shape": shape, "layout": layout}],
    )
    write(
        root / f"k_vs_{onnx_dir}",
        "../ref/model.keras",
        reference={"path": f"../{onnx_dir}/model.onnx"},
        eval_data="../eval.npz",
        limits={"max_accuracy_drop": 0.0},
    )
    for name in (onnx_dir, f"k_vs_{onnx_dir}"):
        r = results(root, name)["equivalence"]
        assert r and not r.skipped and r.figures["rel_l2"] < 1e-5, str(r)
    acc = results(root, f"k_vs_{onnx_dir}")["accuracy"]  # the NHWC eval data reaches the ONNX reference in its layout
    assert acc and acc.figures["reference_accuracy"] == 1.0, str(acc)


def test_a_different_keras_model_is_not_equivalent(root):
    small(seed=1).save(root / "other.keras")
    write(root / "other", "../other.keras", reference={"path": "../ref/model.keras"})
    r = results(root, "other")["equivalence"]
    assert not r and "differs from its reference" in str(r)


@pytest.mark.parametrize("path, fmt", [("ref/model.keras", "keras"), ("sm/model", "saved_model")])
def test_budget_target_times_the_traced_keras_model(root, model, path, fmt):
    """What a latency budget times: the model as a traced graph on the CPU, outputs copied back."""
    from model_checks.backends import open_target

    x = np.random.default_rng(1).uniform(0, 1, (2, 8, 8, 3)).astype(np.float32)
    t = open_target(root / path, fmt, root, "cpu", 1, trust_code=True)
    t.prepare({"image": x})
    out = t.call()
    assert len(out) == 1 and np.allclose(out[0], model(x).numpy(), atol=1e-6) and "on CPU:0" in t.description
    t.close()


def test_budget_on_gpu_without_one_names_what_is_missing(root):
    from model_checks.backends import open_target
    from model_checks.core.errors import DeviceUnavailable

    with pytest.raises(
        DeviceUnavailable,
        match=r"no GPU for TensorFlow: tf.config.list_physical_devices\('GPU'\) is empty \(tensorflow 2",
    ):
        open_target(root / "ref" / "model.keras", "keras", root, "gpu", 1)
