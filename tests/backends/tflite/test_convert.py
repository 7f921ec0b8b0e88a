"""The TFLite producers (convert-tflite, QAT to full integer) and the tfmot check's TFLite step. Here rather than
under tests/producers so that they share this folder's session models (TensorFlow is imported once)."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from model_checks.cli import main
from model_checks.producers.tflite_convert import convert_tflite
from model_checks.producers.verify import ProducerError
from tests.backends.tflite.models import images


def run(argv: list[str], capsys) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    try:
        code = main(argv)
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize(
    "kw, message",
    [
        ({"mode": "int4"}, "mode: 'int4' is not one of float32, float16, dynamic, int8"),
        (
            {"mode": "int8"},
            "calibration: the int8 mode is calibrated (or, with QAT, fit) on real inputs; pass calibration data",
        ),
        (
            {"mode": "float16", "qat": True},
            "qat: quantization-aware training ends in a full-integer model; use mode int8, not float16",
        ),
        (
            {"mode": "int8", "io_type": "int16", "calibration": np.zeros((1, 6, 6, 1))},
            "io_type: 'int16' is not one of int8, uint8",
        ),
    ],
)
def test_convert_tflite_refuses_what_it_cannot_make(tmp_path, models, kw, message):
    with pytest.raises(ProducerError) as e:
        convert_tflite(models["keras"], tmp_path / "m.tflite", **kw)
    assert str(e.value) == message
    assert not (tmp_path / "m.tflite").exists()


def test_a_conversion_out_of_tolerance_writes_nothing_and_shows_the_comparison(tmp_path, models):
    dst = tmp_path / "m.tflite"
    with pytest.raises(ProducerError) as e:
        convert_tflite(models["keras"], dst, "float16", samples=images(8), tolerance={"rel_l2": 1e-12})
    text = str(e.value)
    assert text.startswith(
        "TFLite float16: outputs differ from the Keras model on 8 samples (run in LiteRT); nothing was written"
    )
    assert "output 'logits': FAILED" in text and "<-- exceeds" in text
    assert not dst.exists()


def test_the_cli_names_its_bad_arguments(tmp_path, models, capsys):
    code, text = run(
        ["convert-tflite", str(models["keras"]), "--out", str(tmp_path / "m.tflite"), "--mode", "float16", "--qat"],
        capsys,
    )
    assert (
        code != 0
        and "--qat: quantization-aware training ends in a full-integer model; use --mode int8, not float16" in text
    )
    code, text = run(
        ["convert-tflite", str(models["keras"]), "--out", str(tmp_path / "m.tflite"), "--mode", "int8"], capsys
    )
    assert code != 0 and "--calibration: --mode int8 is calibrated (or, with --qat, fit) on real inputs" in text
    code, text = run(["convert-tflite", "--help"], capsys)
    assert code == 0 and "model-checks convert-tflite model.keras --mode int8 --qat" in text


def test_the_cli_converts_and_package_writes_true_metadata(tmp_path, models, capsys):
    np.savez(tmp_path / "calib.npz", x=images(64, seed=2))
    out = tmp_path / "m.tflite"
    code, text = run(
        [
            "convert-tflite",
            str(models["keras"]),
            "--out",
            str(out),
            "--mode",
            "int8",
            "--io-type",
            "uint8",
            "--calibration",
            str(tmp_path / "calib.npz"),
        ],
        capsys,
    )
    assert code == 0, text
    assert "Keras -> TFLite int8 (tflite_converter, full_integer, uint8_io)" in text and "against Keras: rel_l2" in text
    argv = ["package", str(out), "--out", str(tmp_path / "art"), "--name", "u8", "--range", "0,1", "--runs", "5"]
    code, text = run(argv, capsys)
    assert code == 0, text
    m = yaml.safe_load((tmp_path / "art" / "metadata.yaml").read_text())
    assert (m["format"], m["precision"]) == ("tflite", "int8")
    assert m["inputs"] == [{"name": "image", "dtype": "uint8", "shape": ["batch", 6, 6, 1], "range": [0.0, 1.0]}]
    assert m["outputs"] == [{"name": "logits", "dtype": "uint8", "shape": ["batch", 5]}]
    assert m["runtime"].startswith("ai-edge-litert ") and m["file"] == "model.tflite"


@pytest.mark.slow  # quantization-aware training and a short fit: about 15 s on a loaded machine
def test_qat_to_full_integer_keeps_the_source_names_and_holds_against_the_float_model(tmp_path, models):
    from model_checks.backends.tflite.facts import model_facts

    conv = convert_tflite(models["keras"], tmp_path / "qat.tflite", "int8", calibration=images(64, seed=2), qat=True)
    assert conv.steps == ("qat", "tflite_converter", "full_integer", "int8_io")
    assert conv.figures["top1_agreement"] >= 0.95
    f = model_facts(conv.path, tmp_path)
    assert [(t.name, t.dtype) for t in (*f.inputs, *f.outputs)] == [
        ("image", "int8"),
        ("logits", "int8"),
    ]  # not quant_logits


# -- tfmot: {quantize: true, tflite: true} ------------------------------------------------------------------
@pytest.mark.slow  # QAT, its save and load, then QAT again with a fit and the conversion: about 30 s a case
@pytest.mark.parametrize("tolerance", ["{rel_l2: null, mae: null, top1_agreement: 0.9}", "{rel_l2: 1.0e-6}"])
def test_tfmot_quantize_with_tflite_holds_the_qat_model_to_the_artifacts_tolerance(tmp_path, models, tolerance):
    """End to end (QAT, conversion, LiteRT): an int8 tolerance holds; a float model's 1e-6 cannot."""
    import shutil

    from model_checks.core.session import GateSession

    d = tmp_path / "k"
    d.mkdir()
    shutil.copyfile(models["keras"], d / "model.keras")
    np.savez(d / "samples.npz", image=images(32, seed=4))
    (d / "metadata.yaml").write_text(
        "model_name: k\nversion: '1'\nfile: model.keras\nsamples: samples.npz\ntfmot: {quantize: true, tflite: true}\n"
        f"tolerance: {tolerance}\n"
    )
    gs = GateSession(roots=[tmp_path], trust_code=False)
    r = gs.run_check("tfmot_quantize", gs.artifacts[0])
    text = r.headline + "\n" + "\n".join(r.details)
    tail = "as equivalence resolves it (metadata.yaml, then policy.yaml, then model-checks' defaults): "
    if "top1" in tolerance:
        assert r.ok, text
        assert (
            "; full-integer TFLite (LiteRT) holds the tolerance against the float model on 32 samples: " in r.headline
        )
        assert r.details[0] == "    against the float model            float           QAT   TFLite int8"
        assert r.details[-1] == (
            f"  tolerance: k/metadata.yaml's `tolerance` for output 'logits', {tail}"
            "top1_agreement >= 0.9 from metadata.yaml"
        )
        assert {"tfmot_tflite_rel_l2", "tfmot_tflite_mae", "tfmot_tflite_top1_agreement"} <= set(r.figures)
    else:
        assert not r.ok, text
        assert r.headline.startswith(
            "tfmot_quantize: k@1: QAT applies, but full-integer TFLite (LiteRT) does not hold the tolerance against "
            "the float model on 32 samples: rel_l2 "
        )
        assert r.details[0].startswith("  - rel_l2 ") and r.details[0].endswith(" over the limit 1e-06 (metadata.yaml)")
        assert r.details[-2] == (
            f"  tolerance: k/metadata.yaml's `tolerance` for output 'logits', {tail}"
            "rel_l2 <= 1e-06 from metadata.yaml, mae <= 0.001 from default (model-checks)"
        )
