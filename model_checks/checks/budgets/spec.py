"""The budgets an artifact declares (`budgets.cpu` / `budgets.gpu`), each limit with where it came from."""

from __future__ import annotations

from model_checks.manifest import Manifest
from model_checks.manifest.model import BUDGET_CHECK_KEYS as CHECK_KEYS
from model_checks.manifest.model import DEVICES, DeviceBudget

__all__ = ["CHECK_KEYS", "DEVICES", "DeviceBudget", "device_budget", "devices_for"]


def device_budget(manifest: Manifest, device: str, where: str = "metadata.yaml") -> DeviceBudget | None:
    """`budgets.<device>` with where each limit came from (the typed value lives on the Manifest)."""
    return manifest.budget(device, where)


def devices_for(manifest: Manifest | None, check: str) -> list[str]:
    """The devices whose budget declares `check` (latency, throughput or speedup)."""
    if manifest is None:
        return []
    return [d for d in DEVICES if (b := device_budget(manifest, d)) is not None and b.declares(check)]
