"""Which onnxruntime sessions spin: the checks' sessions sleep between runs (a worker that has answered must not
busy-wait on the core the gate's own process compares on); a service's (a thread count given) and a budget's
timing session spin, as onnxruntime does by default. Outputs are the same either way."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from fixtures import artifacts as A
from fixtures import onnx_models as M
from model_checks.backends.onnx import runner, timing

SPINNING = "session.intra_op.allow_spinning"


def _spins(session) -> bool:  # type: ignore[no-untyped-def]
    try:
        return session.get_session_options().get_session_config_entry(SPINNING) != "0"
    except RuntimeError:  # not set: onnxruntime's default, which spins
        return True


def _model(tmp_path: Path) -> Path:
    A.onnx_artifact(tmp_path / "a", M.linear())
    return tmp_path / "a" / "model.onnx"


def test_the_checks_sessions_sleep_and_a_services_and_a_budgets_spin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = _model(tmp_path)
    checks = runner.load(path, path.parent)  # how the gate's pool loads a model for its checks: threads unset
    served = runner.load(path, path.parent, threads=1)  # how a service loads it (serving.service.model_threads)
    opened: list[runner.OnnxRunner] = []

    class Recorded(runner.OnnxRunner):
        def __init__(self, *args, **kwargs) -> None:  # type: ignore[no-untyped-def]
            super().__init__(*args, **kwargs)
            opened.append(self)

    monkeypatch.setattr(timing, "OnnxRunner", Recorded)
    timed = timing.open_target(path, path.parent, "cpu", None)  # a budget's session, threads unset
    assert not _spins(checks.session)
    assert _spins(served.session)
    assert len(opened) == 1 and _spins(opened[0].session)
    timed.release()


def test_sleeping_threads_give_the_same_outputs(tmp_path: Path) -> None:
    path = _model(tmp_path)
    feeds = {"input": np.arange(12, dtype=np.float32).reshape(3, 4)}
    a = runner.load(path, path.parent).infer(feeds)
    b = runner.OnnxRunner(path, path.parent).infer(feeds)
    assert a.keys() == b.keys() and all(np.array_equal(a[k], b[k]) for k in a)
