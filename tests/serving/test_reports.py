"""test_serving's figures reach summary.md and the nightly report through the user_properties figures."""

from model_checks.nightly.document import ArtifactFigures, section
from model_checks.plugin.summary import SummaryReport
from model_checks.core.session import PROPERTY

FIGURES = {"serving_achieved_rate": 49.81, "serving_target_rate": 50.0, "serving_p50_ms": 2.1, "serving_p99_ms": 7.254, "serving_peak_per_s": 612.3}


class Report:
    when, outcome = "call", "passed"
    # one property per fact and figure, as core.session.record attaches them
    user_properties = [(f"{PROPERTY}.{k}", v) for k, v in {"artifact": "m@1", "check": "serving", "format": "onnx", **FIGURES}.items()]


def test_summary_shows_the_served_rate_and_p99_and_the_serving_status(tmp_path):
    s = SummaryReport(tmp_path / "summary.md")
    s.pytest_runtest_logreport(Report())
    text = s.render()
    assert "| serving (req/s, p99 ms) |" in text.splitlines()[4] and "| pass (49.8, 7.25) |" in text


def test_nightly_section_has_a_serving_line():
    a = ArtifactFigures()
    a.add("serving", "passed", FIGURES)
    assert "served over HTTP: 49.8 of 50 req/s, p50 2.10 / p99 7.25 ms, peak 612.3 req/s" in section("m@1", a, []).lines
