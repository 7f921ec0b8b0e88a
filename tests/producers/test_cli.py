"""The producer commands: each --help shows an example, each bad argument is named, and the PyTorch and
ONNX commands run end to end into an artifact the gate passes."""

from __future__ import annotations

import numpy as np
import pytest
import yaml

from model_checks.cli import main
from tests.producers.helpers import assert_passes

PRODUCER_COMMANDS = ("export", "trace", "quantize", "fp16", "optimize", "convert-keras", "package")
CNN = "tests.producers.helpers:make_cnn"


def run(argv: list[str], capsys) -> tuple[int, str]:  # type: ignore[no-untyped-def]
    try:
        code = main(argv)
    except SystemExit as e:
        code = int(e.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.mark.parametrize("command", PRODUCER_COMMANDS)
def test_help_shows_an_example(command, capsys):
    code, text = run([command, "--help"], capsys)
    assert code == 0 and "example:" in text and f"model-checks {command} " in text


@pytest.mark.parametrize(
    "argv, message",
    [
        (
            ["export", "--model", "no_colon", "--input-shape", "1,1,8,8", "--out", "m.onnx"],
            "argument --model: 'no_colon' is not MODULE:CALLABLE",
        ),
        (
            ["export", "--model", CNN, "--input-shape", "1,x", "--out", "m.onnx"],
            "argument --input-shape: '1,x' is not a shape",
        ),
        (
            [
                "export",
                "--model",
                "tests.producers.helpers:nothing",
                "--input-shape",
                "1,1,8,8",
                "--out",
                "{tmp}/m.onnx",
            ],
            "--model: tests.producers.helpers has no attribute 'nothing'",
        ),
        (
            ["trace", "--model", CNN, "--input-shape", "1,1,8,8", "--out", "t.pt", "--kind", "freeze"],
            "argument --kind: invalid choice: 'freeze'",
        ),
        (
            ["quantize", "{model}", "--out", "{tmp}/q.onnx", "--mode", "static"],
            "--calibration: --mode static needs calibration data",
        ),
        (
            ["quantize", "{model}", "--out", "q.onnx", "--calibration", "cal.npy"],
            "argument --calibration: cal.npy is not a .npz file",
        ),
        (["fp16", "{tmp}/missing.onnx", "--out", "h.onnx"], "argument MODEL: {tmp}/missing.onnx does not exist"),
        (
            ["optimize", "{model}", "--out", "{tmp}/o.onnx", "--passes", "fuse_bn_into_cnv"],
            "--passes: 'fuse_bn_into_cnv' is not an onnxoptimizer pass; did you mean 'fuse_bn_into_conv'",
        ),
        (["convert-keras", "{model}", "--out", "k.onnx"], "argument MODEL: {model} is not a .keras or .h5 file"),
        (
            ["package", "{model}", "--out", "{tmp}/a", "--name", "a", "--tolerance", "rel=1"],
            "argument --tolerance: 'rel=1' is not METRIC=VALUE",
        ),
        (
            ["package", "{model}", "--out", "{tmp}/a", "--name", "a", "--range", "1,0"],
            "argument --range: '1,0': low is greater than high",
        ),
        (
            ["package", "{model}", "--out", "{tmp}/a", "--name", "a", "--roundtrip", "tf"],
            "argument --roundtrip: invalid choice: 'tf' (choose from 'torch')",
        ),
    ],
)
def test_a_bad_argument_is_named(argv, message, tmp_path, fp32_onnx, capsys):
    fill = {"tmp": str(tmp_path), "model": str(fp32_onnx)}
    code, text = run([a.format(**fill) for a in argv], capsys)
    assert code in (1, 2) and message.format(**fill) in text
    assert not (tmp_path / "q.onnx").exists() and not (tmp_path / "o.onnx").exists()


def test_export_optimize_quantize_fp16_package_end_to_end(tmp_path, images, capsys, gate):
    root = tmp_path / "root"
    fp32 = root / "fp32" / "model.onnx"
    steps = [
        [
            "export",
            "--model",
            CNN,
            "--input-shape",
            "2,1,8,8",
            "--output-names",
            "logits",
            "--no-fold-constants",
            "--out",
            str(fp32),
        ],
        ["optimize", str(fp32), "--out", str(tmp_path / "opt.onnx")],
        ["fp16", str(tmp_path / "opt.onnx"), "--out", str(tmp_path / "half.onnx")],
    ]
    np.savez(tmp_path / "cal.npz", input=images)
    steps.append(
        [
            "quantize",
            str(tmp_path / "opt.onnx"),
            "--mode",
            "static",
            "--calibration",
            str(tmp_path / "cal.npz"),
            "--out",
            str(tmp_path / "q.onnx"),
        ]
    )
    for argv in steps:
        code, text = run(argv, capsys)
        assert code == 0, text
    np.savez(tmp_path / "samples.npz", input=images)
    code, text = run(
        [
            "package",
            str(tmp_path / "q.onnx"),
            "--out",
            str(root / "int8"),
            "--name",
            "cnn_int8",
            "--reference",
            str(fp32),
            "--samples",
            str(tmp_path / "samples.npz"),
            "--optimization",
            "quant_pre_process,quantize_qdq,per_channel",
            "--tolerance",
            "rel_l2=0.1",
            "--tolerance",
            "mae=null",
            "--tolerance",
            "top1_agreement=0.9",
            "--roundtrip",
            "torch",
            "--runs",
            "3",
        ],
        capsys,
    )
    assert code == 0 and "cnn_int8@1.0 int8 onnx" in text
    assert yaml.safe_load((root / "int8" / "metadata.yaml").read_text())["roundtrip"] == ["torch"]
    assert_passes(gate(root, root / "int8", "integrity", "metadata", "equivalence"))


def test_trace_then_package_against_the_onnx_export(tmp_path, fp32_onnx, images, capsys, gate):
    root = fp32_onnx.parent.parent
    pt = root / "traced" / "model.pt"
    code, text = run(
        ["trace", "--model", CNN, "--input-shape", "2,1,8,8", "--check-shape", "3,1,8,8", "--out", str(pt)], capsys
    )
    assert code == 0 and "matches the eager model" in text and "warning" not in text
    np.savez(tmp_path / "samples.npz", input=images)
    code, text = run(
        [
            "package",
            str(pt),
            "--out",
            str(root / "traced"),
            "--name",
            "cnn_traced",
            "--reference",
            str(fp32_onnx),
            "--samples",
            str(tmp_path / "samples.npz"),
            "--interface-from",
            str(fp32_onnx),
            "--runs",
            "3",
        ],
        capsys,
    )
    assert code == 0, text
    assert "roundtrip" not in yaml.safe_load((root / "traced" / "metadata.yaml").read_text())
    assert_passes(gate(root, root / "traced", "integrity", "metadata", "equivalence"))
