"""safety/paths: the artifacts root's realpath is worked out once per root, and below it a path without links costs
an lstat a component; that changes no answer: every path below the root is resolved afresh (a link swapped after a
first check is judged by where it leads now), a root that comes to name another directory is worked out again, and
on a tree of links in and out the answers and messages are those of resolving everything on every call (the code
before the cache, kept here as the reference)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checks.core.errors import ArtifactLoadError, UnsafePathError
from model_checks.safety import paths
from model_checks.safety.paths import check_regular_file, resolve_inside


def reference(root: Path, base: Path, text: str, key: str) -> Path:
    """resolve_inside as it was before the root's realpath was kept (5c947d8)."""
    if not text or "\x00" in text:
        raise UnsafePathError(f"{key}: {text!r} is not a usable path")
    if paths._is_absolute(text):
        raise UnsafePathError(f"{key}: {text!r} is absolute; paths in a manifest are relative to its directory")
    root_real = Path(os.path.realpath(root))
    lexical = Path(os.path.normpath(os.path.abspath(base / text)))
    real = Path(os.path.realpath(lexical))
    for candidate, what in ((lexical, "climbs out of"), (real, "resolves (through a symlink) outside")):
        try:
            candidate.relative_to(
                root_real if what != "climbs out of" else Path(os.path.normpath(os.path.abspath(root)))
            )
        except ValueError:
            raise UnsafePathError(f"{key}: {text!r} {what} the artifacts root {root}") from None
    return real


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    return build(tmp_path)


def build(tmp_path: Path) -> Path:
    """outside/secret.onnx, and a root `arts` (a link to `real_arts`) with an artifact holding links in and out."""
    (tmp_path / "outside").mkdir()
    (tmp_path / "outside" / "secret.onnx").write_bytes(b"x")
    (tmp_path / "real_arts" / "a" / "sub").mkdir(parents=True)
    (tmp_path / "arts").symlink_to(tmp_path / "real_arts", target_is_directory=True)
    a = tmp_path / "real_arts" / "a"
    (a / "model.onnx").write_bytes(b"m")
    (a / "sub" / "deep.onnx").write_bytes(b"d")
    (a / "link_in").symlink_to(a / "model.onnx")
    (a / "link_out").symlink_to(tmp_path / "outside" / "secret.onnx")
    (a / "dir_in").symlink_to(a / "sub", target_is_directory=True)
    (a / "dir_out").symlink_to(tmp_path / "outside", target_is_directory=True)
    (a / "dangling").symlink_to(tmp_path / "nowhere")
    return tmp_path


def test_a_link_swapped_after_a_first_check_is_judged_by_where_it_leads_now(tree: Path) -> None:
    root, base = tree / "arts", tree / "arts" / "a"
    assert resolve_inside(root, base, "link_in", "file") == tree / "real_arts" / "a" / "model.onnx"
    assert resolve_inside(root, base, "model.onnx", "file")  # the root's realpath is now kept
    (base / "link_in").unlink()
    (base / "link_in").symlink_to(tree / "outside" / "secret.onnx")
    with pytest.raises(UnsafePathError) as e:
        resolve_inside(root, base, "link_in", "file")
    assert str(e.value) == f"file: 'link_in' resolves (through a symlink) outside the artifacts root {root}"


def test_a_root_that_comes_to_name_another_directory_is_worked_out_again(tree: Path) -> None:
    root = tree / "arts"
    assert resolve_inside(root, root / "a", "model.onnx", "file").parent == tree / "real_arts" / "a"
    (tree / "other" / "b").mkdir(parents=True)
    (tree / "other" / "b" / "m.onnx").write_bytes(b"m")
    (tree / "other" / "b" / "back").symlink_to(tree / "real_arts" / "a" / "model.onnx")  # into the old root
    root.unlink()
    root.symlink_to(tree / "other", target_is_directory=True)
    assert resolve_inside(root, root / "b", "m.onnx", "file") == tree / "other" / "b" / "m.onnx"
    with pytest.raises(UnsafePathError, match="'back' resolves \\(through a symlink\\) outside the artifacts root"):
        resolve_inside(root, root / "b", "back", "file")


