"""The gate reads the ONNX backend test data the onnx wheel ships: real models with recorded outputs."""

import shutil
from pathlib import Path

import onnx
import pytest

from fixtures import artifacts as A
from model_checks.core.session import GateSession

DATA = Path(onnx.__file__).parent / "backend" / "test" / "data" / "pytorch-converted"
CASES = ["test_ReLU", "test_Softmax", "test_Conv2d", "test_MaxPool2d", "test_Tanh", "test_Sigmoid"]


@pytest.fixture(scope="module")
def root(tmp_path_factory):
    root = tmp_path_factory.mktemp("backend")
    for case in CASES:
        d = root / case
        shutil.copytree(DATA / case, d)
        A.write_manifest(d, {"model_name": case, "version": "1", "file": "model.onnx", "reference": {"path": "."}})
    # the same data pointing at one test_data_set, with the outputs disturbed
    bad = root / "bad_relu"
    shutil.copytree(DATA / "test_ReLU", bad)
    from onnx import numpy_helper

    t = onnx.TensorProto()
    t.ParseFromString((bad / "test_data_set_0" / "output_0.pb").read_bytes())
    arr = numpy_helper.to_array(t) + 0.5
    (bad / "test_data_set_0" / "output_0.pb").write_bytes(numpy_helper.from_array(arr, t.name).SerializeToString())
    A.write_manifest(
        bad, {"model_name": "bad_relu", "version": "1", "file": "model.onnx", "reference": {"path": "test_data_set_0"}}
    )
    return root


@pytest.mark.parametrize("case", CASES)
def test_backend_cases_are_equivalent_to_their_recorded_outputs(root, case):
    gs = GateSession([root])
    art = next(a for a in gs.artifacts if a.id == f"{case}@1")
    for check in ("integrity", "metadata", "equivalence"):
        r = gs.run_check(check, art)
        assert r, str(r)


def test_disturbed_recorded_output_fails(root):
    gs = GateSession([root])
    art = next(a for a in gs.artifacts if a.id == "bad_relu@1")
    r = gs.run_check("equivalence", art)
    assert not r
    assert "case: test_data_set_0" in str(r) and "rel_l2" in str(r)


def test_an_opset_the_runtime_cannot_run_fails_integrity_with_its_reason(tmp_path):
    """test_Linear is a Gemm at opset 6, which onnxruntime no longer implements: a real failure, clearly told."""
    shutil.copytree(DATA / "test_Linear", tmp_path / "linear")
    A.write_manifest(
        tmp_path / "linear", {"model_name": "linear", "version": "1", "file": "model.onnx", "reference": {"path": "."}}
    )
    gs = GateSession([tmp_path])
    r = gs.run_check("integrity", gs.artifacts[0])
    assert not r
    assert "integrity: linear@1: model cannot be loaded" in str(
        r
    ) and "Could not find an implementation for Gemm(6)" in str(r)
