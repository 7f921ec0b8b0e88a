"""Runs stored by pytest-benchmark (`--benchmark-autosave` / `--benchmark-save`), read back as the budget
figures each holds (`extra_info["model_checks"]`) and test_serving's figures (the run's `model_checks_serving`
key, added by the plugin's benchmark hooks) with the run's environment fingerprint."""

from __future__ import annotations

import json
import math
import os
from dataclasses import dataclass, field
from pathlib import Path

from model_checks.checks.budgets.check import EXTRA_INFO_KEY
from model_checks.checks.budgets.fingerprint import MACHINE_INFO_KEY
from model_checks.core.errors import ModelChecksError
from model_checks.safety.text import printable

SERVING_KEY = "model_checks_serving"  # top level of a saved run: {artifact id: served figures}
SERVING = ("serving", "http")  # the (check, device) that served figures are stored under
SERVED_LATENCIES = ("p50", "p95", "p99")


def served_figures(figures: dict) -> dict | None:
    """test_serving's figures (`serving_*`, see model_checks.serving.check) in the stored shape; None when it
    measured nothing (skipped, or failed before the load phase)."""
    if not isinstance(figures.get("serving_p99_ms"), (int, float)):
        return None
    latency = {
        p: figures[f"serving_{p}_ms"]
        for p in SERVED_LATENCIES
        if isinstance(figures.get(f"serving_{p}_ms"), (int, float))
    }
    return {
        "latency_ms": latency,
        "achieved_rate_per_s": figures.get("serving_achieved_rate"),
        "target_rate_per_s": figures.get("serving_target_rate"),
    }


@dataclass(frozen=True)
class StoredRun:
    """One saved run: when, in which environment, and the budget figures by (artifact, check, device)."""

    when: str
    source: str
    fingerprint: dict
    figures: dict[tuple[str, str, str], dict] = field(default_factory=dict)


def storage_dir(option: str | None) -> Path:
    """pytest-benchmark's `--benchmark-storage` value (`file://./.benchmarks` by default) as a directory."""
    text = option or "file://./.benchmarks"
    if "://" in text and not text.startswith("file://"):
        raise ValueError(f"only file storage is read for the nightly report, not {text!r}")
    return Path(text.removeprefix("file://"))


MAX_RUN_BYTES = 64 * 1024**2  # one stored run; pytest-benchmark's are kilobytes
MAX_RUN_FILES = 2000  # the newest by name are read; a trend needs far fewer
MAX_FIGURES = 10_000  # figures kept from one run
DEVICES = ("cpu", "gpu", SERVING[1])  # the devices figures are stored under; any other is forged
NUMBERS = ("throughput_per_s", "speedup", "achieved_rate_per_s", "target_rate_per_s")
FIRST_YEAR, LAST_YEAR = 2000, 2200  # a stored run's datetime outside these is not a time the report can draw


class BadRun(ValueError):
    """A stored run file the report leaves out, and why."""


def _number(v: object) -> float | None:
    if isinstance(v, bool) or not isinstance(v, (int, float)) or not math.isfinite(v):
        return None
    return float(v)


def _figures(info: dict) -> dict:
    """The figures a trend draws, each a finite number (anything else is dropped)."""
    lat = info.get("latency_ms")
    latency = {str(k): n for k, v in lat.items() if (n := _number(v)) is not None} if isinstance(lat, dict) else {}
    return {"latency_ms": latency, **{k: _number(info.get(k)) for k in NUMBERS}}


def _when(value: object, path: Path) -> str:
    """The run's datetime as ISO 8601 in UTC; BadRun unless it is one between FIRST_YEAR and LAST_YEAR."""
    from datetime import datetime, timezone

    try:
        when = datetime.fromisoformat(str(value))
    except ValueError:
        raise BadRun(f"datetime {printable(str(value))[:40]!r} is not an ISO 8601 time") from None
    if not FIRST_YEAR <= when.year <= LAST_YEAR:
        raise BadRun(f"datetime {when.isoformat()[:40]} is not between {FIRST_YEAR} and {LAST_YEAR}")
    if when.tzinfo is None:
        when = when.replace(tzinfo=timezone.utc)
    return when.astimezone(timezone.utc).isoformat(timespec="seconds")