def test_the_root_is_worked_out_once_while_it_names_the_same_directory(tree: Path, monkeypatch) -> None:
    root, base = tree / "arts", tree / "arts" / "a"
    resolve_inside(root, base, "model.onnx", "file")
    asked: list[str] = []
    real = os.path.realpath
    monkeypatch.setattr(paths.os.path, "realpath", lambda p, *a, **k: asked.append(os.fspath(p)) or real(p, *a, **k))
    for name in ("model.onnx", "link_in", "sub/deep.onnx"):
        resolve_inside(root, base, name, "file")
    assert asked == [str(base / "link_in")]  # not the root; and below it only a path with a link in it


def test_a_folder_below_the_root_swapped_for_a_link_after_a_check_is_judged_by_where_it_leads(tree: Path) -> None:
    """The walk below the root lstat's every component on every call: a folder that has become a link since the
    last call is seen as a link, and realpath judges it."""
    root = tree / "real_arts"
    assert resolve_inside(root, root, "a/sub/deep.onnx", "file") == root / "a" / "sub" / "deep.onnx"
    (tree / "outside" / "sub").mkdir()
    (tree / "outside" / "sub" / "deep.onnx").write_bytes(b"x")
    (root / "a" / "sub").rename(tree / "old_sub")
    (root / "a" / "sub").symlink_to(tree / "outside" / "sub", target_is_directory=True)
    with pytest.raises(UnsafePathError) as e:
        resolve_inside(root, root, "a/sub/deep.onnx", "file")
    assert str(e.value) == f"file: 'a/sub/deep.onnx' resolves (through a symlink) outside the artifacts root {root}"


def test_a_kept_root_path_that_no_longer_names_the_root_is_not_used_for_answers(tree: Path) -> None:
    """The root (a link) keeps its directory, but that directory now lives elsewhere: the kept realpath names
    nothing or another directory, so realpath answers, and the answer is judged against the kept root as before (refused: stricter,
    never an answer in the old place)."""
    root = tree / "arts"
    assert resolve_inside(root, root / "a", "model.onnx", "file") == tree / "real_arts" / "a" / "model.onnx"
    (tree / "real_arts").rename(tree / "moved_arts")
    root.unlink()
    root.symlink_to(tree / "moved_arts", target_is_directory=True)
    (tree / "real_arts" / "a").mkdir(parents=True)  # and another directory where the root was
    (tree / "real_arts" / "a" / "model.onnx").write_bytes(b"other")
    with pytest.raises(UnsafePathError) as e:
        resolve_inside(root, root / "a", "model.onnx", "file")
    assert str(e.value) == f"file: 'model.onnx' resolves (through a symlink) outside the artifacts root {root}"
    assert reference(root, root / "a", "model.onnx", "file") == tree / "moved_arts" / "a" / "model.onnx"


TEXTS = st.lists(
    st.sampled_from(["a", "..", ".", "model.onnx", "link_in", "link_out", "dir_in", "dir_out", "dangling", "sub", "x"]),
    min_size=1,
    max_size=5,
).map("/".join) | st.sampled_from(["", "/etc/passwd", "~/x", "C:\\x", "a\x00b", "./", "a//model.onnx"])


@settings(max_examples=300, deadline=None)
@given(text=TEXTS, through_link=st.booleans(), at_root=st.booleans())
def test_same_answers_and_messages_as_resolving_the_root_every_time(tmp_path_factory, text, through_link, at_root):
    tree = _tree(tmp_path_factory)
    root = tree / ("arts" if through_link else "real_arts")
    base = root if at_root else root / "a"
    for _ in range(2):  # the second time the root's realpath comes from the cache
        try:
            want: object = reference(root, base, text, "file")
        except UnsafePathError as e:
            want = str(e)
        try:
            got: object = resolve_inside(root, base, text, "file")
        except UnsafePathError as e:
            got = str(e)
        assert got == want


_TREES: dict[str, Path] = {}


def _tree(factory) -> Path:  # one tree for every example (hypothesis runs the test many times in one fixture)
    if "t" not in _TREES:
        _TREES["t"] = build(factory.mktemp("paths"))
    return _TREES["t"]


