"""The nightly report from stored runs written in pytest-benchmark's format: tables, plots, step summary."""

import json
import subprocess
import sys

import pytest

from model_checks.nightly import document, render
from model_checks.nightly.document import ArtifactFigures
from model_checks.nightly.history import load_runs, storage_dir


def stored_run(directory, i, p50, thr):
    info = {
        "artifact": "tiny@1.0",
        "check": "latency",
        "device": "cpu",
        "latency_ms": {"p50": p50, "p90": p50 * 1.2, "p99": p50 * 2, "n": 662},
    }
    tinfo = {
        "artifact": "tiny@1.0",
        "check": "throughput",
        "device": "cpu",
        "latency_ms": {"p50": p50},
        "throughput_per_s": thr,
    }
    data = {
        "datetime": f"2026-11-{10 + i:02d}T02:00:00+00:00",
        "machine_info": {"model_checks": {"cpu": "X", "cores": 2}},
        "benchmarks": [
            {"name": "test_latency[tiny@1.0-cpu]", "extra_info": {"model_checks": info}},
            {"name": "test_throughput[tiny@1.0-cpu]", "extra_info": {"model_checks": tinfo}},
            {"name": "test_other", "extra_info": {}},
        ],
    }
    p = directory / "Linux-CPython-3.11-64bit" / f"{i:04d}_nightly.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data))


@pytest.fixture
def runs(tmp_path):
    store = tmp_path / ".benchmarks"
    for i, (p50, thr) in enumerate([(1.0, 900.0), (1.1, 850.0), (0.9, 1000.0), (1.4, 700.0)]):
        stored_run(store, i, p50, thr)
    (store / "Linux-CPython-3.11-64bit" / "garbage.json").write_text("not json")
    return load_runs(store)


def current():
    a = ArtifactFigures()
    a.add("limits", "pass", {"size_mb": 1.5})
    a.add("accuracy", "pass", {"accuracy": 0.97, "accuracy_drop": 0.004})
    a.add(
        "latency",
        "FAIL",
        {
            "device": "cpu",
            "p50_ms": 1.4,
            "p90_ms": 1.7,
            "p95_ms": 2.0,
            "p99_ms": 2.8,
            "mean_ms": 1.5,
            "throughput_per_s": 714.0,
            "batch_size": 1,
            "baseline_verdict": "regression",
            "baseline_change": 0.31,
        },
    )
    a.add("latency", "skip", {"device": "gpu"})
    return {"tiny@1.0": a}


def test_stored_runs_are_read_oldest_first_and_junk_ignored(runs):
    assert [r.when[:10] for r in runs] == ["2026-11-10", "2026-11-11", "2026-11-12", "2026-11-13"]
    assert (
        runs[0].figures[("tiny@1.0", "latency", "cpu")]["latency_ms"]["p50"] == 1.0
        and runs[0].fingerprint["cpu"] == "X"
    )
    assert storage_dir("file://./.benchmarks").as_posix() == ".benchmarks"


def test_trends_never_mix_machines(tmp_path, runs):
    store = tmp_path / ".benchmarks"
    assert len(load_runs(store, {"cpu": "X", "cores": 2})) == 4
    assert load_runs(store, {"cpu": "Y", "cores": 2}) == []
    with pytest.raises(ValueError):
        storage_dir("elasticsearch+https://host/index")


def test_report_has_every_figure_and_the_verdict(runs):
    rep = document.build(
        current(), runs, {"cpu": "X", "cores": 2, "versions": {"onnxruntime": "1.31"}}, "2026-11-14T02:00:00+00:00"
    )
    md = render.markdown(rep)
    assert "size 1.5 MB; accuracy drop +0.0040 (accuracy 0.9700)" in md
    assert (
        "| latency | cpu | 1.4 ms | 1.7 ms | 2 ms | 2.8 ms | 1.5 ms | 714.0 | 1 |" in md
        and "| FAIL | regression (+31.0%) |" in md
    )
    assert "| latency | gpu |" in md and "| skip |" in md
    assert rep.lines[0] == "1 check(s) failed. 1 regression(s) against baseline." and "4 stored run(s)" in md
    assert len(rep.sections[0].trend) == 8  # 4 runs x (latency, throughput)


