"""Folders discovery cannot use are said, not passed by: one it cannot list (its path past the system's limit, or
unreadable) held artifacts that were silently not gated, as os.walk passes such a folder by; a folder whose name is
not UTF-8 reached the runtimes, whose bindings answered with their argument dumps instead of a reason."""

from __future__ import annotations

import os
from pathlib import Path

from fixtures import artifacts as A
from model_checks.core.discovery import LONGEST_ID, discover


def _deep(root: Path, levels: int, width: int = 200) -> bytes:
    """`levels` folders of `width` characters below `root`, made through directory descriptors (no path past
    PATH_MAX is ever passed to the system), a manifest in the deepest; the path of the deepest, relative to root."""
    fd = os.open(root, os.O_RDONLY)
    rel = []
    try:
        for k in range(levels):
            name = f"{k:03d}" + "d" * (width - 3)
            os.mkdir(name, dir_fd=fd)
            nxt = os.open(name, os.O_RDONLY, dir_fd=fd)
            os.close(fd)
            fd, rel = nxt, [*rel, name]
        manifest = os.open("metadata.yaml", os.O_WRONLY | os.O_CREAT, 0o644, dir_fd=fd)
        os.write(manifest, b"model_name: hidden\nversion: '1'\nfile: model.onnx\n")
        os.close(manifest)
    finally:
        os.close(fd)
    return "/".join(rel).encode()


def test_a_folder_past_the_path_limit_is_refused_not_passed_by(tmp_path: Path) -> None:
    A.onnx_artifact(tmp_path / "visible", name="visible")
    _deep(tmp_path, 25)  # 25 x 201 characters: past Linux's 4096
    found = {a.id: a for a in discover([tmp_path])}
    assert "visible@1.0" in found
    (invalid,) = [a for a in found.values() if a.id.startswith("invalid:")]
    assert len(invalid.id) < LONGEST_ID + 60 and "characters, " in invalid.id
    assert "is a folder the gate cannot list (File name too long): any artifacts in it are not gated, on this " in (
        invalid.error or ""
    )
    assert "or shorten its path: it is past this system's limit" in (invalid.error or "")


def test_a_folder_whose_name_is_not_utf8_is_refused_with_a_reason(tmp_path: Path) -> None:
    bad = os.path.join(os.fsencode(tmp_path), b"bad\xff")
    os.mkdir(bad)
    A.onnx_artifact(Path(os.fsdecode(bad)), name="bad")
    (a,) = discover([tmp_path])
    assert a.id == "invalid:bad\\udcff" and a.manifest is None
    assert (a.error or "").startswith("the path bad\\udcff is not valid UTF-8 text")
