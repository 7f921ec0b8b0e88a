"""safety/paths.link_problem: where git makes no symbolic links (core.symlinks=false: Windows without Developer Mode),
it checks a link out as a small plain file holding the link's target. The same commit is then a model on one machine
and a few bytes of text on another; the gate names it as such wherever it reads the file (the manifest's paths,
ONNX external data, ONNX test data, an OpenVINO IR's weights: tests/backends/openvino), not as text that is no model."""

import os
import shutil
import subprocess

import numpy as np
import onnx
import pytest
from onnx import numpy_helper

from fixtures import artifacts as A
from fixtures import onnx_models as M
from model_checks.core.session import GateSession
from model_checks.safety.paths import link_problem
from model_checks.safety.sniff import link_text

SAID = (
    "the path of the {kind} it should be a symbolic link to: this checkout wrote the link as a plain file, as git "
    "does where it makes no links (core.symlinks=false"
)


def _check(root, name, which=0):
    gs = GateSession([root])
    return gs.run_check(name, sorted(gs.artifacts, key=lambda a: a.id)[which])


def test_a_model_file_written_as_its_links_target_fails_the_manifest(tmp_path):
    M.save(M.linear(), tmp_path / "shared" / "model.onnx")
    d = A.onnx_artifact(tmp_path / "a", name="a")
    (d / "model.onnx").write_text("../shared/model.onnx")
    r = _check(tmp_path, "manifest")
    assert not r, str(r)
    assert f"file: model.onnx holds only the text '../shared/model.onnx', {SAID.format(kind='file')}" in str(r)
    assert "git config core.symlinks true" in str(r)


def test_a_reference_folder_written_as_its_links_target_fails_the_manifest(tmp_path):
    ref = A.onnx_artifact(tmp_path / "fp32", name="fp32")
    d = A.onnx_artifact(tmp_path / "a", name="a", reference={"path": "ref"})
    (d / "ref").write_text(os.path.relpath(ref, d))
    r = _check(tmp_path, "manifest", which=0)
    assert not r and f"reference.path: ref holds only the text '../fp32', {SAID.format(kind='folder')}" in str(r), str(
        r
    )


def test_external_data_written_as_its_links_target_fails_integrity(tmp_path):
    d = tmp_path / "ext"
    d.mkdir()
    onnx.save(M.linear(n_in=64, n_out=64), str(d / "model.onnx"), save_as_external_data=True, location="weights.bin")
    (tmp_path / "store").mkdir()
    (d / "weights.bin").rename(tmp_path / "store" / "weights.bin")
    (d / "weights.bin").write_text("../store/weights.bin")
    A.write_manifest(d, {"model_name": "ext", "version": "1", "file": "model.onnx"})
    r = _check(tmp_path, "integrity")
    assert (
        not r
        and f"external data: weights.bin holds only the text '../store/weights.bin', {SAID.format(kind='file')}"
        in str(r)
    ), str(r)


def test_test_data_written_as_its_links_target_fails_equivalence(tmp_path):
    d = A.onnx_artifact(tmp_path / "a", name="a", reference={"path": "."})
    x = np.zeros((1, 4), np.float32)
    for s in ("test_data_set_0", "test_data_set_1"):
        (d / s).mkdir()
        (d / s / "input_0.pb").write_bytes(numpy_helper.from_array(x, "input").SerializeToString())
    (d / "test_data_set_1" / "output_0.pb").write_bytes(numpy_helper.from_array(x[:, :2], "y").SerializeToString())
    (d / "test_data_set_0" / "output_0.pb").write_text("../test_data_set_1/output_0.pb")
    r = _check(tmp_path, "equivalence")
    assert (
        not r
        and f"output_0.pb holds only the text '../test_data_set_1/output_0.pb', {SAID.format(kind='file')}" in str(r)
    ), str(r)


