"""Digests hashed ahead (`safety.digest.Digests`): given back only while the files are as they were when hashed."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from model_checks.safety import digest
from model_checks.safety.digest import Digests


def _files(tmp_path: Path) -> list[Path]:
    a, b = tmp_path / "model.onnx", tmp_path / "weights.bin"
    a.write_bytes(b"graph" * 1000)
    b.write_bytes(bytes(range(256)) * 5000)
    return [a, b]


def _settled(monkeypatch: pytest.MonkeyPatch) -> None:
    """The files count as settled however recently they were written (nothing else writes them in these tests)."""
    monkeypatch.setattr(digest, "SETTLED_NS", -(10**18))


def test_a_digest_is_given_back_while_the_files_are_unchanged(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _settled(monkeypatch)
    files, digests = _files(tmp_path), Digests()
    assert digests.known(files) is None
    expected = hashlib.sha256(b"".join(f.read_bytes() for f in files)).hexdigest()
    assert digests.hash(files) == expected and digests.known(files) == expected
    assert digests.known(files[:1]) is None and digests.known(files[::-1]) is None  # the same files, in order


@pytest.mark.parametrize(
    "change",
    [
        lambda f: f.write_bytes(f.read_bytes()[::-1]),  # the same size, other bytes
        lambda f: os.utime(f, ns=(0, 0)),  # times set back: the change time still moves
        lambda f: (f.unlink(), f.write_bytes(b"x")),  # another file under the name
    ],
    ids=["rewritten", "touched", "replaced"],
)
def test_a_file_changed_since_it_was_hashed_is_hashed_again(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, change
) -> None:  # type: ignore[no-untyped-def]
    _settled(monkeypatch)
    files, digests = _files(tmp_path), Digests()
    digests.hash(files)
    before = digest._identity(files)
    change(files[1])
    if digest._identity(files) == before:  # a coarse clock's tick: what SETTLED_NS is there for
        pytest.skip("the change time did not move within this clock tick")
    assert digests.known(files) is None


def test_files_changed_just_before_their_hash_began_are_not_remembered(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A second write in the same tick of a coarse clock could leave the stat as it was: files changed less than
    SETTLED_NS before hashing began are hashed, not remembered (racily clean, as git calls it)."""
    monkeypatch.setattr(digest, "SETTLED_NS", 10**18)  # everything counts as just changed, however slow this run
    files, digests = _files(tmp_path), Digests()
    assert digests.hash(files) and digests.known(files) is None
