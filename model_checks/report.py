"""`reports/summary.md`: one row per artifact, built from the figures each check attaches to its test
report, so it also works when the checks ran in pytest-xdist workers."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from model_checks.session import PROPERTY

COLUMNS = ("manifest", "integrity", "metadata", "limits", "equivalence", "accuracy")
MARK = {"passed": "pass", "failed": "FAIL", "skipped": "skip"}


def atomic_write(path: Path, text: str) -> None:
    """Write to a temporary file beside `path`, then rename: an interrupted run leaves the old file whole. The file
    gets the permissions a plain open() would give (mkstemp's are owner-only, which CI artifact uploads trip on)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        umask = os.umask(0)
        os.umask(umask)
        os.fchmod(fd, 0o666 & ~umask)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def _fmt(v: object, spec: str = ".3g") -> str:
    if v is None or v == "":
        return "-"
    if isinstance(v, float):
        return format(v, spec)
    return str(v)


def _served(f: dict, status: str | None) -> str:
    """test_serving's cell: its status, with the achieved rate and p99 when it measured them."""
    if f.get("serving_p99_ms") is None:
        return status or "-"
    return f"{status} ({f['serving_achieved_rate']:.1f}, {f['serving_p99_ms']:.2f})"


@dataclass(eq=False)  # a plugin object must stay hashable: pluggy keeps plugins in sets
class SummaryReport:
    path: Path
    rows: dict[str, dict] = field(default_factory=dict)

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        props = [json.loads(v) for k, v in report.user_properties if k == PROPERTY]
        if not props:
            return
        p = props[-1]
        row = self.rows.setdefault(p["artifact"], {"format": p.get("format"), "figures": {}, "status": {}})
        if report.when == "call" or report.outcome != "passed":
            status = MARK.get(report.outcome, report.outcome)
            if report.when != "call" and report.outcome == "failed":
                status = "ERROR"
            row["status"][p["check"]] = status
        row["figures"].update({k: v for k, v in (p.get("figures") or {}).items() if v is not None})

    def render(self) -> str:
        head = ["artifact", "format", "precision", "opset", "size (MB)", "worst rel_l2", "worst MAE", "accuracy drop", "serving (req/s, p99 ms)", *COLUMNS]
        lines = ["# model-checks summary", "", f"{len(self.rows)} artifact(s).", "", "| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
        for aid in sorted(self.rows):
            r = self.rows[aid]
            f = r["figures"]
            cells = [f"`{aid}`", _fmt(r["format"]), _fmt(f.get("precision")), _fmt(f.get("opset")), _fmt(f.get("size_mb"), ".3f"),
                     _fmt(f.get("rel_l2")), _fmt(f.get("mae")), _fmt(f.get("accuracy_drop"), "+.4f"),
                     _served(f, r["status"].get("serving"))]
            cells += [r["status"].get(c, "-") for c in COLUMNS]
            lines.append("| " + " | ".join(cells) + " |")
        failed = sum(1 for r in self.rows.values() if any(s in ("FAIL", "ERROR") for s in r["status"].values()))
        lines += ["", f"{failed} artifact(s) with a failing check." if failed else "Every collected check passed or did not apply."]
        return "\n".join(lines) + "\n"

    @pytest.hookimpl(trylast=True)
    def pytest_sessionfinish(self, session: pytest.Session) -> None:
        atomic_write(self.path, self.render())

    def pytest_terminal_summary(self, terminalreporter) -> None:  # type: ignore[no-untyped-def]
        terminalreporter.write_line(f"model-checks: summary written to {self.path}")
