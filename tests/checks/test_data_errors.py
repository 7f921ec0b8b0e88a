"""A data file the manifest names beside the model (samples, recorded outputs, ONNX test data) that cannot be used is
the data's failure, said as such: "invalid data", never "model cannot be loaded", and the artifact's later checks
still run (it blocked them as a model that cannot be had). A check's own step that fails in the model's worker (an
emulation) is "check could not run", not a load failure either."""

import operator

import numpy as np
import pytest

from fixtures import artifacts as A
from fixtures import onnx_models as M
from model_checks.core.errors import CheckStepError
from model_checks.core.session import GateSession
from model_checks.isolation.limits import Limits


def _bad_samples(d):  # type: ignore[no-untyped-def]
    np.savez(d / "samples.npz", x=np.zeros((2, 4), np.float32))  # the model's input is called "input"


def _bad_recording(d):  # type: ignore[no-untyped-def]
    np.savez(d / "recorded.npz", x=np.zeros((2, 4), np.float32))  # no input:<name> / output:<name> arrays


def _torn_testdata(d):  # type: ignore[no-untyped-def]
    s = d / "test_data_set_0"
    s.mkdir()
    (s / "input_0.pb").write_bytes(b"\x0a\xff\xff\xff\xff\x0f")  # a length past the end: not a TensorProto
    (s / "output_0.pb").write_bytes(b"\x0a\xff\xff\xff\xff\x0f")


CASES = {
    "samples without the model's input": (
        _bad_samples,
        {"samples": "samples.npz", "reference": {"path": "../ref/model.onnx"}},
        "m/metadata.yaml: samples: samples.npz has no array for input 'input' (it has x)",
    ),
    "a recording without inputs and outputs": (
        _bad_recording,
        {"reference": {"path": "recorded.npz"}},
        "recorded.npz needs arrays named input:<name> and output:<name> (it has x)",
    ),
    "torn ONNX test data": (_torn_testdata, {"reference": {"path": "."}}, "input_0.pb is not a readable TensorProto"),
}


@pytest.mark.parametrize("case", CASES)
@pytest.mark.parametrize("isolate", [True, False], ids=["isolated", "in process"])
def test_data_that_cannot_be_used_is_said_as_such_and_blocks_nothing(tmp_path, case, isolate):
    write, manifest, message = CASES[case]
    d = tmp_path / "m"
    A.onnx_artifact(tmp_path / "ref", name="ref")
    A.onnx_artifact(d, name="m", **manifest)
    write(d)
    gs = GateSession([tmp_path], isolation=Limits() if isolate else None)
    art = next(a for a in gs.artifacts if a.id == "m@1.0")
    r = gs.result("equivalence", art)
    assert not r and r.headline == "equivalence: m@1.0: invalid data", str(r)
    assert message in str(r)
    later = gs.result("metadata", art)
    assert later and "not run" not in str(later), str(later)


@pytest.mark.parametrize("isolate", [True, False], ids=["isolated", "in process"])
def test_a_check_step_that_fails_on_a_loaded_model_is_not_a_load_failure(tmp_path, isolate):
    A.onnx_artifact(tmp_path / "m", name="m")
    gs = GateSession([tmp_path], isolation=Limits() if isolate else None)
    art = gs.artifacts[0]
    with pytest.raises(CheckStepError) as e:
        gs.pool.run_isolated("onnx", art.model_path, operator.truediv, 1, 0)
    assert e.value.what == "check could not run" and not e.value.model_unavailable
    where = "in the onnx worker" if isolate else "in this process"
    assert str(e.value) == f"model.onnx: call failed {where}: ZeroDivisionError: division by zero"


def test_the_model_that_is_not_there_is_still_the_model_s_failure(tmp_path):
    d = tmp_path / "m"
    A.onnx_artifact(d, M.linear(), name="m")
    (d / "model.onnx").unlink()
    gs = GateSession([tmp_path])
    r = gs.result("manifest", gs.artifacts[0])
    assert not r and "file: model.onnx does not exist" in str(r)
