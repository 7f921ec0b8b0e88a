"""Discovery: no manifest or policy ends the session, and discovery runs once (issue 11)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fixtures import bad_artifacts
from model_checks.core.discovery import discover


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.symlink_to("nowhere.yaml"), "nowhere.yaml does not exist"),
        (lambda p: os.mkfifo(p), "policy.yaml is not a regular file"),
        (lambda p: p.write_text("tolerance:\n  <<: {rel_l2: 1}\n"), "merge keys (<<) are not allowed"),
        (
            lambda p: p.write_text("tolerance: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n"),
            "nested more than 64 levels deep",
        ),
    ],
)
def test_a_bad_policy_fails_each_artifact_and_discovery_runs_once(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make, message
) -> None:
    root = tmp_path / "artifacts"
    for name in ("a", "b"):
        bad_artifacts.model(root / name)
    make(root / "policy.yaml")
    from model_checks.core import session

    calls = []
    monkeypatch.setattr(session, "discover", lambda roots: calls.append(roots) or discover(roots))
    gs = session.GateSession(roots=[root])
    for _ in range(3):
        gs.by_dir(root / "a")
    assert len(calls) == 1
    assert [a.id for a in gs.artifacts] == ["invalid:a", "invalid:b"]
    assert all(message in (a.error or "") for a in gs.artifacts), [a.error for a in gs.artifacts]


def _os_walk_reference(root: Path):
    """discovery._walk and roots._walk as they were (e8e4d9f): os.walk, links not followed, sorted sub-directories."""
    real_root = os.path.realpath(root)
    found, listing = [], []
    for dirpath, dirnames, filenames in os.walk(root, followlinks=False):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith(".") and d != "__pycache__")
        listing.append((dirpath, sorted(filenames)))
        for d in dirnames:
            link = os.path.join(dirpath, d)
            if os.path.islink(link) and os.path.commonpath([real_root, os.path.realpath(link)]) != real_root:
                found.append(
                    (
                        Path(link),
                        f"{d} is a symlink to a directory outside the artifacts root; links are not followed (copy the artifact in instead)",
                    )
                )
        if "metadata.yaml" in filenames:
            found.append((Path(dirpath), None))
    return found, listing


def _link_tree(tmp_path: Path) -> Path:
    root, outside = tmp_path / "arts", tmp_path / "outside"
    for name in ("b", "a/c", "a/d", ".hidden/x", "__pycache__/y", "e", "a/d/nested"):
        bad_artifacts.model(root / name)
    bad_artifacts.model(outside)
    (root / "in").symlink_to(root / "a", target_is_directory=True)
    (root / "out").symlink_to(outside, target_is_directory=True)
    (root / "a" / "rel_out").symlink_to("../../outside", target_is_directory=True)
    (root / "a" / "rel_in").symlink_to("../e", target_is_directory=True)
    (root / "dangling").symlink_to(root / "nothing")
    (root / "f" / "metadata.yaml").mkdir(parents=True)  # a folder by the manifest's name
    (root / "g").mkdir()
    (root / "g" / "metadata.yaml").symlink_to(root / "b" / "metadata.yaml")
    (root / "a" / "c" / "conftest.py").write_text("")
    (root / "e" / "test_x.py").write_text("")
    os.mkfifo(root / "e" / "pipe")
    return root


def test_the_walk_answers_as_os_walk_did(tmp_path: Path) -> None:
    """One scandir a folder: the same folders in the same order, the same links refused with the same message,
    the same file listing (which `roots.python_files` reads)."""
    from model_checks.core import discovery

    root = _link_tree(tmp_path)
    listing: list = []
    assert (list(discovery._walk(root, listing)), listing) == _os_walk_reference(root)
    assert [d.name for d, why in discovery._walk(root) if why] == ["out", "rel_out"]


def test_python_files_reads_the_listing_discovery_made_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from model_checks.core import discovery
    from model_checks.core.roots import near_misses, python_files

    root = _link_tree(tmp_path)
    want = [root / "a" / "c" / "conftest.py", root / "e" / "test_x.py"]
    discover([root])
    listed = []
    scandir = os.scandir
    monkeypatch.setattr(discovery.os, "scandir", lambda p: listed.append(p) or scandir(p))
    assert python_files(root, ["test_*.py"]) == want and listed == []  # discovery's listing, no walk
    assert python_files(root, ["test_*.py"]) == want and len(listed) > 5  # handed over once: then a fresh walk
    (root / "e" / "metadata.yml").write_text("")
    assert near_misses(root) == [root / "e" / "metadata.yml"]
