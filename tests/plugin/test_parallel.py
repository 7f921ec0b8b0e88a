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


def test_an_xdist_worker_loads_only_the_models_of_the_artifacts_it_runs(pytester, tree):
    """With isolation on, each xdist worker sends its model worker only the models of artifacts it runs: the artifact
    after this one in the collected order is often another xdist worker's, so none is looked ahead at there (a serial
    run looks ahead, tests/isolation/test_ahead.py). Recorded by a conftest in each process: the folders whose
    checker, facts or load were sent, and the folders of the tests it ran."""
    for s in ("s4", "s5", "s6", "s7"):
        A.onnx_artifact(tree / s, name=s)
    pytester.makeconftest(
        """
        import os
        from pathlib import Path

        from model_checks.isolation.workers import Worker

        def _log(kind, folder):
            with open(f"{kind}-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.txt", "a") as f:
                f.write(folder + "\\n")

        real_send = Worker.send

        def send(self, op, args, what, requests=1):
            if op in ("validate", "facts", "load"):
                _log("sent", Path(args[0]).parent.name)
            return real_send(self, op, args, what, requests)

        Worker.send = send

        def pytest_runtest_setup(item):
            _log("ran", item.nodeid.split("/")[1])
        """
    )
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider", "-n", "2")
    r.assert_outcomes(passed=32, skipped=28)
    for worker in ("gw0", "gw1"):
        ran = set((pytester.path / f"ran-{worker}.txt").read_text().split())
        sent = set((pytester.path / f"sent-{worker}.txt").read_text().split())
        assert ran and sent <= ran, f"{worker} sent the models of {sorted(sent - ran)} and ran only {sorted(ran)}"


def test_under_xdists_own_scheduling_a_worker_releases_an_artifacts_models_when_it_moves_on(pytester, tree):
    """With `--model-checks-dist load` an artifact's last item (where the plan releases its models) is often another
    worker's: each worker now releases them when its next item is another artifact's that does not use them, so it
    holds at most one artifact's models (its own and its reference's) when an item starts, not every model it met."""
    for s in ("s4", "s5", "s6", "s7"):
        A.onnx_artifact(tree / s, name=s)
    pytester.makeconftest(
        """
        import os

        from model_checks.plugin.state import SESSION_KEY

        def pytest_runtest_setup(item):
            held = item.config.stash[SESSION_KEY].pool.loaded()
            with open(f"held-{os.environ.get('PYTEST_XDIST_WORKER', 'main')}.txt", "a") as f:
                f.write(f"{item.nodeid} {' '.join(p.parent.name for p in held)}\\n")
        """
    )
    r = pytester.runpytest_subprocess("--model-checks", "arts", *ISO, "-n", "2", "--model-checks-dist", "load")
    r.assert_outcomes(passed=32, skipped=28)
    for worker in ("gw0", "gw1"):
        for line in (pytester.path / f"held-{worker}.txt").read_text().splitlines():
            test, *held = line.split()
            own = test.split("/")[1]
            uses = {own, "ref"} if own in ("ref", "v1", "v2") else {own}  # v1 and v2 run ref's model too
            assert set(held) <= uses, f"{worker} held {held} when {test} started"


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
