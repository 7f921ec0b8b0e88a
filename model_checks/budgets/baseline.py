"""Stored baselines: one JSON file per (artifact, check, device), holding the block medians it was taken
from and the environment fingerprint. Written only when asked (`--model-checks-update-baselines`), atomically."""

from __future__ import annotations

import json
import re
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path

from model_checks.budgets.compare import Comparison, compare, not_compared
from model_checks.budgets.fingerprint import differences
from model_checks.report import atomic_write

SCHEMA = 1


@dataclass(frozen=True)
class Baseline:
    artifact: str
    check: str
    device: str
    fingerprint: dict
    block_medians_ms: list[float]
    latency_ms: dict[str, float]
    created: str = ""

    def compare(self, block_medians_ms: list[float], fingerprint: dict, min_effect: float) -> Comparison:
        """The current run against this baseline; a different environment is reported, never compared."""
        diff = differences(fingerprint, self.fingerprint)
        if diff:
            return not_compared(f"the baseline ({self.created}) was taken in another environment: {'; '.join(diff)}. "
                                "Update it here with --model-checks-update-baselines", min_effect)
        return compare(block_medians_ms, self.block_medians_ms, min_effect)


class BaselineStore:
    """Baselines under one directory: `<dir>/<artifact>/<check>-<device>.json`."""

    def __init__(self, directory: Path):
        self.directory = directory

    def path(self, artifact: str, check: str, device: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._@+-]", "_", artifact)
        return self.directory / safe / f"{check}-{device}.json"

    def load(self, artifact: str, check: str, device: str) -> Baseline | None:
        p = self.path(artifact, check, device)
        if not p.is_file():
            return None
        data = json.loads(p.read_text(encoding="utf-8"))
        data.pop("schema", None)
        return Baseline(**data)

    def save(self, baseline: Baseline) -> Path:
        p = self.path(baseline.artifact, baseline.check, baseline.device)
        data = {"schema": SCHEMA, **asdict(baseline)}
        if not data["created"]:
            data["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        atomic_write(p, json.dumps(data, indent=2, sort_keys=True) + "\n")
        return p
