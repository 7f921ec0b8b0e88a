"""package: a manifest measured from the model, which the gate passes; the same inputs give the same
manifest (latency aside); a hand edit that lies is caught; paths stay inside the root."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from model_checks.checks import registry
from model_checks.core.errors import UnsafePathError
from model_checks.producers.package import package
from model_checks.producers.verify import ProducerError
from tests.producers.helpers import assert_passes

# every check each artifact gets (the registry's, not a list of ours), the run-order the gate uses
CHECKS = tuple(name for name, check in registry().items() if check.applies is None)


@pytest.fixture
def labelled(fp32_onnx, images):  # type: ignore[no-untyped-def]
    from model_checks.producers.onnx_model import ONNXModel

    y = np.argmax(ONNXModel(fp32_onnx)(images), axis=-1)
    y[:4] = (y[:4] + 1) % 10  # four wrong labels: accuracy 28/32
    return images, y


def test_the_manifest_is_true_and_the_gate_passes_it(fp32_onnx, labelled, gate):
    root = fp32_onnx.parent.parent
    p = package(
        fp32_onnx,
        root / "copy",
        model_name="cnn",
        version="2.1",
        reference=fp32_onnx,
        samples=labelled[0],
        eval_data=labelled,
        limits={"dynamic_axes": ["batch"], "max_accuracy_drop": 0.0},
        input_range=(0, 1),
        layout="NCHW",
        runs=5,
    )
    m = p.manifest
    assert (root / "copy" / "model.onnx").read_bytes() == fp32_onnx.read_bytes()
    assert (
        m["opset"] == 17
        and m["precision"] == "fp32"
        and m["format"] == "onnx"
        and m["runtime"].startswith("onnxruntime ")
    )
    assert m["inputs"] == [
        {"name": "input", "dtype": "float32", "shape": ["batch", 1, 8, 8], "layout": "NCHW", "range": [0.0, 1.0]}
    ]
    assert m["outputs"] == [{"name": "logits", "dtype": "float32", "shape": ["batch", 10]}]
    assert m["reference"] == {"path": "../fp32/model.onnx"} and m["accuracy_drop"] == 0.0 and p.accuracy == 28 / 32
    assert m["latency_ms"] > 0 and len(m["sha256"]) == 64
    from model_checks.core.machine import this_machine

    here = this_machine()
    assert list(m["machine"]) == [
        "cpu",
        "isa",
        "calibration_us",
        "runtime",
    ]  # where latency_ms was measured, on its scale
    assert (
        m["machine"]["cpu"] == here.cpu and m["machine"]["isa"] == list(here.isa) and m["machine"]["calibration_us"] > 0
    )
    assert m["machine"]["runtime"] == m["runtime"]
    assert yaml.safe_load((root / "copy" / "metadata.yaml").read_text()) == m
    results = gate(root, root / "copy", *CHECKS)
    assert_passes(results)
    assert results[-1].figures["accuracy"] == 28 / 32


def test_repackaging_gives_the_same_manifest_latency_and_calibration_aside(fp32_onnx, labelled, tmp_path):
    root = fp32_onnx.parent.parent
    written = []
    for _ in range(2):
        package(
            fp32_onnx,
            root / "again",
            model_name="cnn",
            reference=fp32_onnx,
            samples=labelled[0],
            eval_data=labelled,
            runs=3,
        )
        text = (root / "again" / "metadata.yaml").read_text()
        written.append(
            (
                [line for line in text.splitlines() if not line.startswith(("latency_ms:", "  calibration_us:"))],
                (root / "again" / "samples.npz").read_bytes(),
                (root / "again" / "eval.npz").read_bytes(),
            )
        )
    assert written[0] == written[1]


@pytest.mark.parametrize(
    "edit, message",
    [
        (("precision", "int8"), "precision: declared int8, the model is fp32"),
        (("opset", 13), "opset: declared 13, the model imports opset 17"),
        (("sha256", "0" * 64), "sha256: declared 000"),
        (("accuracy_drop", 0.2), "accuracy_drop: declared 0.2, measured"),
    ],
)
def test_a_hand_edit_that_lies_is_caught(fp32_onnx, labelled, gate, edit, message):
    root = fp32_onnx.parent.parent
    d = root / "edited"
    package(fp32_onnx, d, model_name="cnn", reference=fp32_onnx, eval_data=labelled, runs=3)
    m = yaml.safe_load((d / "metadata.yaml").read_text())
    m[edit[0]] = edit[1]
    (d / "metadata.yaml").write_text(yaml.safe_dump(m, sort_keys=False))
    results = gate(root, d, "integrity", "metadata", "accuracy")
    failed = [r for r in results if not r]
    assert len(failed) == 1 and message in str(failed[0])


def test_paths_must_stay_inside_the_root(fp32_onnx, tmp_path):
    root = fp32_onnx.parent.parent
    outside = tmp_path / "elsewhere" / "model.onnx"
    outside.parent.mkdir()
    outside.write_bytes(fp32_onnx.read_bytes())
    with pytest.raises(
        UnsafePathError, match="reference: '../../elsewhere/model.onnx' climbs out of the artifacts root"
    ):
        package(fp32_onnx, root / "x", model_name="cnn", reference=outside, runs=1)
    with pytest.raises(UnsafePathError, match="out_dir"):
        package(fp32_onnx, tmp_path / "not-under-root", model_name="cnn", root=root, runs=1)
    assert not (tmp_path / "not-under-root").exists()


def test_bad_inputs_name_the_argument(fp32_onnx, tmp_path):
    root = fp32_onnx.parent.parent
    with pytest.raises(ProducerError, match="model: .*missing.onnx does not exist"):
        package(tmp_path / "missing.onnx", root / "x", model_name="cnn")
    with pytest.raises(ProducerError, match="eval_data: .*no.npz does not exist"):
        package(fp32_onnx, root / "x", model_name="cnn", eval_data=tmp_path / "no.npz", runs=1)
    np.savez(tmp_path / "wrong.npz", a=np.zeros(3))
    with pytest.raises(ProducerError, match="eval_data: needs arrays x and y"):
        package(fp32_onnx, root / "x", model_name="cnn", eval_data=tmp_path / "wrong.npz", runs=1)
    from model_checks.core.errors import ManifestError

    with pytest.raises(ManifestError, match="model_name"):
        package(fp32_onnx, root / "x", model_name="bad name!", runs=1)


def test_roundtrip_is_written_as_given_and_the_gate_runs_it(fp32_onnx, gate):
    import importlib.util

    root = fp32_onnx.parent.parent
    package(fp32_onnx, root / "rt", model_name="cnn", roundtrip=("torch",), runs=1)
    assert yaml.safe_load((root / "rt" / "metadata.yaml").read_text())["roundtrip"] == ["torch"]
    package(fp32_onnx, root / "plain", model_name="plain", runs=1)
    assert "roundtrip" not in yaml.safe_load((root / "plain" / "metadata.yaml").read_text())
    if importlib.util.find_spec("onnx2torch") is None:
        pytest.skip("onnx2torch is not installed: pip install 'model-checks[roundtrip]'")
    (result,) = gate(root, root / "rt", "roundtrip")
    assert (
        result
        and not result.skipped
        and result.headline.startswith(
            "roundtrip: cnn@1.0 converted to PyTorch matches the ONNX model over 2 case(s): max_abs "
        )
    )
