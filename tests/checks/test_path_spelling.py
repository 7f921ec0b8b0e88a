"""safety/paths.spelled_otherwise: a path spelled otherwise than its file on disk (another case, another Unicode
normalization) fails on every machine, in a manifest (the manifest check) or as an ONNX model's external data
(integrity). A case-insensitive filesystem (macOS', Windows') would open it and a case-sensitive one (Linux's) would
not: the verdict must not turn on which. This machine's filesystem tells names apart; one that does not is stood in
for by the directory listing it gives."""

import os
import unicodedata

import numpy as np
import pytest

from fixtures import artifacts as A
from model_checks.core.session import GateSession
from model_checks.safety import paths
from model_checks.safety.paths import spelled_otherwise


@pytest.fixture(autouse=True)
def names_told_apart(tmp_path):
    """These tests read what a filesystem that tells names apart says (Linux's); one that does not (macOS', Windows')
    answers "is spelled ... on disk" where they expect "does not exist", a case test_a_filesystem_that_opens_...
    stands in for here."""
    (tmp_path / "probe").write_text("x")
    told_apart = not (tmp_path / "PROBE").exists()
    (tmp_path / "probe").unlink()
    if not told_apart:
        pytest.skip("this filesystem does not tell names in another case apart")


def _manifest(tmp_path):
    gs = GateSession([tmp_path])
    return gs.run_check("manifest", gs.artifacts[0])


def test_the_model_file_in_another_case_fails_the_manifest_naming_both_spellings(tmp_path):
    A.onnx_artifact(tmp_path / "a", name="a", file="Model.onnx")
    r = _manifest(tmp_path)
    assert not r
    assert (
        "file: Model.onnx does not exist: a/ holds 'model.onnx', not 'Model.onnx' (in another case), and this "
        "filesystem tells them apart (macOS' or Windows' would have opened it); spell it as on disk in a/metadata.yaml"
    ) in str(r)


def test_every_path_key_is_held_to_its_spelling_folders_included(tmp_path):
    A.onnx_artifact(tmp_path / "Ref", name="ref")
    d = A.onnx_artifact(tmp_path / "v", name="v", reference={"path": "../ref/model.onnx"}, samples="Samples.npz")
    np.savez(d / "samples.npz", x=np.zeros((1, 4), np.float32))
    gs = GateSession([tmp_path])
    r = gs.run_check("manifest", next(a for a in gs.artifacts if a.id == "v@1.0"))
    text = str(r)
    assert not r and "2 problems" in text, text
    assert "reference.path: ../ref/model.onnx does not exist: " in text and "holds 'Ref', not 'ref'" in text
    assert "samples: Samples.npz does not exist: v/ holds 'samples.npz', not 'Samples.npz'" in text


def test_a_missing_file_with_no_other_spelling_reads_as_before(tmp_path):
    A.onnx_artifact(tmp_path / "a", name="a", file="nothere.onnx", samples="nothere.npz")
    r = _manifest(tmp_path)
    assert not r and "file: nothere.onnx does not exist in a/ (fix the path in a/metadata.yaml" in str(r)
    assert "samples" not in str(r)  # a missing samples file is its checks' to report, as before


def test_a_filesystem_that_opens_another_case_fails_it_too(tmp_path, monkeypatch):
    # the file is there as named, and the directory lists it in another case: what macOS' filesystem does for a
    # manifest naming model.onnx when the file was saved as MODEL.onnx
    d = A.onnx_artifact(tmp_path / "a", name="a")
    real = os.listdir
    monkeypatch.setattr(paths.os, "listdir", lambda p: ["MODEL.onnx" if n == "model.onnx" else n for n in real(p)])
    r = _manifest(tmp_path)
    assert (d / "model.onnx").exists()
    assert not r
    assert (
        "file: model.onnx is spelled 'MODEL.onnx' on disk, not 'model.onnx' (in another case): this filesystem opens "
        "it all the same, one that tells them apart (Linux's, most CI's) finds no 'model.onnx' in a/"
    ) in str(r)


