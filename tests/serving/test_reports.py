"""test_serving's figures reach summary.md and the nightly report through the user_properties figures."""

import json

from model_checks.nightly.document import ArtifactFigures, section
from model_checks.plugin.summary import SummaryReport
from model_checks.plugin.verdict import PROPERTY

FIGURES = {
    "serving_achieved_rate": 49.81,
    "serving_target_rate": 50.0,
    "serving_p50_ms": 2.1,
    "serving_p99_ms": 7.254,
    "serving_peak_per_s": 612.3,
}


class Report:
    when, outcome, nodeid = "call", "passed", "arts/m/metadata.yaml::test_serving[m@1]"
    # one property per fact and figure, as plugin.verdict.record attaches them
    user_properties = [
        (f"{PROPERTY}.{k}", v) for k, v in {"artifact": "m@1", "check": "serving", "format": "onnx", **FIGURES}.items()
    ]


def test_summary_shows_the_served_rate_and_p99_and_the_serving_status(tmp_path):
    s = SummaryReport(tmp_path / "summary.md")
    s.pytest_runtest_logreport(Report())
    text = s.render()
    head = next(line for line in text.splitlines() if line.startswith("| artifact"))
    assert "| serving (req/s, p99 ms) |" in head and "| pass (49.8, 7.25) |" in text


def test_nightly_section_has_a_serving_line():
    a = ArtifactFigures()
    a.add("serving", "passed", FIGURES)
    assert "served over HTTP: 49.8 of 50 req/s, p50 2.10 / p99 7.25 ms, peak 612.3 req/s" in section("m@1", a, []).lines


# -- point 6: served p99 and achieved rate over stored runs ------------------------------------------------------------

STORED = {"latency_ms": {"p50": 2.1, "p99": 7.254}, "achieved_rate_per_s": 49.81, "target_rate_per_s": 50.0}


def test_a_saved_benchmark_run_carries_this_runs_served_figures():
    from model_checks.plugin.benchmark import BenchmarkHooks

    hooks = BenchmarkHooks()
    skipped = type(
        "Skipped",
        (),
        {
            "when": "call",
            "outcome": "skipped",
            "user_properties": [(f"{PROPERTY}.artifact", "n@1"), (f"{PROPERTY}.check", "serving")],
        },
    )
    setup = type("Setup", (Report,), {"when": "setup"})  # the same properties, before the test measured anything
    hooks.pytest_runtest_logreport(setup())
    assert hooks.served == {}
    for report in (Report(), skipped()):
        hooks.pytest_runtest_logreport(report)
    saved: dict = {}
    hooks.pytest_benchmark_update_json(None, [], saved)
    assert saved == {"model_checks_serving": {"m@1": STORED}}  # n@1 measured nothing: no point for it


def stored_run(directory, day, p99, rate):
    data = {
        "datetime": f"2026-11-{day:02d}T02:00:00+00:00",
        "machine_info": {"model_checks": {"cpu": "X", "cores": 2}},
        "benchmarks": [{"name": "test_other", "extra_info": {}}],
        "model_checks_serving": {
            "m@1": {"latency_ms": {"p50": 2.0, "p99": p99}, "achieved_rate_per_s": rate, "target_rate_per_s": 50.0}
        },
    }
    p = directory / "Linux-CPython-3.11-64bit" / f"{day:04d}_nightly.json"
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(json.dumps(data))


def served(outcome):
    a = ArtifactFigures()
    a.add("serving", outcome, {**FIGURES, "serving_limit_rate": 49.5, "serving_limit_p99_ms": 20.0})
    return {"m@1": a}


def test_served_p99_and_achieved_rate_are_plotted_over_stored_runs_with_this_runs_limits(tmp_path):
    from model_checks.nightly import document, render
    from model_checks.nightly.history import load_runs
    from model_checks.nightly.plots import panels

    store = tmp_path / ".benchmarks"
    stored_run(store, 10, 6.5, 49.9)
    stored_run(store, 11, 7.0, 49.7)
    runs = load_runs(store, {"cpu": "X", "cores": 2})
    assert runs[0].figures[("m@1", "serving", "http")]["achieved_rate_per_s"] == 49.9
    runs.append(document.as_stored_run(served("pass"), "2026-11-12T02:00:00+00:00"))  # this run, not saved
    rep = document.build(served("pass"), runs, {"cpu": "X", "cores": 2}, "2026-11-12T02:00:00+00:00")
    s = rep.sections[0]
    assert [(p.when[:10], p.values["p99"], p.values["achieved_rate_per_s"]) for p in s.trend] == [
        ("2026-11-10", 6.5, 49.9),
        ("2026-11-11", 7.0, 49.7),
        ("2026-11-12", 7.254, 49.81),
    ]
    assert (
        s.limits[("serving", "http")] == {"limit_p99_ms": 20.0, "limit_achieved_rate_per_s": 49.5} and s.flagged == ()
    )
    assert [title for title, *_ in panels(s.trend)] == ["served latency", "served rate"]
    written = render.write(rep, tmp_path / "reports")
    png = tmp_path / "reports" / "nightly-plots" / "m_1.png"
    assert png in written and png.read_bytes()[:4] == b"\x89PNG"
    assert "![m@1 over stored runs](nightly-plots/m_1.png)" in (tmp_path / "reports" / "nightly.md").read_text()


def test_a_failed_serving_run_is_marked_on_its_trend():
    from model_checks.nightly import document

    now = "2026-11-12T02:00:00+00:00"
    runs = [
        document.as_stored_run(served("pass"), "2026-11-11T02:00:00+00:00"),
        document.as_stored_run(served("FAIL"), now),
    ]
    assert document.build(served("FAIL"), runs, {}, now).sections[0].flagged == (("serving", "http"),)
