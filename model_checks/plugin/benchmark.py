"""pytest-benchmark hooks, registered by the plugin only where pytest-benchmark is loaded: every saved run
(`--benchmark-save`, `--benchmark-autosave`, `--benchmark-json`) carries the environment fingerprint."""

from __future__ import annotations

from model_checks.checks.budgets.fingerprint import MACHINE_INFO_KEY, fingerprint


class BenchmarkHooks:
    def pytest_benchmark_update_machine_info(self, config: object, machine_info: dict) -> None:
        machine_info[MACHINE_INFO_KEY] = fingerprint()
