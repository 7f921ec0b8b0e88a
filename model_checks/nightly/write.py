"""Writing the nightly report of one run's figures (a pytest session, or shards merged by `model-checks merge`)."""

from __future__ import annotations

import os
from dataclasses import replace
from datetime import datetime, timezone
from pathlib import Path


def write_nightly(
    artifacts: dict, directory: Path, storage: str | None = None, saved: bool = False, machines: dict | None = None
) -> list[Path]:
    """Write nightly.md and nightly.html for `artifacts` (id -> ArtifactFigures) to `directory`, with trends from the
    runs pytest-benchmark stored under `storage`; `saved`: this run is one of them already (else it is added as the
    last point); `machines`: where merged shards ran (default: this machine). With GITHUB_STEP_SUMMARY set, the
    markdown goes there too."""
    from model_checks.checks.budgets.fingerprint import fingerprint
    from model_checks.nightly import document, render
    from model_checks.nightly.history import load_runs, storage_dir

    machine = fingerprint()
    skipped: list[str] = []
    runs = load_runs(storage_dir(storage), machine, skipped)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if not saved:
        runs.append(document.as_stored_run(artifacts, now))
    from model_checks.canary.report import last
    from model_checks.core.machine import describe_record, this_machine

    ran_on = sorted({describe_record(m) for m in machines.values()}) if machines else [this_machine().describe()]
    report = document.build(artifacts, runs, machine, now, ran_on, last(directory))
    if skipped:  # a stored run that cannot be used costs its own points, not the report
        more = f" and {len(skipped) - 5} more" if len(skipped) > 5 else ""
        note = f"{len(skipped)} stored run file(s) left out: {'; '.join(skipped[:5])}{more}."
        report = replace(report, lines=(*report.lines, note))
    return render.write(report, directory, os.environ.get("GITHUB_STEP_SUMMARY"))
