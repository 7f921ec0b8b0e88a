"""Stored baselines: one JSON file per (artifact, check, device), holding the block medians of the last few
sessions it was taken in and their environment fingerprint. Block medians within one session share that
session's machine state (another job starting, the CPU clock), so the comparison pools the sessions and will
not call a change a regression unless it is larger than the sessions' own disagreement (the noise floor).
Written only when asked (`--model-checks-update-baselines`), atomically."""

from __future__ import annotations

import json
import math
import os
import re
from dataclasses import asdict, dataclass, field, replace
from datetime import datetime, timezone
from pathlib import Path

from model_checks.checks.budgets.compare import (
    IMPROVEMENT,
    INCONCLUSIVE,
    REGRESSION,
    BaselineComparison,
    compare,
    not_compared,
)
from model_checks.checks.budgets.fingerprint import differences
from model_checks.checks.budgets.percentiles import median
from model_checks.core.errors import ModelChecksError
from model_checks.core.fileio import write_text

SCHEMA = 1
KEEP_SESSIONS = 5  # a baseline pools the block medians of its last sessions
MIN_SESSIONS = 3  # a regression needs a baseline from this many sessions: the spread between runs must be known
# A baseline holds a few sessions' block medians: kilobytes. Baselines may be committed, so a pull request can plant
# one: it is read as a regular file (no link, FIFO or device) under this cap, and its every field checked.
MAX_BASELINE_BYTES = 1 << 20


class BaselineError(ModelChecksError):
    """A stored baseline this version cannot read or store: a broken or foreign file, or a folder it cannot write."""

    what = "baseline unusable"


@dataclass(frozen=True)
class Baseline:
    artifact: str
    check: str
    device: str
    fingerprint: dict
    block_medians_ms: list[float]
    latency_ms: dict[str, float]
    created: str = ""
    sessions: list[list[float]] = field(
        default_factory=list
    )  # block medians of each session it was taken in, oldest first
    normalized_sessions: list[list[float]] = field(default_factory=list)  # the same over the calibration's speed (CPU)

    def _units(self, normalized: bool) -> list[list[float]]:
        if normalized:
            return self.normalized_sessions
        return self.sessions or [self.block_medians_ms]

    def noise_floor(self, normalized: bool = False) -> float:
        """How far apart the medians of the baseline's own sessions are (0 with one session): the same model
        measured again on this machine moved that much, so a smaller change is not evidence of anything."""
        medians = [median(s) for s in self._units(normalized) if s]
        return max(medians) / min(medians) - 1.0 if len(medians) > 1 else 0.0

    def compare(
        self, block_medians_ms: list[float], fingerprint: dict, min_effect: float, normalized: list[float] | None = None
    ) -> BaselineComparison:
        """The current run against this baseline; a different environment is reported, never compared. Where
        both sides were calibrated, the normalized blocks are compared. The minimum effect is raised to the
        baseline's noise floor when its sessions disagree by more."""
        diff = differences(fingerprint, self.fingerprint)
        if diff:
            return not_compared(
                f"the baseline ({self.created}) was taken in another environment: {'; '.join(diff)}. "
                "Update it here with --model-checks-update-baselines",
                min_effect,
            )
        use = (
            bool(normalized)
            and len(self.normalized_sessions) == len(self._units(False))
            and all(self.normalized_sessions)
        )
        current = normalized if use else block_medians_ms
        units = self._units(use)
        c = compare(current, [b for s in units for b in s], max(min_effect, self.noise_floor(use)), calibrated=use)  # type: ignore[arg-type]
        if c.verdict in (REGRESSION, IMPROVEMENT) and len(units) < MIN_SESSIONS:
            return replace(
                c,
                verdict=INCONCLUSIVE,
                reason=(
                    f"{c.verdict} within this session, but the baseline holds {len(units)} session(s) and {MIN_SESSIONS} are needed to know "
                    f"how much reruns of the same model differ here: run with --model-checks-update-baselines "
                    f"{MIN_SESSIONS - len(units)} more time(s) on an unchanged model"
                ),
            )
        return c

    def updated(
        self,
        block_medians_ms: list[float],
        fingerprint: dict,
        latency_ms: dict[str, float],
        normalized: list[float] | None = None,
    ) -> Baseline:
        """This baseline with one more session (the last KEEP_SESSIONS are kept); a new one in another environment."""
        same = not differences(fingerprint, self.fingerprint)
        units, keep = self._units(False), KEEP_SESSIONS - 1
        kept = units[-keep:] if same else []
        aligned = len(self.normalized_sessions) == len(units)  # a baseline from before calibration cannot be mixed
        norm = (
            [*(self.normalized_sessions[-keep:] if kept else []), normalized]
            if normalized and (aligned or not kept)
            else []
        )
        return replace(
            self,
            fingerprint=fingerprint,
            block_medians_ms=block_medians_ms,
            latency_ms=latency_ms,
            created="",
            sessions=[*kept, block_medians_ms],
            normalized_sessions=norm,
        )