def test_written_with_plots_embedded_and_appended_to_the_step_summary(runs, tmp_path):
    rep = document.build(current(), runs, {"cpu": "X", "cores": 2}, "2026-11-14T02:00:00+00:00")
    summary = tmp_path / "summary.md"
    summary.write_text("earlier step\n")
    written = render.write(rep, tmp_path / "reports", str(summary))
    png = tmp_path / "reports" / "nightly-plots" / "tiny_1.0.png"
    assert png in written and png.read_bytes()[:4] == b"\x89PNG" and png.stat().st_size > 5000
    html = (tmp_path / "reports" / "nightly.html").read_text()
    assert html.count("data:image/png;base64,") == 1 and '<tr class="regression">' in html
    text = summary.read_text()
    assert text.startswith("earlier step\n") and "## `tiny@1.0`" in text and "nightly-plots" not in text


def test_this_run_is_the_last_point_when_it_was_not_saved():
    run = document.as_stored_run(current(), "2026-11-14T02:00:00+00:00")
    assert run.figures[("tiny@1.0", "latency", "cpu")]["latency_ms"]["p50"] == 1.4


def test_matplotlib_and_frameworks_are_not_imported_until_a_report_is_drawn():
    code = (
        "import sys, model_checks.plugin, model_checks.checks.budgets.check, model_checks.nightly.render, model_checks.plugin.nightly; "
        "print(sorted(m for m in ('matplotlib', 'torch', 'tensorflow') if m in sys.modules))"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"


def test_the_report_plugin_is_hashable():
    """pluggy keeps plugins in sets (subset_hook_caller, with conftest files around): an unhashable plugin is an INTERNALERROR."""
    from pathlib import Path

    from model_checks.plugin.nightly import NightlyReport

    assert len({NightlyReport(Path("r"), None), NightlyReport(Path("r"), None)}) == 2  # type: ignore[arg-type]


def test_the_verdict_says_when_budgets_have_no_baseline_and_the_overview_puts_failures_first():
    a = ArtifactFigures()
    a.add("manifest", "pass", {})
    a.add("latency", "pass", {"device": "cpu", "p50_ms": 0.01, "limit_p50_ms": 0.5})
    a.add("throughput", "pass", {"device": "cpu", "throughput_per_s": 10.0})
    b = ArtifactFigures()
    b.add("equivalence", "FAIL", {})
    rep = document.build({"a@1": a, "b@1": b}, [], {"cpu": "X", "cores": 2}, "2026-11-14T02:00:00+00:00")
    assert rep.lines[0] == (
        "1 check(s) failed. 2 budget(s) have no baseline yet; run with --model-checks-update-baselines to create one."
    )
    assert rep.overview.rows[0] == ("b@1", "equivalence", "FAIL")
    md = render.markdown(rep)
    assert md.index("## Overview") < md.index("## `a@1`") and "| latency | cpu | 10 µs |" in md
    assert rep.sections[0].trend == ()  # no stored run: no plot of one dot


def test_one_stored_run_draws_no_plot_two_do(tmp_path):
    store = tmp_path / ".benchmarks"
    stored_run(store, 0, 1.0, 900.0)
    assert document.build(current(), load_runs(store), {}, "now").sections[0].trend == ()
    stored_run(store, 1, 1.1, 850.0)
    assert len(document.build(current(), load_runs(store), {}, "now").sections[0].trend) == 4


def test_without_matplotlib_the_report_is_written_without_plots_and_says_how_to_get_them(runs, tmp_path, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    rep = document.build(current(), runs, {"cpu": "X", "cores": 2}, "2026-11-14T02:00:00+00:00")
    written = render.write(rep, tmp_path / "reports")
    md = (tmp_path / "reports" / "nightly.md").read_text()
    assert "Plots need matplotlib: pip install 'model-checks\\[report\\]'." in md and "![" not in md  # markdown-escaped
    assert not (tmp_path / "reports" / "nightly-plots").exists() and len(written) == 2
