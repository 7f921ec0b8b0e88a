"""The ONNX -> PyTorch round trip: `model-checks to-torch`, the `roundtrip` check, and the torchvision guard."""

import importlib.util
import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import onnx
import pytest
from onnx import TensorProto, helper

from fixtures import artifacts as A
from fixtures import localize_models as L
from model_checks.cli import main

pytest.importorskip("torch")
if importlib.util.find_spec("onnx2torch") is None:  # not importorskip: onnx2torch alone fails without torchvision
    pytest.skip("onnx2torch is not installed: pip install 'model-checks[roundtrip]'", allow_module_level=True)

IFACE = {
    "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 3, 8, 8]}],
    "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 10]}],
}


def roi_model():
    """A RoiAlign: the op onnx2torch converts through torchvision.ops.roi_align."""
    node = helper.make_node("RoiAlign", ["x", "rois", "idx"], ["y"], output_height=2, output_width=2)
    g = helper.make_graph(
        [node],
        "roi",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 1, 4, 4]),
            helper.make_tensor_value_info("rois", TensorProto.FLOAT, [1, 4]),
            helper.make_tensor_value_info("idx", TensorProto.INT64, [1]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, [1, 1, 2, 2])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


def test_to_torch_writes_a_checked_archive_with_the_onnx_names(tmp_path, capsys):
    onnx.save(L.convnet(), tmp_path / "m.onnx")
    assert main(["to-torch", str(tmp_path / "m.onnx"), str(tmp_path / "m.pt")]) == 0
    assert (
        "(traced TorchScript, onnx2torch 1.5.15); matches onnxruntime: rel_l2" in capsys.readouterr().out
    )  # BN's module does not script
    with zipfile.ZipFile(tmp_path / "m.pt") as z:
        names = json.loads(z.read(next(n for n in z.namelist() if n.endswith("extra/model_checks_io.json"))))
    assert names["inputs"] == ["input"] and names["outputs"] == ["logits"]


def test_to_torch_names_the_ops_it_cannot_convert_and_writes_nothing(tmp_path, capsys):
    ref = L.convnet(depth=2)
    q = L.int8_miscalibrated(ref, tmp_path, "none", L.inputs(8))
    onnx.save(q, tmp_path / "q.onnx")
    assert main(["to-torch", str(tmp_path / "q.onnx"), str(tmp_path / "q.pt")]) == 1
    assert (
        "model-checks to-torch: error: q.onnx: cannot convert to PyTorch: onnx2torch 1.5.15 has no converter for "
        "DequantizeLinear, QuantizeLinear"
    ) in capsys.readouterr().err
    assert not (tmp_path / "q.pt").exists()


def test_without_a_working_torchvision_other_models_convert_and_its_ops_are_named(tmp_path):
    """A torchvision that fails on import, as the CUDA wheels do beside the CPU torch."""
    fake = tmp_path / "site" / "torchvision"
    fake.mkdir(parents=True)
    (fake / "__init__.py").write_text("raise RuntimeError('operator torchvision::nms does not exist')\n")
    onnx.save(L.convnet(depth=2), tmp_path / "plain.onnx")
    onnx.save(roi_model(), tmp_path / "roi.onnx")
    code = (
        "import sys, onnx; from model_checks.producers.to_torch import unsupported, convert; "
        "print(unsupported(onnx.load(sys.argv[1]))); convert(onnx.load(sys.argv[2])); print('converted')"
    )
    env = dict(
        os.environ,
        PYTHONPATH=os.pathsep.join([str(tmp_path / "site"), str(Path.cwd()), os.environ.get("PYTHONPATH", "")]),
    )
    out = subprocess.run(
        [sys.executable, "-c", code, str(tmp_path / "roi.onnx"), str(tmp_path / "plain.onnx")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert (
        "['RoiAlign need(s) a working torchvision, which does not import here "
        "(RuntimeError: operator torchvision::nms does not exist)']"
    ) in out.stdout
    assert "converted" in out.stdout


def test_roundtrip_check_end_to_end(pytester):
    root = pytester.path / "arts"
    A.onnx_artifact(root / "cnn", L.convnet(), name="cnn", roundtrip=["torch"], **IFACE)
    A.onnx_artifact(
        root / "q",
        L.int8_miscalibrated(L.convnet(depth=2), pytester.path, "none", L.inputs(8)),
        name="q",
        roundtrip=["torch"],
        **IFACE,
    )
    A.onnx_artifact(root / "plain", L.convnet(depth=1), name="plain", **IFACE)
    r = pytester.runpytest("--model-checks", "arts", "-p", "no:cacheprovider", "-k", "roundtrip", "-v", "-rs")
    r.assert_outcomes(passed=1, skipped=1)  # `plain` does not opt in: no test_roundtrip collected for it
    r.stdout.fnmatch_lines(
        [
            "*test_roundtrip[[]cnn@1.0[]] PASSED*",
            "*SKIPPED*q@1.0 does not convert to PyTorch: onnx2torch 1.5.15 has no converter for DequantizeLinear, QuantizeLinear",
        ]
    )


def test_roundtrip_is_in_the_schema(tmp_path):
    from model_checks.core.discovery import discover

    A.onnx_artifact(tmp_path / "bad", name="bad", roundtrip=["tensorflow"])
    (art,) = discover([tmp_path])
    assert art.error.endswith("bad/metadata.yaml: roundtrip[0]: 'tensorflow' is not one of torch")
