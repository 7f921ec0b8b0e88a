"""pytest-xdist runs of the gate: artifact groups on one worker, each model loaded once, reports equal to a
serial run's, one GPU per worker (end to end with pytester, artifacts built in the test)."""

import re

import pytest

from fixtures import artifacts as A
from fixtures.gate_run import junit_verdicts
from model_checks.plugin.parallel import worker_gpu

ISO = ("--model-checks-isolate", "off", "-p", "no:cacheprovider")


@pytest.fixture
def tree(pytester):
    return A.family_tree(pytester.path / "arts")


def test_under_xdist_each_model_loads_once_and_reports_equal_a_serial_run(pytester, tree):
    serial = pytester.runpytest_subprocess(
        "--model-checks", "arts", *ISO, "--junitxml", "serial.xml", "--model-checks-summary", "serial.md"
    )
    par = pytester.runpytest_subprocess(
        "--model-checks", "arts", *ISO, "-n", "2", "--junitxml", "par.xml", "--model-checks-summary", "par.md"
    )
    serial.assert_outcomes(passed=20, skipped=16)
    par.assert_outcomes(passed=20, skipped=16)
    serial.stdout.fnmatch_lines(["model-checks: 6 model(s) loaded 6 time(s) (each once)"])
    par.stdout.fnmatch_lines(["model-checks: 6 model(s) loaded 6 time(s) on 2 worker(s) (each once)"])
    assert junit_verdicts(pytester.path / "par.xml", True) == junit_verdicts(pytester.path / "serial.xml", True)
    assert (pytester.path / "par.md").read_text() == (pytester.path / "serial.md").read_text()


def test_a_reference_and_its_variants_run_on_one_worker(pytester, tree):
    r = pytester.runpytest_subprocess("--model-checks", "arts", *ISO, "-n", "3", "-v")
    worker = {}
    for m in re.finditer(r"\[(gw\d)\] \[\s*\d+%\] (?:PASSED|SKIPPED) arts/(\w+)/metadata\.yaml", r.stdout.str()):
        worker.setdefault(m[2], set()).add(m[1])
    assert all(len(w) == 1 for w in worker.values()), worker
    assert worker["ref"] == worker["v1"] == worker["v2"]


def test_plain_xdist_scheduling_stays_available(pytester, tree):
    r = pytester.runpytest_subprocess("--model-checks", "arts", *ISO, "-n", "2", "--model-checks-dist", "load")
    r.assert_outcomes(passed=20, skipped=16)
    r.stdout.fnmatch_lines(["model-checks: 6 model(s) loaded * time(s) on 2 worker(s) (*)"])


def test_each_worker_sees_one_gpu_of_the_outer_mask(pytester, tree, monkeypatch):
    pytester.makepyfile(
        test_env="""
        import os

        def test_env(model_checks_artifact):
            with open(f"env-{os.environ['PYTEST_XDIST_WORKER']}.txt", "w") as f:
                f.write(os.environ.get("CUDA_VISIBLE_DEVICES", "unset"))
        """
    )
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "3,GPU-5f1e")
    r = pytester.runpytest_subprocess("--model-checks", "arts", *ISO, "-n", "2", "test_env.py", "-k", "test_env")
    r.assert_outcomes(passed=6)
    assert {p.name: p.read_text() for p in pytester.path.glob("env-*.txt")} == {
        "env-gw0.txt": "3",
        "env-gw1.txt": "GPU-5f1e",
    }


@pytest.mark.parametrize(
    "worker, outer, count, expected",
    [
        ("gw0", None, 0, None),
        ("gw1", None, 2, "1"),
        ("gw3", None, 2, "1"),
        ("gw2", "4,6", 0, "4"),
        ("gw1", "", 8, ""),
        ("master", "1", 0, None),
    ],
)
def test_worker_gpu_follows_the_outer_mask(worker, outer, count, expected):
    assert worker_gpu(worker, outer, count) == expected
