"""The nightly report as values: one section per artifact with its figures from this run, its change against
baseline and the trend over stored runs. Rendering (markdown, HTML) and drawing are elsewhere."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from model_checks.nightly.history import SERVED_LATENCIES, SERVING, StoredRun, served_figures

STATS = ("p50", "p90", "p95", "p99", "mean")


def budget_checks() -> tuple[str, ...]:
    """The checks measured per device (the budgets), in run order, from the check registry."""
    from model_checks.checks import registry

    return tuple(name for name, c in registry().items() if c.per_device)


@dataclass
class ArtifactFigures:
    """What one run said about one artifact: figures by check, check outcomes, budget figures by (check, device)."""

    figures: dict[str, Any] = field(default_factory=dict)
    status: dict[str, str] = field(default_factory=dict)
    budgets: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    runtimes: dict[str, dict[str, Any]] = field(default_factory=dict)  # runtime -> its equivalence item's figures

    def add(self, check: str, outcome: str, figures: dict[str, Any]) -> None:
        if figures.get("runtime"):  # an item of `runtimes:` (test_equivalence[<id>-openvino])
            self.status[f"{check}[{figures['runtime']}]"] = outcome
            self.runtimes[figures["runtime"]] = {**figures, "outcome": outcome}
        elif figures.get("device") and check in budget_checks():
            self.status[f"{check}[{figures['device']}]"] = outcome
            self.budgets[(check, figures["device"])] = {**figures, "outcome": outcome}
        else:
            self.status[check] = outcome
            self.figures.update({k: v for k, v in figures.items() if v is not None})


def gather(artifacts: dict[str, ArtifactFigures], facts: dict | None, when: str, outcome: str) -> None:
    """Take one test report's facts (`plugin.verdict.read_record`) into the artifacts' figures; `outcome` as pytest
    says it (passed, failed, skipped)."""
    if facts is not None and (when == "call" or outcome != "passed"):
        status = {"passed": "pass", "failed": "FAIL", "skipped": "skip"}.get(outcome, outcome)
        artifacts.setdefault(facts["artifact"], ArtifactFigures()).add(
            facts["check"], status, facts.get("figures") or {}
        )


@dataclass(frozen=True)
class Point:
    """One stored run's figure for a trend: when, device, check, and the values."""

    when: str
    device: str
    check: str
    values: dict[str, float]


@dataclass(frozen=True)
class Table:
    head: tuple[str, ...]
    rows: tuple[tuple[str, ...], ...]


@dataclass(frozen=True)
class Section:
    artifact: str
    lines: tuple[str, ...]
    table: Table | None
    trend: tuple[Point, ...]  # empty until two runs are stored: one dot is no trend
    limits: dict[tuple[str, str], dict[str, float]] = field(
        default_factory=dict
    )  # (check, device) -> limit_* figures of this run
    flagged: tuple[tuple[str, str], ...] = ()  # (check, device) whose outcome in this run is a failure or a regression

    @property
    def slug(self) -> str:
        return re.sub(r"[^A-Za-z0-9._-]+", "_", self.artifact)


@dataclass(frozen=True)
class Report:
    title: str
    lines: tuple[str, ...]
    sections: tuple[Section, ...]
    overview: Table | None = None  # every artifact and check, failures first
    runtimes: Table | None = None  # equivalence per artifact and runtime, where any artifact declares `runtimes:`

    @property
    def regressions(self) -> int:
        return sum(
            1 for s in self.sections for r in (s.table.rows if s.table else ()) if r[-1].startswith("regression")
        )


def _num(v: Any, spec: str = ".3f") -> str:
    return "-" if v is None or v == "" else format(v, spec) if isinstance(v, (int, float)) else str(v)


def duration(ms: Any) -> str:
    """A time in the unit that reads: 10 µs, not 0.010 ms."""
    if not isinstance(ms, (int, float)):
        return "-"
    if abs(ms) < 1:
        return f"{ms * 1000:.3g} µs"
    if abs(ms) >= 1000:
        return f"{ms / 1000:.3g} s"
    return f"{ms:.3g} ms"


def _baseline(figures: dict[str, Any]) -> str:
    verdict = figures.get("baseline_verdict")
    if not verdict:
        return "no baseline"
    change = figures.get("baseline_change")
    return f"{verdict} ({change:+.1%})" if isinstance(change, (int, float)) else str(verdict)


