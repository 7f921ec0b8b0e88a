"""Workers see no code from the tree and write nowhere of the user's; Ctrl-C kills a busy one at once (issue 11)."""

from __future__ import annotations

import os
import signal
import sys
import threading
from pathlib import Path

import pytest

from fixtures import crashing, probes
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


def test_ctrl_c_kills_a_busy_worker_at_once() -> None:
    workers = Workers(LIMITS)
    try:
        workers.call("onnx", probes.view, "json")  # started
        proc = workers.worker("onnx").proc
        assert proc is not None
        timer = threading.Timer(1.0, os.kill, (os.getpid(), signal.SIGINT))
        timer.start()
        with pytest.raises(KeyboardInterrupt):
            workers.call("onnx", crashing.hang, 3600)
        timer.join()
        assert proc.poll() is not None and not workers.worker("onnx").alive  # killed, not waited on for the timeout
    finally:
        workers.close()