class BaselineStore:
    """Baselines under one directory: `<dir>/<artifact>/<check>-<device>.json`."""

    def __init__(self, directory: Path):
        self.directory = directory

    def path(self, artifact: str, check: str, device: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9._@+-]", "_", artifact)
        return self.directory / safe / f"{check}-{device}.json"

    def load(self, artifact: str, check: str, device: str) -> Baseline | None:
        """The stored baseline, None when there is none; BaselineError for a file that is not one this version
        wrote (unreadable, not JSON, a field missing, unknown or of the wrong kind): never compared as if it were."""
        from model_checks.safety.files import read_regular_text

        p = self.path(artifact, check, device)
        if not os.path.lexists(p):
            return None
        text = read_regular_text(p, MAX_BASELINE_BYTES, "baseline")  # (UnsafeFile names the path and why)
        try:
            data = json.loads(text)
            if not isinstance(data, dict):
                raise ValueError("not a JSON object")
            data.pop("schema", None)
            return _checked(Baseline(**data))
        except (ValueError, TypeError) as e:
            from model_checks.safety.text import printable

            raise BaselineError(
                f"{p}: not a baseline this version of model-checks reads ({printable(str(e))[:200]}); delete it, or "
                "store a new one with --model-checks-update-baselines"
            ) from None

    def save(self, baseline: Baseline) -> Path:
        p = self.path(baseline.artifact, baseline.check, baseline.device)
        data = {"schema": SCHEMA, **asdict(baseline)}
        if not data["created"]:
            data["created"] = datetime.now(timezone.utc).isoformat(timespec="seconds")
        try:
            write_text(p, json.dumps(data, indent=2, sort_keys=True) + "\n")
        except OSError as e:
            raise BaselineError(
                f"{p}: the baseline cannot be stored ({e.strerror or e}); point --model-checks-baselines at a folder "
                "this run can write"
            ) from None
        return p


def _checked(b: Baseline) -> Baseline:
    """`b` when each field holds what `save` writes (numbers finite and positive where they are times); else
    ValueError naming the first field that does not."""

    def times(values: object, name: str) -> None:
        if not isinstance(values, list) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) and math.isfinite(v) and v > 0 for v in values
        ):
            raise ValueError(f"{name}: not a list of finite positive times")

    for name in ("artifact", "check", "device", "created"):
        if not isinstance(getattr(b, name), str):
            raise ValueError(f"{name}: not a string")
    if not isinstance(b.fingerprint, dict):
        raise ValueError("fingerprint: not a mapping")
    times(b.block_medians_ms, "block_medians_ms")
    times(list(b.latency_ms.values()) if isinstance(b.latency_ms, dict) else None, "latency_ms")
    for name in ("sessions", "normalized_sessions"):
        sessions = getattr(b, name)
        if not isinstance(sessions, list):
            raise ValueError(f"{name}: not a list of sessions")
        for s in sessions:
            times(s, name)
    return b
