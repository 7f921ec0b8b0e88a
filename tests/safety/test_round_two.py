"""Untrusted means untrusted, round two (issue 11): no code from the tree runs in a worker, a Keras config names
only Keras, no manifest or policy ends the session, no id forges a report, and every run is bounded."""

from __future__ import annotations

import json
import os
import re
import signal
import sys
import threading
import zipfile
from pathlib import Path

import pytest

from fixtures import bad_artifacts, crashing, probes
from fixtures.gate_run import run_gate
from model_checks.backends.keras.allowlist import config_problems, tf_op_problem
from model_checks.core.discovery import discover
from model_checks.core.errors import MeasurementDeadlineError
from model_checks.isolation.limits import Limits
from model_checks.isolation.workers import Workers

LIMITS = Limits(memory_mb=2048, timeout_s=60)
HOSTILE = "x\n| `forged@1.0` | onnx | pass | pass |\x1b[2J\x1b[32m\u202e\r\x00"[:-1]  # no NUL: no file system takes it


# -- point 2: workers see no code from the tree --------------------------------------------------
def test_a_worker_imports_nothing_from_the_tree_and_writes_nowhere_of_the_users(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
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
    private = [p for p in seen["sys_path"] if not p.startswith((sys.base_prefix, sys.prefix)) and "__editable__" not in p]
    assert private == [str(sandbox.imports)]  # beside the standard library and site-packages, only the links
    assert sorted(os.listdir(tree)) == ["helpers.py"]  # nothing written into the tree
    assert seen["cwd"] == str(sandbox.cwd) and seen["cwd_entries"] == []
    assert seen["home"] == str(sandbox.dir / "home") and seen["tmpdir"] == str(sandbox.dir / "tmp")
    assert seen["model_checks"] == str(Path(__file__).resolve().parents[2] / "model_checks" / "__init__.py")
    assert not sandbox.dir.exists()  # removed with the workers


# -- point 3: Keras configs against the allow-list -------------------------------------------------
def _layer(cls: str, module: str | None = "keras.layers", **config: object) -> dict:
    return {"module": module, "class_name": cls, "config": {"name": cls.lower(), **config}, "registered_name": None}


def _model(*layers: dict) -> dict:
    return {"module": "keras", "class_name": "Sequential", "config": {"name": "m", "layers": list(layers)}, "registered_name": None}


@pytest.mark.parametrize("layer, message", [
    (_layer("system", module="os"), "Sequential 'm' > system 'system': names the module 'os' (class 'system'), which is not a Keras layer module"),
    (_layer("Pwn", module="helpers"), "names the module 'helpers' (class 'Pwn')"),
    (_layer("Dense", activation={"module": "tensorflow.io", "class_name": "function", "config": "write_file", "registered_name": "write_file"}),
     "Dense 'dense' > function: names the module 'tensorflow.io' (class 'function')"),
    (_layer("TFOpLambda", module="tf_keras.src.layers.core.tf_op_layer", function="io.write_file"), "calls tf.io.write_file, an operation with side effects"),
    (_layer("TFOpLambda", module="tf_keras.src.layers.core.tf_op_layer", function="debugging.experimental.enable_dump_debug_info"), "calls tf.debugging"),
    (_layer("TFOpLambda", module="tf_keras.src.layers.core.tf_op_layer", function="raw_ops.WriteFile"), "calls tf.raw_ops.WriteFile"),
    (_layer("TFOpLambda", module="tf_keras.src.layers.core.tf_op_layer", function="load_library"), "calls tf.load_library"),
    (_layer("Lambda", function=["4wEAAAAA", None, None], function_type="lambda", **{"output_shape": None}) | {"config": {
        "name": "lambda", "function": ["4wEAAAAA", None, None], "function_type": "lambda", "module": "__main__"}}, "holds Python bytecode as its function"),
    (_layer("Lambda") | {"config": {"name": "lambda", "function": "write_file", "function_type": "function", "module": "tensorflow.io"}},
     "calls tensorflow.io.write_file as its function"),
    (_layer("Custom", module=None) | {"registered_name": "pkg>Custom"}, "is the custom object 'pkg>Custom'"),
    (_layer("exec", module="builtins"), "names the Python builtin 'exec'"),
    ({"class_name": "__lambda__", "config": {"code": "x"}}, "holds Python bytecode (a lambda)"),
])
def test_the_allow_list_refuses_by_name_and_place(layer: dict, message: str) -> None:
    problems = config_problems(_model(_layer("Dense"), layer))
    assert len(problems) == 1 and message in problems[0], problems


def test_the_allow_list_passes_what_keras_writes() -> None:
    ok = _model(_layer("InputLayer"), _layer("Dense", activation="relu", kernel_initializer={"module": "keras.initializers", "class_name": "GlorotUniform", "config": {}}),
                _layer("TFOpLambda", module="tf_keras.src.layers.core.tf_op_layer", function="nn.relu"),
                _layer("TFOpLambda", module="tf_keras.src.layers.core.tf_op_layer", function="__operators__.add"),
                _layer("Functional", module="tf_keras.src.engine.functional"),
                {"class_name": "__tuple__", "config": {"value": [1, 2]}})
    assert config_problems(ok) == []
    assert tf_op_problem("concat") is None and tf_op_problem("math.reduce_mean") is None and tf_op_problem("nn.embedding_lookup") is None
    for path in Path(__file__).resolve().parents[2].glob("artifacts/*/*.keras"):  # the examples
        assert config_problems(json.loads(zipfile.ZipFile(path).read("config.json"))) == [], path


def test_a_keras_config_naming_code_fails_integrity_before_keras_reads_it(pytester: pytest.Pytester) -> None:
    root, canary = pytester.path / "artifacts", pytester.path / "canary"
    d = root / "keras_pwn"
    d.mkdir(parents=True)
    (d / "helpers.py").write_text(f"open({str(canary)!r}, 'w').write('ran')\nclass Pwn:\n    pass\n")
    config = _model(_layer("Pwn", module="helpers"), _layer("TFOpLambda", module="tf_keras.src.layers.core.tf_op_layer", function="io.write_file"))
    with zipfile.ZipFile(d / "model.keras", "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", json.dumps({"keras_version": "2.19.0"}))
    bad_artifacts.manifest(d, file="model.keras")
    bad_artifacts.good_pair(root)
    run = run_gate(pytester, root)
    message = run.message("integrity", "keras_pwn@1.0")
    assert "refused: model.keras: config.json > Sequential 'm' > Pwn 'pwn': names the module 'helpers' (class 'Pwn')" in message
    assert "TFOpLambda 'tfoplambda': calls tf.io.write_file, an operation with side effects" in message
    assert "Traceback" not in message and run.ret == 1
    assert not canary.exists() and run.written_outside() == []
    assert run.outcomes("good@1.0")["accuracy"] == "passed"


# -- point 4: no manifest or policy ends the session ----------------------------------------------
@pytest.mark.parametrize("make, message", [
    (lambda p: p.symlink_to("nowhere.yaml"), "nowhere.yaml does not exist"),
    (lambda p: os.mkfifo(p), "policy.yaml is not a regular file"),
    (lambda p: p.write_text("tolerance:\n  <<: {rel_l2: 1}\n"), "merge keys (<<) are not allowed"),
    (lambda p: p.write_text("tolerance: " + "{a: " * 5000 + "1" + "}" * 5000 + "\n"), "nested more than 64 levels deep"),
])
def test_a_bad_policy_fails_each_artifact_and_discovery_runs_once(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, make, message) -> None:
    root = tmp_path / "artifacts"
    for name in ("a", "b"):
        bad_artifacts.model(root / name)
    make(root / "policy.yaml")
    from model_checks.core import session

    calls = []
    monkeypatch.setattr(session, "discover", lambda roots: calls.append(roots) or discover(roots))
    gs = session.GateSession(roots=[root])
    for _ in range(3):
        gs.by_dir(root / "a")
    assert len(calls) == 1
    assert [a.id for a in gs.artifacts] == ["invalid:a", "invalid:b"]
    assert all(message in (a.error or "") for a in gs.artifacts), [a.error for a in gs.artifacts]


# -- point 5: reports cannot be forged ------------------------------------------------------------
def test_the_most_hostile_names_are_escaped_in_log_summary_and_junit(pytester: pytest.Pytester, capsys: pytest.CaptureFixture) -> None:
    root = pytester.path / "artifacts"
    bad_artifacts.model(root / "dup", model_name="dup")
    bad_artifacts.model(root / HOSTILE, model_name="dup")  # the same id: ties are broken by the directory name
    bad_artifacts.manifest(root / f"{HOSTILE}bad", version="1.0\n| `evil@1.0` | onnx | pass |\x1b[32m")
    summary, junit = pytester.path / "summary.md", pytester.path / "junit.xml"
    capsys.readouterr()
    run = run_gate(pytester, root, f"--model-checks-summary={summary}", f"--junitxml={junit}")
    log = capsys.readouterr().out
    text = summary.read_text()
    for where, out in (("log", log), ("summary", text), ("junit", junit.read_text())):
        assert not any(c in out for c in "\x1b\r\u202e"), f"{where} holds a control character"
    rows = [line for line in text.splitlines() if line.startswith("|")]
    cells = [re.split(r"(?<!\\)\|", row) for row in rows]  # as a markdown table splits a row: on each unescaped |
    assert all(len(c) == len(cells[0]) for c in cells), rows  # no row split, none forged
    assert not any(line.startswith("| `forged") or line.startswith("| `evil") for line in text.splitlines())
    ids = sorted(a for (_, a) in run.reports)
    assert "dup@1.0:x\\n| `forged@1.0` | onnx | pass | pass |\\x1b[2J\\x1b[32m\\u202e\\r" in ids, ids
    assert "`dup@1.0:x\\n\\| \\u0060forged@1.0\\u0060 \\| onnx \\| pass \\| pass \\|\\x1b[2J\\x1b[32m\\u202e\\r`" in text
    bad = next(a for a in ids if a.startswith("invalid:"))
    assert "holds a control character, line break or invisible formatting mark" in run.message("manifest", bad)
    assert run.ret == 1 and run.written_outside() == []


# -- point 6: every run is bounded ----------------------------------------------------------------
class _Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


def test_a_measurement_far_slower_than_its_budget_stops_at_its_deadline() -> None:
    from model_checks.checks.budgets.measure import Deadline

    clock = _Clock()
    deadline = Deadline(300.0, 662, 4.0, "p99 4 ms", clock=clock)
    deadline.check("after warm-up", 0.5)  # 662 rounds of 0.5 ms fit
    with pytest.raises(MeasurementDeadlineError) as e:
        deadline.check("after warm-up", 500.0)
    assert str(e.value) == (
        "the measurement (warm-up and 662 rounds) cannot finish within its deadline of 31.5 s (5 s of warm-up + 662 rounds x 10 x "
        "p99 4 ms): stopped after warm-up, 0 round(s) done, 31.5 s left; a call takes 500 ms, so 662 more round(s) need about 331 s. "
        "The model is far slower than its budget: make it faster, or raise the budget (or --model-checks-timeout) if this speed is expected")
    before_round = deadline.bounded(None)
    before_round()
    clock.now = 40.0
    with pytest.raises(MeasurementDeadlineError, match=r"stopped before round 2, 1 round\(s\) done, 0 s left"):
        before_round()
    assert Deadline(2.0, 662, 4.0, "p99 4 ms").seconds == 2.0  # the timeout wins when it is shorter
    assert Deadline(300.0, 64, None, "").origin == "--model-checks-timeout (300 s)"


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


def test_an_interrupted_summary_says_so_and_lists_what_was_not_checked(pytester: pytest.Pytester) -> None:
    root = pytester.path / "artifacts"
    bad_artifacts.model(root / "first")
    bad_artifacts.model(root / "second")
    pytester.makeconftest("""
        import pytest
        def pytest_runtest_call(item):
            if "second" in item.nodeid:
                raise KeyboardInterrupt
    """)
    summary = pytester.path / "summary.md"
    run = run_gate(pytester, root, f"--model-checks-summary={summary}", interrupted=True)
    text = summary.read_text()
    assert run.ret == pytest.ExitCode.INTERRUPTED
    assert text.splitlines()[2].startswith("**INTERRUPTED: this run was stopped before it finished; ")
    assert "## Not checked (interrupted)" in text and "- `second@1.0`: " in text and "- `first@1.0`" not in text
    assert "Every collected check passed" not in text