def test_check_regular_file_says_what_is_wrong_with_one_stat(tree: Path) -> None:
    a = tree / "real_arts" / "a"
    assert check_regular_file(a / "link_in", "file") == 1  # a link to a regular file inside: its size
    with pytest.raises(UnsafePathError) as e:
        check_regular_file(a / "sub", "file")
    assert str(e.value) == "file: sub is not a regular file"
    os.mkfifo(a / "pipe")
    with pytest.raises(UnsafePathError, match="^file: pipe is not a regular file$"):
        check_regular_file(a / "pipe", "file")
    with pytest.raises(ArtifactLoadError, match="^file: dangling does not exist$"):
        check_regular_file(a / "dangling", "file")
    with pytest.raises(UnsafePathError, match="^file: model.onnx is 1 bytes, over the cap of 0 bytes$"):
        check_regular_file(a / "model.onnx", "file", max_bytes=0)
    os.link(a / "model.onnx", a / "alias.onnx")
    with pytest.raises(UnsafePathError, match="^file: alias.onnx has 2 hard links; a hard link can alias a file"):
        check_regular_file(a / "alias.onnx", "file")


def test_absolute_on_either_flavour_as_pathlib_says() -> None:
    """The shortcut for text with no root and no drive answers as PurePosixPath and PureWindowsPath do, on every
    text of up to four characters from the ones that matter."""
    import itertools
    from pathlib import PurePosixPath, PureWindowsPath

    def pathlib_says(t: str) -> bool:
        return PurePosixPath(t).is_absolute() or PureWindowsPath(t).is_absolute() or t.startswith("~")

    texts = [
        "".join(p) for k in range(1, 5) for p in itertools.product(["a", "/", "\\", ":", "C", "~", ".", "?"], repeat=k)
    ]
    assert [t for t in texts if paths._is_absolute(t) != pathlib_says(t)] == []
    assert paths._is_absolute("C:\\x") and paths._is_absolute("//srv/share/x") and not paths._is_absolute("a/b")


def _outcome(f, *args) -> object:
    try:
        return ("size", f(*args))
    except (UnsafePathError, ArtifactLoadError, OSError) as e:  # OSError: `model.onnx/x` (not a directory), as before
        return (type(e).__name__, str(e))


FILE_TEXTS = st.lists(
    st.sampled_from(["a", "..", ".", "model.onnx", "link_in", "link_out", "dir_in", "dangling", "sub", "x", "fifo"])
    | st.sampled_from(["hard.onnx", "deep.onnx", "link_fifo", "link_sub"]),
    min_size=1,
    max_size=4,
).map("/".join) | st.sampled_from(["", "/etc/passwd", "a\x00b", "./", "a//model.onnx", "sub/../model.onnx"])
_FILE_TREES: dict[str, Path] = {}


@settings(max_examples=400, deadline=None)
@given(text=FILE_TEXTS, through_link=st.booleans(), at_root=st.booleans(), cap=st.sampled_from([0, 1, 1 << 32]))
def test_regular_file_inside_answers_as_check_regular_file_of_resolve_inside(
    tmp_path_factory, text, through_link, at_root, cap
):
    """Discovery's proof of a manifest (one call, the file's own lstat reused, no Path) gives the size, or the
    refusal and its message, that proving the path and then stat'ing the file gave: links in and out, dangling,
    a named pipe (and a link to one), a folder, a hard link, the size cap, climbing out."""
    if "t" not in _FILE_TREES:
        tree = build(tmp_path_factory.mktemp("files"))
        a = tree / "real_arts" / "a"
        os.mkfifo(a / "fifo")
        (a / "link_fifo").symlink_to(a / "fifo")
        (a / "link_sub").symlink_to(a / "sub", target_is_directory=True)
        (a / "hard.onnx").write_bytes(b"hh")
        os.link(a / "hard.onnx", tree / "outside" / "alias.onnx")
        _FILE_TREES["t"] = tree
    tree = _FILE_TREES["t"]
    root = tree / ("arts" if through_link else "real_arts")
    base = root if at_root else root / "a"
    want = _outcome(lambda: check_regular_file(resolve_inside(root, base, text, "k"), "k", cap))
    for _ in range(2):  # and again with the root's realpath kept
        assert _outcome(paths.regular_file_inside, root, base, text, "k", cap) == want


def test_regular_file_inside_takes_no_stat_beyond_the_proofs_lstats(tree: Path, monkeypatch) -> None:
    root = tree / "real_arts"
    paths.regular_file_inside(root, root / "a", "model.onnx", "k")  # the root's realpath kept
    calls = []
    for name in ("stat", "lstat"):
        real = getattr(os, name)
        monkeypatch.setattr(paths.os, name, lambda p, *a, _n=name, _r=real, **k: calls.append(_n) or _r(p, *a, **k))
    assert paths.regular_file_inside(root, root / "a", "model.onnx", "k") == 1
    assert calls == ["stat", "lstat", "lstat"]  # the root's identity, then a/ and model.onnx