def test_what_is_a_links_text_and_what_is_not(tmp_path):
    (tmp_path / "there.onnx").write_bytes(b"\x08\x07")
    p = tmp_path / "f"
    for text in ("there.onnx", "./there.onnx", "sub/../there.onnx", "naïve/model.onnx"):
        p.write_text(text)
        assert link_text(p) == text
    for text in ("there.onnx\n", " there.onnx", "a\0b", "two\nlines", "x" * 4097, ""):
        p.write_text(text)
        assert link_text(p) is None, text
    p.write_bytes(b"\xff\xfe")  # not UTF-8
    assert link_text(p) is None
    M.save(M.linear(), p)  # a model
    assert link_text(p) is None
    os.symlink("there.onnx", tmp_path / "real_link")  # a link the filesystem made is no stand-in
    assert link_text(tmp_path / "real_link") is None
    assert link_text(tmp_path) is None and link_text(tmp_path / "gone") is None
    os.mkfifo(tmp_path / "fifo")  # never opened: it would block
    assert link_text(tmp_path / "fifo") is None


def test_a_text_is_called_a_link_only_when_it_names_something_there_inside_the_root(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    (root / "model.onnx").write_bytes(b"\x08\x07")
    (tmp_path / "outside.onnx").write_bytes(b"\x08\x07")
    os.symlink(tmp_path, root / "out")  # a real link in the tree, leading out
    p = root / "a" / "model.onnx"
    p.write_text("../model.onnx")
    assert link_problem(root, p) is not None
    for text in (
        "../missing.onnx",  # names nothing there: the file's readers say what they make of it
        "../../outside.onnx",  # outside the root: not looked at
        "../out/outside.onnx",  # inside as written, outside once the tree's link is followed
        str(root / "model.onnx"),  # absolute: never followed
    ):
        p.write_text(text)
        assert link_problem(root, p) is None, text


def test_a_file_with_a_second_hard_link_is_not_read(tmp_path):
    (tmp_path / "model.onnx").write_bytes(b"\x08\x07")
    (tmp_path / "elsewhere").write_text("model.onnx")
    os.link(tmp_path / "elsewhere", tmp_path / "a.onnx")
    assert link_text(tmp_path / "a.onnx") is None


@pytest.mark.skipif(shutil.which("git") is None, reason="needs git")
def test_a_checkout_git_made_without_links_fails_with_this_message_and_one_with_links_passes(pytester):
    """End to end with git itself: a repository whose artifact's model is a symbolic link to a shared file, cloned
    once with core.symlinks=false (as on Windows without Developer Mode) and once as usual."""
    repo = pytester.path / "repo"
    M.save(M.linear(), repo / "arts" / "shared" / "model.onnx")
    d = A.onnx_artifact(repo / "arts" / "a", name="a")
    (d / "model.onnx").unlink()
    os.symlink("../shared/model.onnx", d / "model.onnx")
    env = {**os.environ, "GIT_CONFIG_GLOBAL": os.devnull, "GIT_CONFIG_SYSTEM": os.devnull}
    ident = ["-c", "user.name=t", "-c", "user.email=t@example.com"]
    for cmd in (["init", "-q"], ["add", "-A"], [*ident, "commit", "-q", "-m", "artifacts"]):
        subprocess.run(["git", *cmd], cwd=repo, env=env, check=True, capture_output=True)
    outcomes = {}
    for clone, links in (("with_links", "true"), ("without_links", "false")):
        subprocess.run(
            ["git", "-c", f"core.symlinks={links}", "clone", "-q", str(repo), clone],
            cwd=pytester.path,
            env=env,
            check=True,
            capture_output=True,
        )
        assert (pytester.path / clone / "arts" / "a" / "model.onnx").is_symlink() == (links == "true")
        r = pytester.runpytest_subprocess("--model-checks", f"{clone}/arts", "-p", "no:cacheprovider")
        outcomes[clone] = r.parseoutcomes()
        if links == "false":
            r.stdout.fnmatch_lines(
                [f"*file: model.onnx holds only the text '../shared/model.onnx', {SAID.format(kind='file')}*"]
            )
    assert outcomes["with_links"].get("failed", 0) == 0 and outcomes["with_links"]["passed"] > 0, outcomes
    assert outcomes["without_links"]["failed"] == 1, outcomes  # the manifest, once; the rest are not run
