"""Runs stored by pytest-benchmark (`--benchmark-autosave` / `--benchmark-save`), read back as the budget
figures each holds (`extra_info["model_checks"]`) and test_serving's figures (the run's `model_checks_serving`
key, added by the plugin's benchmark hooks) with the run's environment fingerprint."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path

from model_checks.checks.budgets.check import EXTRA_INFO_KEY
from model_checks.checks.budgets.fingerprint import MACHINE_INFO_KEY


SERVING_KEY = "model_checks_serving"  # top level of a saved run: {artifact id: served figures}
SERVING = ("serving", "http")  # the (check, device) that served figures are stored under
SERVED_LATENCIES = ("p50", "p95", "p99")


def served_figures(figures: dict) -> dict | None:
    """test_serving's figures (`serving_*`, see model_checks.serving.check) in the stored shape; None when it
    measured nothing (skipped, or failed before the load phase)."""
    if not isinstance(figures.get("serving_p99_ms"), (int, float)):
        return None
    latency = {p: figures[f"serving_{p}_ms"] for p in SERVED_LATENCIES if isinstance(figures.get(f"serving_{p}_ms"), (int, float))}
    return {"latency_ms": latency, "achieved_rate_per_s": figures.get("serving_achieved_rate"),
            "target_rate_per_s": figures.get("serving_target_rate")}


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


def read_run(path: Path) -> StoredRun | None:
    """A stored run, or None when the file is not a pytest-benchmark run."""
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return None
    if not isinstance(data, dict) or "benchmarks" not in data:
        return None
    figures = {}
    for b in data["benchmarks"]:
        info = (b.get("extra_info") or {}).get(EXTRA_INFO_KEY)
        if info and {"artifact", "check", "device"} <= set(info):
            figures[(info["artifact"], info["check"], info["device"])] = info
    served = data.get(SERVING_KEY)
    for aid, info in (served.items() if isinstance(served, dict) else ()):
        if isinstance(info, dict):
            figures[(str(aid), *SERVING)] = info
    fp = (data.get("machine_info") or {}).get(MACHINE_INFO_KEY) or {}
    return StoredRun(when=str(data.get("datetime", "")), source=path.name, fingerprint=fp, figures=figures)


HARDWARE = ("cpu", "cores", "machine", "gpu")


def load_runs(directory: Path, machine: dict | None = None) -> list[StoredRun]:
    """Every stored run with budget or serving figures under `directory`, oldest first; with `machine` (a fingerprint),
    only runs taken on the same hardware, so that a trend never mixes machines."""
    if not directory.is_dir():
        return []
    runs = [r for p in sorted(directory.rglob("*.json")) if (r := read_run(p)) is not None and r.figures]
    if machine is not None:
        runs = [r for r in runs if all(r.fingerprint.get(k) == machine.get(k) for k in HARDWARE)]
    return sorted(runs, key=lambda r: r.when)
