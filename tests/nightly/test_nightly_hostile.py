"""The nightly report's reader of stored runs and its writers on hostile input (issue 19): a `.benchmarks` folder
comes from pull requests too. Each bad run file is left out and named, the report is still written, fast, and
every text is escaped for where it lands."""

from __future__ import annotations

import json
import os
import re
import time
from pathlib import Path

import pytest

from model_checks.nightly import document, render
from model_checks.nightly.document import ArtifactFigures
from model_checks.nightly.history import load_runs

MACHINE = {"model_checks": {"cpu": "X", "cores": 2}}


def run_doc(i: int, p50: object = 1.0, when: str | None = None, device: str = "cpu", aid: str = "tiny@1.0") -> dict:
    info = {"artifact": aid, "check": "latency", "device": device, "latency_ms": {"p50": p50, "p99": 2.0}}
    return {
        "datetime": when or f"2026-11-{10 + i:02d}T02:00:00+00:00",
        "machine_info": MACHINE,
        "benchmarks": [{"name": f"test_latency[{aid}-cpu]", "extra_info": {"model_checks": info}}],
    }


def put(store: Path, name: str, doc: object) -> Path:
    p = store / "Linux" / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(doc))
    return p


@pytest.fixture
def store(tmp_path: Path) -> Path:
    s = tmp_path / ".benchmarks"
    put(s, "0001_good.json", run_doc(1))
    put(s, "0002_good.json", run_doc(2, p50=1.2))
    return s


def current(aid: str = "tiny@1.0", outcome: str = "pass") -> dict:
    a = ArtifactFigures()
    a.add("latency", outcome, {"device": "cpu", "p50_ms": 1.1, "p99_ms": 2.0})
    return {aid: a}


def test_links_fifos_and_malformed_runs_are_left_out_and_named(store: Path) -> None:
    (store / "Linux" / "0003_zero.json").symlink_to("/dev/zero")
    os.mkfifo(store / "Linux" / "0004_fifo.json")
    put(store, "0005_five.json", {"benchmarks": 5, "datetime": "2026-11-20T00:00:00"})
    put(store, "0006_year1.json", run_doc(6, when="0001-01-01T00:00:00"))
    put(store, "0007_year9999.json", run_doc(7, when="9999-12-31T23:59:59"))
    put(store, "0008_abc.json", run_doc(8, p50="abc"))
    skipped: list[str] = []
    start = time.monotonic()
    runs = load_runs(store, None, skipped)
    assert time.monotonic() - start < 5
    assert skipped == [
        "Linux/0003_zero.json: the stored run is a symbolic link; it is read only as a regular file",
        "Linux/0004_fifo.json: the stored run is a FIFO; only regular files are read",
        "Linux/0005_five.json: benchmarks is int, expected a list",
        "Linux/0006_year1.json: datetime 0001-01-01T00:00:00 is not between 2000 and 2200",
        "Linux/0007_year9999.json: datetime 9999-12-31T23:59:59 is not between 2000 and 2200",
    ]
    abc = next(r for r in runs if r.source == "0008_abc.json")  # a p50 of 'abc' drops that figure, not the run
    assert abc.figures[("tiny@1.0", "latency", "cpu")]["latency_ms"] == {"p99": 2.0}
    assert [r.source for r in runs] == ["0001_good.json", "0002_good.json", "0008_abc.json"]


def test_the_report_is_still_written_and_names_what_it_left_out(store: Path, tmp_path: Path, monkeypatch) -> None:
    from model_checks.nightly.write import write_nightly

    (store / "Linux" / "0003_zero.json").symlink_to("/dev/zero")
    put(store, "0004_abc.json", run_doc(4, p50="abc", when="2026-11-15T00:00:00"))  # naive and aware times together
    monkeypatch.setattr("model_checks.checks.budgets.fingerprint.fingerprint", lambda: dict(MACHINE["model_checks"]))
    written = write_nightly(current(), tmp_path / "out", str(store))
    md = (tmp_path / "out" / "nightly.md").read_text()
    assert "1 stored run file\\(s\\) left out: Linux/0003\\_zero.json: the stored run is a symbolic link" not in md
    assert (
        "1 stored run file(s) left out: Linux/0003\\_zero.json: the stored run is a symbolic link; it is read only as "
        "a regular file." in md
    )
    assert tmp_path / "out" / "nightly-plots" / "tiny_1.0.png" in written


def test_mathtext_in_an_id_or_a_device_draws_as_text(store: Path, tmp_path: Path) -> None:
    aid = r"m$\mathdefault{x}^{\frac{1}{0}}$@1.0"
    put(store, "0003_math.json", run_doc(3, aid=aid))
    put(store, "0004_math.json", run_doc(4, aid=aid))
    put(store, "0005_dev.json", run_doc(5, device=r"$\undefinedcommand$"))  # not a device: dropped on reading
    runs = load_runs(store)
    assert all(key[2] == "cpu" for r in runs for key in r.figures)
    rep = document.build(current(aid), runs, {"cpu": "X", "cores": 2}, "2026-11-14T02:00:00+00:00")
    written = render.write(rep, tmp_path / "out")
    assert any(p.suffix == ".png" for p in written)
    assert "could not be drawn" not in (tmp_path / "out" / "nightly.md").read_text()


