"""Reports cannot be forged: the most hostile names are escaped in the log, summary.md and junit (issue 11)."""

from __future__ import annotations

import re

import pytest

from fixtures import bad_artifacts
from fixtures.gate_run import run_gate

HOSTILE = "x\n| `forged@1.0` | onnx | pass | pass |\x1b[2J\x1b[32m\u202e\r\x00"[:-1]  # no NUL: no file system takes it


def test_the_most_hostile_names_are_escaped_in_log_summary_and_junit(
    pytester: pytest.Pytester, capsys: pytest.CaptureFixture
) -> None:
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
    assert (
        "`dup@1.0:x\\n\\| \\u0060forged@1.0\\u0060 \\| onnx \\| pass \\| pass \\|\\x1b[2J\\x1b[32m\\u202e\\r`" in text
    )
    bad = next(a for a in ids if a.startswith("invalid:"))
    assert "holds a control character, line break or invisible formatting mark" in run.message("manifest", bad)
    assert run.ret == 1 and run.written_outside() == []
