"""safety/sniff.lfs_pointer: a Git LFS pointer left where a file should be (a checkout that has not fetched its LFS
content: CI without `lfs: true`) is named as such wherever the gate reads the file, not as text that is no model:
the manifest's paths (test_manifest), an ONNX model's external data (test_integrity) and ONNX test data
(test_equivalence)."""

import os

import numpy as np
import onnx
import pytest

from fixtures import artifacts as A
from fixtures import onnx_models as M
from model_checks.core.session import GateSession
from model_checks.safety.sniff import lfs_pointer

OID = "sha256:4d7a214614ab2935c943f9e0ff69d22eadbb8f32b1258daaa5e2ca24d17e2393"
POINTER = f"version https://git-lfs.github.com/spec/v1\noid {OID}\nsize 12345678\n"
SAID = (
    "is a Git LFS pointer to a file of 12,345,678 bytes (sha256:4d7a214614ab...), not the file: this checkout has "
    "not fetched its LFS content. Fetch it where the gate runs (git lfs pull; GitHub Actions: actions/checkout with "
    "lfs: true)"
)


def _check(root, name):
    gs = GateSession([root])
    return gs.run_check(name, gs.artifacts[0])


@pytest.mark.parametrize("key", ["file", "samples", "eval_data"])
def test_a_pointer_named_by_the_manifest_fails_it(tmp_path, key):
    names = {"file": "model.onnx", "samples": "samples.npz", "eval_data": "eval.npz"}
    d = A.onnx_artifact(tmp_path / "a", name="a", **({} if key == "file" else {key: names[key]}))
    (d / names[key]).write_text(POINTER)
    r = _check(tmp_path, "manifest")
    assert not r and f"{key}: {names[key]} {SAID}" in str(r), str(r)


def test_a_gate_run_says_it_once_at_the_manifest(pytester):
    d = A.onnx_artifact(pytester.path / "arts" / "a", name="a")
    (d / "model.onnx").write_text(POINTER)
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider")
    r.assert_outcomes(failed=1, skipped=5)
    r.stdout.fnmatch_lines([f"*file: model.onnx {SAID}*"])


def test_a_pointer_as_external_data_fails_integrity(tmp_path):
    d = tmp_path / "ext"
    d.mkdir()
    onnx.save(M.linear(n_in=64, n_out=64), str(d / "model.onnx"), save_as_external_data=True, location="weights.bin")
    (d / "weights.bin").write_text(POINTER)
    A.write_manifest(d, {"model_name": "ext", "version": "1", "file": "model.onnx"})
    r = _check(tmp_path, "integrity")
    assert not r and f"external data: weights.bin {SAID}" in str(r), str(r)


def test_a_pointer_as_onnx_test_data_fails_equivalence(tmp_path):
    from onnx import numpy_helper

    d = A.onnx_artifact(tmp_path / "a", name="a", reference={"path": "test_data_set_0"})
    (d / "test_data_set_0").mkdir()
    x = np.zeros((1, 4), np.float32)
    (d / "test_data_set_0" / "input_0.pb").write_bytes(numpy_helper.from_array(x, "input").SerializeToString())
    (d / "test_data_set_0" / "output_0.pb").write_text(POINTER)
    r = _check(tmp_path, "equivalence")
    assert not r and f"output_0.pb {SAID}" in str(r), str(r)


def test_what_is_a_pointer_and_what_is_not(tmp_path):
    p = tmp_path / "f"
    p.write_text(POINTER)
    assert lfs_pointer(p) == (OID, 12345678)
    p.write_text(POINTER.replace("git-lfs.github.com", "hawser.github.com"))  # written before git-lfs 1.0
    assert lfs_pointer(p) == (OID, 12345678)
    p.write_text(POINTER.replace(f"oid {OID}\n", ""))  # no oid
    assert lfs_pointer(p) is None
    p.write_text(POINTER.replace("size 12345678", "size many"))
    assert lfs_pointer(p) is None
    p.write_text(POINTER + "x" * 1024)  # longer than any pointer git-lfs writes
    assert lfs_pointer(p) is None
    p.write_text("version 2\n")  # text, not a pointer: its reader's own message stands
    assert lfs_pointer(p) is None
    M.save(M.linear(), p)
    assert lfs_pointer(p) is None
    assert lfs_pointer(tmp_path) is None and lfs_pointer(tmp_path / "gone") is None
    os.mkfifo(tmp_path / "fifo")  # never opened: it would block
    assert lfs_pointer(tmp_path / "fifo") is None


def test_a_pointer_with_a_second_hard_link_is_not_read_but_refused_as_one(tmp_path):
    # a hard link may alias a file outside the root: the gate refuses it before reading a byte, pointer or not
    d = tmp_path / "ext"
    d.mkdir()
    onnx.save(M.linear(n_in=64, n_out=64), str(d / "model.onnx"), save_as_external_data=True, location="weights.bin")
    (d / "weights.bin").unlink()
    (tmp_path / "outside").write_text(POINTER)
    os.link(tmp_path / "outside", d / "weights.bin")
    assert lfs_pointer(d / "weights.bin") is None
    A.write_manifest(d, {"model_name": "ext", "version": "1", "file": "model.onnx"})
    gs = GateSession([d])
    r = gs.run_check("integrity", gs.artifacts[0])
    assert not r and "weights.bin has 2 hard links; a hard link can alias a file outside the root" in str(r), str(r)