def test_three_thousand_forged_devices_are_bounded_and_fast(store: Path, tmp_path: Path) -> None:
    bench = [
        {
            "name": f"b{i}",
            "extra_info": {
                "model_checks": {
                    "artifact": "tiny@1.0",
                    "check": "latency",
                    "device": f"d{i}",
                    "latency_ms": {"p50": 1.0},
                }
            },
        }
        for i in range(3000)
    ]
    for i in (3, 4):
        put(
            store,
            f"000{i}_forged.json",
            {"datetime": f"2026-11-1{i}T00:00:00+00:00", "machine_info": MACHINE, "benchmarks": bench},
        )
    start = time.monotonic()
    rep = document.build(current(), load_runs(store), {"cpu": "X", "cores": 2}, "2026-11-14T02:00:00+00:00")
    render.write(rep, tmp_path / "out")
    assert time.monotonic() - start < 15
    assert {p.device for p in rep.sections[0].trend} == {"cpu"}


HOSTILE = "evil | pass |\n| `forged@1` | latency | pass |\x1b[32m<script>alert(1)</script>[x](javascript:alert(1))@1"


def test_ids_cannot_forge_rows_run_scripts_or_link_in_nightly_md_and_the_step_summary(tmp_path: Path) -> None:
    rep = document.build(current(HOSTILE, "FAIL"), [], {"cpu": "X", "cores": 2}, "2026-11-14T02:00:00+00:00")
    step = tmp_path / "step.md"
    render.write(rep, tmp_path / "out", str(step))
    for text in ((tmp_path / "out" / "nightly.md").read_text(), step.read_text()):
        assert "\x1b" not in text and "\n| `forged" not in text
        # ids are code spans (inert: no HTML, no link inside one, and no backtick can close one early); outside them
        # nothing of the id is markup
        outside = re.sub(r"`[^`\n]*`", "", text)
        assert "<script>" not in outside and "](javascript:" not in outside and "[x]" not in outside
        overview = text.split("## Overview", 1)[1].split("\n## ", 1)[0]
        rows = [line for line in overview.splitlines() if line.startswith("| ") and "---" not in line][1:]
        assert len(rows) == 1 and rows[0].endswith("| latency\\[cpu\\] | FAIL |")  # one row, and it reads FAIL
        assert rows[0].replace("\\|", "").count("|") == 4  # three cells: no escaped pipe splits the row
    html = (tmp_path / "out" / "nightly.html").read_text()
    assert "<script>" not in html and "&lt;script&gt;" in html


def test_a_failing_check_prints_control_characters_as_escapes(pytester, capfd) -> None:
    """onnxruntime quotes a node's name in its error: the name reaches the terminal as escapes, never as an action."""
    import numpy as np
    from onnx import TensorProto, helper

    from fixtures import artifacts as A

    name = "evil\x1b[2J\rtest_x PASSED\nforged"
    shape = helper.make_tensor("shape", TensorProto.INT64, [1], np.array([3], np.int64))
    g = helper.make_graph(
        [helper.make_node("Reshape", ["input", "shape"], ["logits"], name=name)],
        "g",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [3])],
        [shape],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    A.pair(pytester.path / "arts", variant_model=m)  # equivalence runs the model, and onnxruntime fails naming the node
    r = pytester.runpytest("--model-checks", "arts", "-p", "no:cacheprovider", "-k", "equivalence")
    out = r.stdout.str()
    r.assert_outcomes(failed=1, skipped=1)
    assert "Name:'evil\\x1b[2J" in out  # shown, escaped (the message is cut at the carriage return)
    raw = capfd.readouterr()  # what the worker's runtime wrote to the terminal itself
    assert all("\x1b[2J" not in t and "\rtest_x" not in t for t in (out, raw.out, raw.err))


def test_runs_forging_thousands_of_artifacts_cost_one_pass(store: Path, tmp_path: Path) -> None:
    bench = [
        {
            "name": f"b{i}",
            "extra_info": {
                "model_checks": {
                    "artifact": f"a{i}@1.0",
                    "check": "latency",
                    "device": "cpu",
                    "latency_ms": {"p50": 1.0},
                }
            },
        }
        for i in range(3000)
    ]
    for i in range(3, 23):
        put(
            store,
            f"{i:04d}_forged.json",
            {"datetime": f"2026-11-{i:02d}T00:00:00+00:00", "machine_info": MACHINE, "benchmarks": bench},
        )
    current_many = {f"a{i}@1.0": next(iter(current().values())) for i in range(300)}
    start = time.monotonic()
    rep = document.build(current_many, load_runs(store), {"cpu": "X", "cores": 2}, "2026-11-24T02:00:00+00:00")
    assert time.monotonic() - start < 20  # 20 runs x 3,000 figures, 300 artifacts reported: one pass, not 300
    assert len(rep.sections) == 300 and len(rep.sections[0].trend) == 20
