"""One shard's gate, run in a subprocess (pytest, as a CI job would), its reports returned as text so a task on
another node can hand them back."""

from __future__ import annotations

import os
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path

REPORTS = ("junit.xml", "summary.md", "summary.json")
TAIL = 4000  # characters of the gate's output kept for a shard that did not report


@dataclass(frozen=True)
class ShardJob:
    """What a task needs to gate one shard: where to run, the roots, the shard, pytest's own options."""

    cwd: str
    roots: tuple[str, ...]
    shard: tuple[int, int]
    pytest_args: tuple[str, ...] = ()
    weights: str | None = None
    env: dict[str, str] = field(default_factory=dict)  # added to the task's environment (PYTHONPATH of the driver)


def gate_shard(job: ShardJob) -> dict:
    """Run the gate on `job`'s shard; {"rc", "files": {name: text}, "output": its last lines}."""
    with tempfile.TemporaryDirectory(prefix="model-checks-shard-") as tmp:
        cmd = [
            sys.executable,
            "-m",
            "pytest",
            *(a for r in job.roots for a in ("--model-checks", r)),
            "--model-checks-shard",
            f"{job.shard[0]}/{job.shard[1]}",
            "--junitxml",
            str(Path(tmp, "junit.xml")),
            "--model-checks-summary",
            str(Path(tmp, "summary.md")),
            "-p",
            "no:cacheprovider",
            *(("--model-checks-shard-weights", job.weights) if job.weights else ()),
            *job.pytest_args,
        ]
        proc = subprocess.run(
            cmd,
            cwd=job.cwd,
            env={**os.environ, **job.env},
            capture_output=True,
            text=True,
            stdin=subprocess.DEVNULL,
            check=False,
        )
        files = {name: Path(tmp, name).read_text(encoding="utf-8") for name in REPORTS if Path(tmp, name).is_file()}
    return {"rc": proc.returncode, "files": files, "output": (proc.stdout + proc.stderr)[-TAIL:]}