def as_stored_run(current: dict[str, ArtifactFigures], when: str) -> StoredRun:
    """This run's budget figures in the shape of a stored run, for trends when pytest-benchmark did not save it."""
    figures = {}
    for aid, a in current.items():
        for (check, device), b in a.budgets.items():
            figures[(aid, check, device)] = {
                "latency_ms": {s: b[f"{s}_ms"] for s in STATS if b.get(f"{s}_ms") is not None},
                "throughput_per_s": b.get("throughput_per_s"),
                "speedup": b.get("speedup"),
            }
        if (served := served_figures(a.figures)) is not None:
            figures[(aid, *SERVING)] = served
    return StoredRun(when=when, source="this run", fingerprint={}, figures=figures)


def trend_index(runs: list[StoredRun], wanted: set[str] | None = None) -> dict[str, tuple[Point, ...]]:
    """Every artifact's trend points (only those in `wanted`, when given), in one pass over the runs: the report
    costs the figures stored, not the figures stored times the artifacts reported (forged runs hold thousands)."""
    points: dict[str, list[Point]] = {}
    for run in runs:
        for (aid, check, device), info in run.figures.items():
            if wanted is not None and aid not in wanted:
                continue
            values = {k: float(v) for k, v in (info.get("latency_ms") or {}).items() if k in STATS}
            for key in ("throughput_per_s", "speedup", "achieved_rate_per_s"):
                if isinstance(info.get(key), (int, float)):
                    values[key] = float(info[key])
            points.setdefault(aid, []).append(Point(run.when, device, check, values))
    return {aid: tuple(p) for aid, p in points.items()}


def trend_of(artifact: str, runs: list[StoredRun]) -> tuple[Point, ...]:
    return trend_index(runs, {artifact}).get(artifact, ())


def section(
    artifact: str, a: ArtifactFigures, runs: list[StoredRun], trends: dict[str, tuple[Point, ...]] | None = None
) -> Section:
    f = dict(a.figures)
    f.setdefault("size_mb", next((b["size_mb"] for b in a.budgets.values() if b.get("size_mb") is not None), None))
    lines = [
        f"size {_num(f.get('size_mb'), '.4g')} MB; accuracy drop {_num(f.get('accuracy_drop'), '+.4f')}"
        + (f" (accuracy {_num(f.get('accuracy'), '.4f')})" if f.get("accuracy") is not None else ""),
        "checks: " + (", ".join(f"{c} {s}" for c, s in a.status.items()) or "none ran"),
    ]
    if f.get("sqnr_worst"):  # from a failed equivalence's localisation (model_checks.localize)
        lines.append(f"five worst tensors by SQNR: {f['sqnr_worst']}")
    if f.get("serving_p99_ms") is not None:  # test_serving's figures (model_checks.serving.check)
        lines.append(
            f"served over HTTP: {_num(f.get('serving_achieved_rate'), '.1f')} of {_num(f.get('serving_target_rate'), 'g')} req/s, "
            f"p50 {_num(f.get('serving_p50_ms'), '.2f')} / p99 {_num(f.get('serving_p99_ms'), '.2f')} ms, "
            f"peak {_num(f.get('serving_peak_per_s'), '.1f')} req/s"
        )
    rows = []
    order = budget_checks()
    for (check, device), b in sorted(a.budgets.items(), key=lambda kv: (kv[0][1], order.index(kv[0][0]))):
        rows.append(
            (
                check,
                device,
                *(duration(b.get(f"{s}_ms")) for s in STATS),
                _num(b.get("throughput_per_s"), ".1f"),
                _num(b.get("batch_size"), "d"),
                _num(b.get("speedup"), ".2f"),
                _num(b.get("session_create_ms"), ".1f"),
                _num(b.get("first_call_ms"), ".2f"),
                b["outcome"],
                "n/a (in-run ratio)" if check == "speedup" else _baseline(b),
            )
        )
    head = (
        "check",
        "device",
        *STATS,
        "items/s",
        "batch",
        "speedup",
        "session ms",
        "first call ms",
        "outcome",
        "vs baseline",
    )
    trend = trends.get(artifact, ()) if trends is not None else trend_of(artifact, runs)
    if len({p.when for p in trend}) < 2:
        trend = ()
    limits = {
        key: {k: v for k, v in b.items() if k.startswith("limit_") and isinstance(v, (int, float))}
        for key, b in a.budgets.items()
    }
    flagged = tuple(
        key
        for key, b in a.budgets.items()
        if b["outcome"] in ("FAIL", "ERROR") or b.get("baseline_verdict") == "regression"
    )
    if (
        f.get("serving_p99_ms") is not None
    ):  # the served trend's limits: this run's serving.latency_ms and 99% of serving.rate_per_s
        served = {f"limit_{p}_ms": f.get(f"serving_limit_{p}_ms") for p in SERVED_LATENCIES} | {
            "limit_achieved_rate_per_s": f.get("serving_limit_rate")
        }
        limits[SERVING] = {k: v for k, v in served.items() if isinstance(v, (int, float))}
        flagged += (SERVING,) if a.status.get("serving") in FAILING else ()
    return Section(artifact, tuple(lines), Table(head, tuple(rows)) if rows else None, trend, limits, flagged)


