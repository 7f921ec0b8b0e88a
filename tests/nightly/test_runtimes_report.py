"""The reports with runtimes: summary.md has one cell per runtime, the nightly report a runtime matrix and the
last canary's verdict line."""

import json
import re

import pytest

from fixtures import artifacts as A

pytest.importorskip("openvino")


def test_summary_and_nightly_show_each_runtime_and_the_last_canary(pytester):
    A.pair(pytester.path / "arts", runtimes=["onnxruntime", "openvino"])
    reports = pytester.path / "reports"
    reports.mkdir()
    (reports / "canary.json").write_text(
        json.dumps({"verdict": "onnxruntime 1.31.1 -> 1.32.0: safe to bump: 2 of 2", "safe": True})
    )
    r = pytester.runpytest_subprocess(
        "--model-checks",
        "arts",
        "-p",
        "no:cacheprovider",
        "-k",
        "equivalence",
        "--model-checks-summary",
        "reports/summary.md",
        "--model-checks-nightly-report",
        "reports",
    )
    assert r.ret == 0, r.stdout.str()
    summary = (reports / "summary.md").read_text()
    head = next(line for line in summary.splitlines() if line.startswith("| artifact"))
    assert head.endswith("| equivalence |")  # a column for each check that ran (issue 21), its runtimes in its cell
    row = next(line for line in summary.splitlines() if line.startswith("| `variant@1.0`"))
    cells = [c.strip() for c in row.strip("|").split("|")]
    # onnxruntime's item, then openvino's with its worst rel_l2 against the reference
    assert re.fullmatch(r"pass; openvino pass \([0-9.e+-]+\)", cells[-1]), cells[-1]
    nightly = (reports / "nightly.md").read_text()
    # md_text: no raw markup in the nightly report
    assert "Runtime canary (last run): onnxruntime 1.31.1 -&gt; 1.32.0: safe to bump: 2 of 2" in nightly
    assert "## Runtime matrix" in nightly
    assert r"| artifact | onnxruntime (rel\_l2) | openvino (rel\_l2; vs onnxruntime) |" in nightly  # md_text
    line = next(x for x in nightly.splitlines() if x.startswith("| `variant@1.0` | pass ("))
    assert line.count("| pass (") == 2 and "; vs onnxruntime max abs " in line
