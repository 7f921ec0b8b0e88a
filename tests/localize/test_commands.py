"""`model-checks localize` and `model-checks quantize --exclude`, as a user runs them."""

import json

import numpy as np
import onnx
import pytest

from fixtures import artifacts as A
from fixtures import localize_models as L
from model_checks.cli import main

IFACE = {
    "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 3, 8, 8]}],
    "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 10]}],
}


def test_localize_prints_the_table_and_json(tmp_path, capsys):
    ref = L.convnet()
    _, var = A.pair(tmp_path / "arts", L.perturbed(ref, "conv3.weight"), ref, **IFACE)
    assert main(["localize", str(var)]) == 0
    out = capsys.readouterr().out
    assert (
        "hint: node 'conv3' (Conv) raises rel_l2 by" in out
        and "above the tolerance rel_l2 <= 0.001 (default (model-checks))" in out
    )
    assert main(["localize", str(var), "--json", "--memory-cap", "1"]) == 0
    found = json.loads(capsys.readouterr().out)
    assert found["hint"]["node"] == "conv3" and len(found["rows"]) == 21
    assert found["caps"] == {"time_s": 60.0, "memory_mb": 1, "basis": "--time-cap"}


def test_localize_refuses_what_it_cannot_compare(tmp_path, capsys):
    ref, _ = A.pair(tmp_path / "arts", L.convnet(), L.convnet(), **IFACE)
    with pytest.raises(SystemExit) as e:
        main(["localize", str(ref)])
    assert (
        str(e.value)
        == "model-checks localize: error: ref: needs an ONNX artifact whose reference.path is an ONNX model"
    )


def test_quantize_exclude_keeps_the_node_in_float(tmp_path, capsys):
    src = tmp_path / "float.onnx"
    onnx.save(L.convnet(depth=2), src)
    np.savez(tmp_path / "calib.npz", input=L.inputs(8))
    out = tmp_path / "int8.onnx"
    assert (
        main(
            [
                "quantize",
                str(src),
                "--mode",
                "static",
                "--calibration",
                str(tmp_path / "calib.npz"),
                "--no-preprocess",
                "--exclude",
                "conv1",
                "--out",
                str(out),
            ]
        )
        == 0
    )
    q = onnx.load(out).graph
    conv1 = next(n for n in q.node if n.name == "conv1")
    producers = {o: n.op_type for n in q.node for o in n.output}
    assert producers.get(conv1.input[1]) != "DequantizeLinear"  # its weight stays float
    conv0 = next(n for n in q.node if n.name == "conv0")
    assert producers.get(conv0.input[1]) == "DequantizeLinear"
    assert (
        main(
            [
                "quantize",
                str(src),
                "--mode",
                "static",
                "--calibration",
                str(tmp_path / "calib.npz"),
                "--no-preprocess",
                "--exclude",
                "conv9",
                "--out",
                str(out),
            ]
        )
        == 1
    )
    assert (
        "--exclude: no node named 'conv9' in float.onnx (node names are in the localisation table: model-checks localize ARTIFACT_DIR)"
        in capsys.readouterr().err
    )


@pytest.mark.parametrize(
    ("flag", "value", "unit"),
    [
        ("--time-cap", "0", "seconds"),
        ("--time-cap", "soon", "seconds"),
        ("--memory-cap", "1.5", "MiB"),
        ("--memory-cap", "-4", "MiB"),
    ],
)
def test_localize_caps_name_the_bad_value(tmp_path, capsys, flag, value, unit):
    with pytest.raises(SystemExit):
        main(["localize", str(tmp_path), flag, value])
    assert f"argument {flag}: {value!r} is not a positive number of {unit}" in capsys.readouterr().err


def test_localize_escapes_a_hostile_directory_name(tmp_path):
    ref, _ = A.pair(tmp_path / "arts", L.convnet(), L.convnet(), **IFACE)
    hostile = ref.rename(ref.parent / "ref\x1b[32m\rPASSED")
    with pytest.raises(SystemExit) as e:
        main(["localize", str(hostile)])
    assert str(e.value) == (
        "model-checks localize: error: ref\\x1b[32m\\rPASSED: needs an ONNX artifact whose "
        "reference.path is an ONNX model"
    )
