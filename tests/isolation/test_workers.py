"""Workers see no code from the tree and write nowhere of the user's; Ctrl-C kills a busy one at once (issue 11)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from fixtures import probes
from model_checks.isolation.limits import Limits
from model_checks.isolation.workers import Workers

LIMITS = Limits(memory_mb=2048, timeout_s=60)


def test_a_worker_imports_nothing_from_the_tree_and_writes_nowhere_of_the_users(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    tree = tmp_path / "tree"
    tree.mkdir()
    canary = tmp_path / "canary"
    (tree / "helpers.py").write_text(f"open({str(canary)!r}, 'w').write('imported')\n")
    monkeypatch.chdir(tree)
    monkeypatch.syspath_prepend(str(tree))  # as `python -m pytest` and `pythonpath = .` would
    monkeypatch.setenv("PYTHONPATH", str(tree))
    workers = Workers(LIMITS)
    try:
        seen = workers.call("onnx", probes.view, "helpers")
        sandbox = workers._sandbox
        assert sandbox is not None
    finally:
        workers.close()
    assert not seen["importable"] and not canary.exists()
    repo = str(Path(__file__).resolve().parents[2])
    assert str(tree) not in seen["sys_path"] and repo not in seen["sys_path"] and "" not in seen["sys_path"]
    private = [
        p for p in seen["sys_path"] if not p.startswith((sys.base_prefix, sys.prefix)) and "__editable__" not in p
    ]
    assert private == [str(sandbox.imports)]  # beside the standard library and site-packages, only the links
    assert sorted(os.listdir(tree)) == ["helpers.py"]  # nothing written into the tree
    assert seen["cwd"] == str(sandbox.cwd) and seen["cwd_entries"] == []
    assert seen["home"] == str(sandbox.dir / "home") and seen["tmpdir"] == str(sandbox.dir / "tmp")
    assert seen["model_checks"] == str(Path(__file__).resolve().parents[2] / "model_checks" / "__init__.py")
    assert not sandbox.dir.exists()  # removed with the workers


CTRL_C = """
import os, signal, threading
# Ctrl-C as in a user's terminal, whatever this suite inherited: a job started in the background by a shell without
# job control (a CI script's `cmd &`) ignores SIGINT, and so does every process it starts
signal.signal(signal.SIGINT, signal.default_int_handler)
from fixtures import crashing, probes
from model_checks.isolation.limits import Limits
from model_checks.isolation.workers import Workers

workers = Workers(Limits(memory_mb=2048, timeout_s=60))
try:
    workers.call("onnx", probes.view, "json")  # started
    proc = workers.worker("onnx").proc
    assert proc is not None
    timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
    timer.start()
    try:
        workers.call("onnx", crashing.hang, 3600)
    except KeyboardInterrupt:
        pass
    else:
        raise SystemExit("no KeyboardInterrupt")
    timer.join()
    assert proc.poll() is not None and not workers.worker("onnx").alive  # killed, not waited on for the timeout
finally:
    workers.close()
print("KILLED")
"""


def test_ctrl_c_kills_a_busy_worker_at_once() -> None:
    """In a process of its own, as a user's gate run. In this suite's process, OpenVINO's CPU plugin (loaded in
    process by earlier tests) changes the main thread's alternate signal stack when it creates its engine
    (`sigaltstack` from `create_plugin_engine`, seen under gdb), and the kernel later failed to deliver the SIGINT
    onto it: a SIGSEGV at the interrupted poll, 37% into `make test` on a fresh clone. The gate's own process
    never loads OpenVINO (it runs in the workers)."""
    repo = Path(__file__).resolve().parents[2]
    env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(repo), os.environ.get("PYTHONPATH", "")])}
    r = subprocess.run([sys.executable, "-c", CTRL_C], cwd=repo, env=env, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0 and r.stdout.strip().endswith("KILLED"), (r.returncode, r.stdout[-2000:], r.stderr[-2000:])


def test_a_warm_onnx_worker_has_not_imported_yaml() -> None:
    """A worker reads no YAML (the gate's process does): its backends import the manifest package for TensorSpec,
    whose YAML reader (PyYAML, ~10 ms of the worker's start) is imported on first use only."""
    workers = Workers(LIMITS)
    try:
        workers.start_early({"onnx"})
        seen = workers.call("onnx", probes.imported, ["model_checks.manifest", "onnxruntime", "yaml"])
    finally:
        workers.close()
    assert seen == ["model_checks.manifest", "onnxruntime"]
