"""The spare worker's process starts when the plugin is loaded, for a run that asks for the gate, and for no other
(plugin/early.py): before pytest_configure, before the gate's process imports numpy, and once; a run that checks
nothing starts none; one that stops before configure leaves no process and no sandbox behind."""

from __future__ import annotations

import tempfile
import textwrap
from pathlib import Path

import pytest

from fixtures import artifacts as A
from fixtures import probes
from model_checks.backends import BACKENDS
from model_checks.isolation.limits import Limits
from model_checks.isolation.workers import Workers, launch_spare
from model_checks.plugin.early import gate_asked

# Loaded with -p (before the entry points, so before the gate's plugin): sees every worker process start.
SEEN = """
    import atexit, sys
    EVENTS = []
    def hook(event, args):
        if event == "subprocess.Popen" and any("model_checks.isolation.worker" in str(a) for a in args[1]):
            EVENTS.append("worker" + ("+numpy" if "numpy" in sys.modules else ""))
    sys.addaudithook(hook)
    def pytest_configure(config):
        EVENTS.append("configure")
    atexit.register(lambda: print("EVENTS", EVENTS))
"""


@pytest.fixture
def seen(pytester: pytest.Pytester) -> pytest.Pytester:
    pytester.makepyfile(seen_hook=textwrap.dedent(SEEN))
    pytester.syspathinsert()
    A.pair(pytester.path / "arts" / "p")
    pytester.makepyfile(test_plain="def test_one():\n    pass\n")
    return pytester


def test_a_gate_run_starts_its_one_worker_before_configure_and_before_numpy(seen: pytest.Pytester) -> None:
    r = seen.runpytest_subprocess("-p", "seen_hook", "--model-checks", "arts", "-p", "no:cacheprovider", "-q")
    assert r.ret == 0, r.stdout.str()
    if "EVENTS ['worker+numpy'" in r.stdout.str():
        pytest.skip("a plugin of this environment imports numpy before the gate's plugin is loaded")
    r.stdout.fnmatch_lines(["EVENTS ['worker', 'configure']"])  # the spare, taken by the session: no second one


@pytest.mark.parametrize(
    "args",
    [
        ["--version"],
        ["--help"],
        ["--collect-only", "--model-checks", "arts"],
        ["--co", "--model-checks", "arts"],
        ["--markers", "--model-checks", "arts"],
        ["--model-checks", "arts", "--model-checks-isolate", "off"],
        ["test_plain.py"],
    ],
    ids=["version", "help", "collect-only", "co", "markers", "isolate-off", "no-gate"],
)
def test_a_run_that_checks_nothing_here_starts_no_worker(seen: pytest.Pytester, args: list[str]) -> None:
    r = seen.runpytest_subprocess("-p", "seen_hook", "-p", "no:cacheprovider", *args)
    assert r.ret in (0, 5), r.stdout.str()
    assert not [line for line in r.stdout.lines if line.startswith("EVENTS") and "worker" in line], r.stdout.str()
    if args != ["--version"]:  # (which pytest answers before the plugins' hooks run)
        assert any(line.startswith("EVENTS") for line in r.stdout.lines), r.stdout.str()


def test_a_run_refused_before_configure_ends_the_process_and_removes_its_sandbox(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    A.pair(pytester.path / "arts" / "p")
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(tmp))  # where the sandbox would be
    r = pytester.runpytest_inprocess(
        "--model-checks", "arts", "--model-checks-timeout", "soon", "-p", "no:cacheprovider"
    )
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    assert list(tmp.iterdir()) == []


@pytest.mark.parametrize(
    ("args", "asked"),
    [
        (["--model-checks", "arts"], True),
        (["arts", "--model-checks=arts", "-q"], True),
        (["-x", "tests"], False),
        (["--model-checks", "arts", "-n", "2"], False),
        (["--model-checks", "arts", "-n2"], False),
        (["--model-checks", "arts", "--numprocesses=auto"], False),
        (["--model-checks", "arts", "--dist", "load"], False),
        (["--model-checks", "arts", "--model-checks-isolate=off"], False),
        (["--model-checks", "arts", "--model-checks-isolate", "process"], True),
        (["-h", "--model-checks", "arts"], False),
        (["--model-checks", "arts", "--fixtures"], False),
    ],
)
def test_the_guess_from_the_command_line(args: list[str], asked: bool) -> None:
    assert gate_asked(args) is asked


def test_a_launched_worker_gets_the_backends_table_as_of_configure(monkeypatch: pytest.MonkeyPatch) -> None:
    """A conftest.py may add a framework after the process started (backends/registry): the setup the session sends
    it when it takes it has the table as of then."""
    launched = launch_spare()
    monkeypatch.setitem(BACKENDS, "toyfmt", BACKENDS["onnx"])
    workers = Workers(Limits(memory_mb=2048, timeout_s=60))
    try:
        workers.start_spare(launched)
        assert workers._sandbox is launched.sandbox
        assert "toyfmt" in workers.call("onnx", probes.formats)
        assert workers.worker("onnx") is launched  # the launched process serves: none other was started
    finally:
        workers.close()
    assert not launched.alive and launched.sandbox is not None and not launched.sandbox.dir.exists()


def test_a_wrong_guess_is_ended_at_configure(seen: pytest.Pytester, monkeypatch: pytest.MonkeyPatch) -> None:
    """`-qh` asks for help in a spelling the guess does not read: the process started is ended at configure, which
    knows, and its sandbox removed."""
    tmp = seen.path / "tmp"
    tmp.mkdir()
    monkeypatch.setenv("TMPDIR", str(tmp))
    r = seen.runpytest_subprocess("-p", "seen_hook", "-p", "no:cacheprovider", "--model-checks", "arts", "-qh")
    assert r.ret == 0, r.stdout.str()
    r.stdout.fnmatch_lines(["EVENTS ['worker', 'configure']"])  # started on the guess
    assert list(tmp.iterdir()) == []


def test_a_launch_that_fails_leaves_the_options_and_the_run_to_configure(
    pytester: pytest.Pytester, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The spare is launched before the plugin registers its options: a launch that fails (no sandbox on a full disk,
    no process under a limit) must not take the options with it. Configure starts the worker then, or says why."""
    from model_checks.isolation import workers

    def no_process() -> None:
        raise OSError(11, "Resource temporarily unavailable")

    monkeypatch.setattr(workers, "launch_spare", no_process)
    A.pair(pytester.path / "arts" / "p")
    r = pytester.runpytest_inprocess("--model-checks", "arts", "-p", "no:cacheprovider", "-q", "-k", "equivalence")
    assert r.ret == 0, r.stdout.str()
    r.assert_outcomes(passed=1, skipped=1)