def parse_run(path: Path) -> StoredRun | None:
    """A stored run, None when the file is not a pytest-benchmark run, BadRun (or UnsafeFile) when it is one the
    report cannot use: a link, a FIFO or a device, over the size cap, or a field of the wrong kind."""
    from model_checks.safety.files import read_regular

    data = read_regular(path, MAX_RUN_BYTES, "stored run")
    try:
        doc = json.loads(data)
    except (ValueError, RecursionError):
        return None
    if not isinstance(doc, dict) or "benchmarks" not in doc:
        return None
    benchmarks = doc["benchmarks"]
    if not isinstance(benchmarks, list):
        raise BadRun(f"benchmarks is {type(benchmarks).__name__}, expected a list")
    figures: dict[tuple[str, str, str], dict] = {}
    for b in benchmarks:
        extra = b.get("extra_info") if isinstance(b, dict) else None
        info = extra.get(EXTRA_INFO_KEY) if isinstance(extra, dict) else None
        if isinstance(info, dict) and all(isinstance(info.get(k), str) for k in ("artifact", "check", "device")):
            if info["device"] in DEVICES and len(figures) < MAX_FIGURES:
                key = (info["artifact"], info["check"], info["device"])
                figures[key] = {**_figures(info), "artifact": key[0], "check": key[1], "device": key[2]}
    served = doc.get(SERVING_KEY)
    for aid, info in served.items() if isinstance(served, dict) else ():
        if isinstance(info, dict) and len(figures) < MAX_FIGURES:
            figures[(str(aid), *SERVING)] = _figures(info)
    machine = doc.get("machine_info")
    fp = machine.get(MACHINE_INFO_KEY) if isinstance(machine, dict) else None
    when = _when(doc.get("datetime", ""), path) if figures else str(doc.get("datetime", ""))[:40]
    return StoredRun(when=when, source=path.name, fingerprint=fp if isinstance(fp, dict) else {}, figures=figures)


def read_run(path: Path) -> StoredRun | None:
    """A stored run, or None when the file is not one the report can use (see `parse_run` for why)."""
    try:
        return parse_run(path)
    except (BadRun, ModelChecksError):
        return None


HARDWARE = ("cpu", "cores", "machine", "gpu")


def _run_files(directory: Path) -> list[Path]:
    """The *.json files under `directory`, without following links to directories, the newest MAX_RUN_FILES by name."""
    found: list[Path] = []
    for top, dirs, files in os.walk(directory, followlinks=False):
        dirs.sort()
        found += [Path(top) / f for f in files if f.endswith(".json")]
        if len(found) > 20 * MAX_RUN_FILES:  # a forged tree of millions of files is not walked to its end
            break
    return sorted(found)[-MAX_RUN_FILES:]


def load_runs(directory: Path, machine: dict | None = None, skipped: list[str] | None = None) -> list[StoredRun]:
    """Every stored run with budget or serving figures under `directory`, oldest first; with `machine` (a fingerprint),
    only runs taken on the same hardware, so that a trend never mixes machines. A run file the report cannot use is
    left out, and `skipped` (when given) gets a line naming it and why."""
    if not directory.is_dir():
        return []
    runs = []
    for p in _run_files(directory):
        try:
            r = parse_run(p)
        except (BadRun, ModelChecksError) as e:
            if skipped is not None:
                skipped.append(f"{printable(str(p.relative_to(directory)))}: {str(e).removeprefix(str(p) + ': ')}")
            continue
        if r is not None and r.figures:
            runs.append(r)
    if machine is not None:
        runs = [r for r in runs if all(r.fingerprint.get(k) == machine.get(k) for k in HARDWARE)]
    return sorted(runs, key=lambda r: r.when)
