"""Writing the nightly report of one run's figures (a pytest session, or shards merged by `model-checks merge`)."""

from __future__ import annotations

import os
from datetime import datetime, timezone
from pathlib import Path


def write_nightly(artifacts: dict, directory: Path, storage: str | None = None, saved: bool = False) -> list[Path]:
    """Write nightly.md and nightly.html for `artifacts` (id -> ArtifactFigures) to `directory`, with trends from the
    runs pytest-benchmark stored under `storage`; `saved`: this run is one of them already (else it is added as the
    last point). With GITHUB_STEP_SUMMARY set, the markdown goes there too."""
    from model_checks.checks.budgets.fingerprint import fingerprint
    from model_checks.nightly import document, render
    from model_checks.nightly.history import load_runs, storage_dir

    machine = fingerprint()
    runs = load_runs(storage_dir(storage), machine)
    now = datetime.now(timezone.utc).isoformat(timespec="seconds")
    if not saved:
        runs.append(document.as_stored_run(artifacts, now))
    from model_checks.canary.report import last

    report = document.build(artifacts, runs, machine, now, last(directory))
    return render.write(report, directory, os.environ.get("GITHUB_STEP_SUMMARY"))