def test_another_unicode_normalization_is_shown_by_its_code_points(tmp_path):
    nfc, nfd = unicodedata.normalize("NFC", "modèle.onnx"), unicodedata.normalize("NFD", "modèle.onnx")
    d = A.onnx_artifact(tmp_path / "a", name="a", file=nfc)
    os.rename(d / "model.onnx", d / nfd)  # as macOS' HFS+ stores the name
    r = _manifest(tmp_path)
    assert not r and "holds 'mode\\u0300le.onnx', not 'mod\\xe8le.onnx' (in another Unicode normalization)" in str(r)


def test_a_gate_run_stops_at_the_manifest(pytester):
    A.onnx_artifact(pytester.path / "arts" / "a", name="a", file="MODEL.onnx")
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider")
    r.assert_outcomes(failed=1, skipped=5)
    r.stdout.fnmatch_lines(["*file: MODEL.onnx does not exist: a/ holds 'model.onnx', not 'MODEL.onnx'*"])


def test_spelled_otherwise_walks_the_path_as_written(tmp_path):
    (tmp_path / "Dir" / "sub").mkdir(parents=True)
    (tmp_path / "Dir" / "sub" / "f.txt").write_text("x")
    base = tmp_path / "Dir"
    assert spelled_otherwise(base, "sub/f.txt") is None  # spelled as on disk
    assert spelled_otherwise(base, "sub/nothere.txt") is None  # not there under any spelling
    assert spelled_otherwise(base, "SUB/f.txt") == (base, "SUB", "sub")
    assert spelled_otherwise(base, "sub/F.TXT") == (base / "sub", "F.TXT", "f.txt")
    assert spelled_otherwise(base / "sub", "../../dir/sub/f.txt") == (tmp_path, "dir", "Dir")  # `..` as written
    assert spelled_otherwise(base, "./sub//f.txt") is None
    assert spelled_otherwise(tmp_path / "gone", "f.txt") is None  # a folder that cannot be listed: nothing to say


def test_an_onnx_models_external_data_in_another_case_fails_integrity(tmp_path):
    import onnx

    from fixtures import onnx_models as M

    d = tmp_path / "ext"
    d.mkdir()
    onnx.save(M.linear(n_in=64, n_out=64), str(d / "model.onnx"), save_as_external_data=True, location="weights.bin")
    os.rename(d / "weights.bin", d / "Weights.bin")
    A.write_manifest(d, {"model_name": "ext", "version": "1", "file": "model.onnx"})
    gs = GateSession([tmp_path])
    r = gs.run_check("integrity", gs.artifacts[0])
    assert not r
    assert (
        "external data: weights.bin does not exist: ext/ holds 'Weights.bin', not 'weights.bin' (in another case), "
        "and this filesystem tells them apart (macOS' or Windows' would have opened it); save the model naming its "
        "files as on disk"
    ) in str(r)


def test_a_folder_is_listed_again_once_its_entries_change(tmp_path, monkeypatch):
    (tmp_path / "a.txt").write_text("x")
    listed = []
    real = os.listdir
    monkeypatch.setattr(paths.os, "listdir", lambda p: listed.append(p) or real(p))
    assert spelled_otherwise(tmp_path, "A.txt") == (tmp_path, "A.txt", "a.txt")
    assert spelled_otherwise(tmp_path, "A.txt") == (tmp_path, "A.txt", "a.txt")
    assert len(listed) == 1  # the same folder, unchanged: its listing is kept
    os.rename(tmp_path / "a.txt", tmp_path / "A.txt")
    st = os.stat(tmp_path)  # a second later, so that a filesystem with coarse times also shows the change
    os.utime(tmp_path, ns=(st.st_atime_ns, st.st_mtime_ns + 10**9))
    assert spelled_otherwise(tmp_path, "A.txt") is None and len(listed) == 2


def test_a_huge_folders_listing_is_not_held(tmp_path, monkeypatch):
    monkeypatch.setattr(paths, "_LISTING_KEPT_NAMES", 2)
    for n in ("a.txt", "b.txt", "c.txt"):
        (tmp_path / n).write_text("x")
    assert spelled_otherwise(tmp_path, "A.txt") == (tmp_path, "A.txt", "a.txt")
    assert os.fspath(tmp_path) not in paths._LISTINGS
