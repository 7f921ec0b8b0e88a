"""The spare worker (Workers.start_spare) starts at configure, before the gate's own process has imported numpy:
the pipe's frames name numpy lazily, so the worker's interpreter, numpy and runtime load beside the parent's
numpy instead of after it (issue 24, row d: the large model's load starts that much sooner). Pinned in a
subprocess, with an audit hook that sees the worker's process start. The roots come from the ini here: with
--model-checks on the command line the process starts earlier still, when the plugin loads (tests/plugin/test_early.py)."""

import textwrap

import pytest

from fixtures import artifacts as A


def test_the_spare_worker_starts_before_the_gate_imports_numpy(pytester):
    A.pair(pytester.path / "arts" / "p")
    pytester.makeconftest(
        textwrap.dedent("""
        import sys
        SEEN = ["numpy" in sys.modules]  # already there before the gate (another plugin's doing): nothing to pin
        def hook(event, args):
            if event == "subprocess.Popen" and any("model_checks.isolation.worker" in str(a) for a in args[1]):
                SEEN.append("numpy" in sys.modules)
        sys.addaudithook(hook)
        def pytest_sessionfinish(session):
            print("NUMPY_AT_WORKER_START", SEEN)
    """)
    )
    pytester.makeini("[pytest]\nmodel_checks_roots = arts\n")
    r = pytester.runpytest_subprocess("-p", "no:cacheprovider", "-s", "-q")
    assert r.ret == 0, r.stdout.str()
    if "NUMPY_AT_WORKER_START [True," in r.stdout.str():
        pytest.skip("a plugin of this environment imports numpy before the gate configures")
    r.stdout.fnmatch_lines(["*NUMPY_AT_WORKER_START [[]False, False[]]*"])
