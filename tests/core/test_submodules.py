"""core/discovery.unfetched_submodules: artifacts kept in a git submodule are not in a checkout that has not fetched
it (a clone without --recurse-submodules; actions/checkout by default), where git leaves an empty folder. Without a
word they were missing from the gate there and checked on a laptop: the same commit passed with fewer artifacts.
Such a folder is refused like a link that leads out of the root: its test_manifest fails and says why."""

import os
import shutil
import subprocess
from pathlib import Path

import pytest

from fixtures import artifacts as A
from model_checks.core.discovery import discover, unfetched_submodules

GIT = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-c", "protocol.file.allow=always"]
ENV = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}
SAID = (
    "vision is a git submodule this checkout has not fetched (an empty folder that .gitmodules names): the artifacts "
    "in it are not here to be checked, on this machine only. Fetch it where the gate runs (git submodule update "
    "--init; GitHub Actions: actions/checkout with submodules: true), or leave it out of the gated roots"
)

needs_git = pytest.mark.skipif(shutil.which("git") is None, reason="needs git")


def git(cwd: Path, *args: str) -> None:
    subprocess.run([*GIT, *args], cwd=cwd, env=ENV, check=True, capture_output=True)


def _repositories(base: Path) -> Path:
    """A repository `models` holding an artifact, and `main`, whose artifacts root `arts/` holds an artifact of
    its own and `models` as the submodule `arts/vision`; returns main's path."""
    models, main = base / "models", base / "main"
    A.onnx_artifact(models / "cnn", name="cnn")
    A.onnx_artifact(main / "arts" / "a", name="a")
    for repo in (models, main):
        git(repo, "init", "-q")
    git(models, "add", "-A")
    git(models, "commit", "-q", "-m", "models")
    git(main, "submodule", "add", "-q", str(models), "arts/vision")
    git(main, "add", "-A")
    git(main, "commit", "-q", "-m", "artifacts and a submodule")
    return main


@needs_git
def test_an_unfetched_submodule_fails_its_manifest_and_once_fetched_its_artifacts_are_gated(pytester):
    main = _repositories(pytester.path)
    git(pytester.path, "clone", "-q", str(main), "clone")
    clone = pytester.path / "clone"
    assert (clone / "arts" / "vision").is_dir() and not any((clone / "arts" / "vision").iterdir())
    r = pytester.runpytest_subprocess("--model-checks", "clone/arts", "-p", "no:cacheprovider", "-rA")
    r.stdout.fnmatch_lines([f"*{SAID}*"])
    assert r.parseoutcomes()["failed"] == 1  # the submodule's, at its manifest; a@1.0's checks pass
    git(clone, "submodule", "update", "--init", "-q")
    r = pytester.runpytest_subprocess("--model-checks", "clone/arts", "-p", "no:cacheprovider", "-rA")
    assert "failed" not in r.parseoutcomes(), r.stdout.str()[-3000:]
    r.stdout.fnmatch_lines(["*test_manifest?a@1.0?*", "*test_manifest?cnn@1.0?*"])


@needs_git
def test_a_root_that_is_an_unfetched_submodule_says_so(tmp_path):
    main = _repositories(tmp_path)
    git(tmp_path, "clone", "-q", str(main), "clone")
    found = discover([tmp_path / "clone" / "arts" / "vision"])
    assert [(a.id, a.error) for a in found] == [("invalid:vision", SAID.replace(".gitmodules", "../.gitmodules"))]


def _gitmodules(root: Path, text: str) -> None:
    (root.parent / ".git").mkdir(parents=True, exist_ok=True)
    (root.parent / ".gitmodules").write_text(text)


def test_only_an_empty_folder_gitmodules_names_below_the_root_is_called_unfetched(tmp_path):
    root = tmp_path / "repo" / "arts"
    A.onnx_artifact(root / "a", name="a")
    for d in ("vision", "fetched", "other_empty", "sub/deeper"):
        (root / d).mkdir(parents=True)
    (root / "fetched" / ".git").write_text("gitdir: ../../.git/modules/fetched\n")  # a submodule git has fetched
    (tmp_path / "repo" / "outside").mkdir()
    _gitmodules(
        root,
        '[submodule "vision"]\n\tpath = arts/vision\n\turl = ../models\n'
        '[submodule "fetched"]\n\tpath = arts/fetched\n'
        '[submodule "deeper"]\n\tpath = "arts/sub/deeper"\n'
        '[submodule "outside"]\n\tpath = outside\n'  # not below the root
        f'[submodule "absolute"]\n\tpath = {tmp_path / "repo" / "arts" / "other_empty"}\n'  # never taken
        "[core]\n\tpath = arts/other_empty\n",  # not a submodule's
    )
    assert unfetched_submodules(root) == {  # named as shown: from the root's parent, as every path of the root
        str(root / "vision"): ".gitmodules",
        str(root / "sub" / "deeper"): ".gitmodules",
    }
    found = {a.id: a.error for a in discover([root])}
    assert found["a@1.0"] is None
    assert found["invalid:vision"] == SAID
    assert found["invalid:sub/deeper"].startswith("deeper is a git submodule this checkout has not fetched")
    assert len(found) == 3  # the empty folder nothing names, and the fetched one (empty of artifacts), as before


@pytest.mark.parametrize(
    "text",
    ['[submodule "vision"\npath = arts/vision\n', "\0\0\0", "path = arts/vision\n", '[submodule "v"]\n'],
    ids=["torn", "binary", "no section", "no path"],
)
def test_a_gitmodules_git_could_not_read_names_nothing(tmp_path, text):
    root = tmp_path / "repo" / "arts"
    (root / "vision").mkdir(parents=True)
    _gitmodules(root, text)
    assert unfetched_submodules(root) == {}
    assert discover([root]) == []


def test_a_gitmodules_that_is_a_link_names_nothing_as_git_refuses_it(tmp_path):
    root = tmp_path / "repo" / "arts"
    (root / "vision").mkdir(parents=True)
    (tmp_path / "elsewhere").write_text('[submodule "v"]\n\tpath = arts/vision\n')
    _gitmodules(root, "")
    (root.parent / ".gitmodules").unlink()
    os.symlink(tmp_path / "elsewhere", root.parent / ".gitmodules")
    assert unfetched_submodules(root) == {}


def test_without_a_repository_nothing_is_read(tmp_path):
    root = tmp_path / "arts"
    (root / "vision").mkdir(parents=True)
    (tmp_path / ".gitmodules").write_text('[submodule "v"]\n\tpath = arts/vision\n')  # no .git beside it
    assert unfetched_submodules(root) == {}