FAILING = ("FAIL", "ERROR")


def overview(current: dict[str, ArtifactFigures]) -> Table:
    """One row per artifact and check, failures first, then by artifact and check."""
    rows = [(aid, check, outcome) for aid, a in current.items() for check, outcome in a.status.items()]
    rows.sort(key=lambda r: (r[2] not in FAILING, r[0], r[1]))
    return Table(("artifact", "check", "outcome"), tuple(rows))


def verdict(current: dict[str, ArtifactFigures], regressions: int) -> str:
    """The headline: regressions, else how many budgets have no baseline to compare with, else none found."""
    budgets = [
        b
        for a in current.values()
        for (check, _), b in a.budgets.items()
        if check != "speedup" and b["outcome"] != "skip"
    ]
    missing = sum(1 for b in budgets if not b.get("baseline_verdict"))
    failed = sum(1 for a in current.values() for o in a.status.values() if o in FAILING)
    parts = [f"{failed} check(s) failed." if failed else "Every check passed or did not apply."]
    if regressions:
        parts.append(f"{regressions} regression(s) against baseline.")
    if missing:
        parts.append(
            f"{missing} budget(s) have no baseline yet; run with --model-checks-update-baselines to create one."
        )
    elif not regressions and budgets:
        parts.append(f"No regression against baseline ({len(budgets)} budget(s) compared).")
    return " ".join(parts)


def runtime_matrix(current: dict[str, ArtifactFigures]) -> Table | None:
    """Equivalence of every artifact that declares `runtimes:`, one column per runtime: the outcome, the worst rel_l2
    against the reference, and the other runtime's largest difference from onnxruntime."""
    names = sorted({rt for a in current.values() for rt in a.runtimes})
    if not names:
        return None
    rows = []
    for aid in sorted(current):
        a = current[aid]
        if not a.runtimes:
            continue
        cells = [f"{a.status.get('equivalence', '-')} ({_num(a.figures.get('rel_l2'), '.3g')})"]
        for rt in names:
            f = a.runtimes.get(rt)
            cells.append(
                "-"
                if f is None
                else f"{f['outcome']} ({_num(f.get('rel_l2'), '.3g')}; "
                f"vs onnxruntime max abs {_num(f.get('vs_onnxruntime_max_abs'), '.3g')})"
            )
        rows.append((aid, *cells))
    return Table(("artifact", "onnxruntime (rel_l2)", *(f"{rt} (rel_l2; vs onnxruntime)" for rt in names)), tuple(rows))


def canary_line(canary: dict | None) -> str:
    """The last `model-checks canary` written beside the report, in one line."""
    if not canary:
        return (
            "Runtime canary: none written to this directory yet "
            "(`model-checks canary onnxruntime==X --out <this directory>`)."
        )
    return f"Runtime canary (last run): {canary.get('verdict')}"


def build(
    current: dict[str, ArtifactFigures],
    runs: list[StoredRun],
    environment: dict,
    when: str,
    machines: list[str] | None = None,
    canary: dict | None = None,
) -> Report:
    """The report for this run's artifacts, with trends from `runs`, the runtime matrix and the last canary;
    `machines`: where the verdicts were reached (CPU, ISA flags, runtime and providers; several when merged shards
    ran on different machines)."""
    versions = ", ".join(f"{k} {v}" for k, v in (environment.get("versions") or {}).items())
    gpu = environment.get("gpu")
    lines = [
        f"Generated {when}: {len(current)} artifact(s), {len(runs)} stored run(s) for the trends.",
        f"Environment: {environment.get('cpu')} ({environment.get('cores')} cores); "
        + (f"GPU {gpu['name']} (driver {gpu['driver']}); " if gpu else "no GPU; ")
        + versions
        + ".",
        *(
            [f"Machine: {machines[0]}."]
            if machines and len(machines) == 1
            else [f"Machines (shards; timings and int8 verdicts may depend on which): {'; '.join(machines)}."]
            if machines
            else []
        ),
    ]
    lines.append(canary_line(canary))
    trends = trend_index(runs, set(current))
    report = Report(
        "model-checks nightly report",
        tuple(lines),
        tuple(section(aid, current[aid], runs, trends) for aid in sorted(current)),
    )
    return Report(
        report.title,
        (verdict(current, report.regressions), *report.lines),
        report.sections,
        overview(current),
        runtime_matrix(current),
    )
