"""The latency a manifest records: a TensorFlow model's p50 is the median of several fresh processes."""

from __future__ import annotations

from pathlib import Path

import pytest

from model_checks.manifest.model import TensorSpec
from model_checks.producers import figures
from model_checks.producers.figures import TF_PROCESSES, Timing, median_timing, target_timing

SPECS = [TensorSpec.parse({"name": "x", "dtype": "float32", "shape": [1, 4]})]


def timing(p50: float, calibration: float) -> Timing:
    return Timing(p50, p50 * 2, 1, 200, calibration)


def test_the_median_process_is_recorded_with_its_own_calibration():
    got = median_timing([timing(0.30, 16.5), timing(0.18, 14.0), timing(0.25, 15.0)])
    assert (got.p50_ms, got.p90_ms, got.calibration_us, got.processes) == (0.25, 0.50, 15.0, 3)
    assert str(got) == "p50 0.250 ms, p90 0.500 ms at batch 1 (4000/s, 200 runs, the median of 3 processes)"
    assert str(timing(0.25, 15.0)) == "p50 0.250 ms, p90 0.500 ms at batch 1 (4000/s, 200 runs)"


def test_a_tensorflow_model_is_timed_in_fresh_processes_and_its_median_recorded(monkeypatch):
    drawn = iter([timing(0.40, 14.0), timing(0.17, 14.1), timing(0.30, 14.2)])
    calls = []

    def fresh(*args):
        calls.append(args)
        return next(drawn)

    monkeypatch.setattr(figures, "_in_fresh_process", fresh)
    got = target_timing(Path("m.keras"), "keras", Path("."), SPECS, threads=1, runs=7)
    assert len(calls) == TF_PROCESSES == 3
    assert all(c[4:7] == (1, 1, 7) for c in calls)  # batch, threads, runs: each process times the same thing
    assert (got.p50_ms, got.calibration_us, got.processes) == (0.30, 14.2, 3)  # not the fast draw (0.17)


@pytest.mark.parametrize("fmt", ["onnx", "keras"])
def test_other_models_and_a_process_of_the_draw_time_in_process(monkeypatch, fmt):
    monkeypatch.setattr(figures, "_in_fresh_process", lambda *a: pytest.fail("spawned a process"))
    monkeypatch.setattr("model_checks.backends.open_target", lambda *a, **k: pytest.fail("opened"))
    monkeypatch.setattr("model_checks.backends.load_runtime", lambda fmt: None)
    with pytest.raises(pytest.fail.Exception, match="opened"):  # reached the in-process timing
        target_timing(Path("m"), fmt, Path("."), SPECS, threads=1, fresh=fmt == "onnx")
