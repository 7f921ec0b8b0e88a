"""pytest-benchmark hooks, registered by the plugin only where pytest-benchmark is loaded: every saved run
(`--benchmark-save`, `--benchmark-autosave`, `--benchmark-json`) carries the environment fingerprint and
test_serving's figures of the run (pytest-benchmark stores only what its fixture timed), so the nightly
report can plot served p99 and achieved rate over stored runs."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from model_checks.checks.budgets.fingerprint import MACHINE_INFO_KEY, fingerprint
from model_checks.plugin.verdict import PROPERTY, read_record

_CHECK = f"{PROPERTY}.check"


@dataclass(eq=False)  # a plugin object must stay hashable: pluggy keeps plugins in sets
class BenchmarkHooks:
    served: dict[str, dict] = field(default_factory=dict)  # artifact id -> served figures, in the stored shape

    def pytest_benchmark_update_machine_info(self, config: object, machine_info: dict) -> None:
        machine_info[MACHINE_INFO_KEY] = fingerprint()

    def pytest_runtest_logreport(self, report: pytest.TestReport) -> None:
        if report.when != "call":  # (setup and teardown reports carry the same properties: read them once)
            return
        # the facts of a serving test only (the others' are not read)
        if not any(k == _CHECK and v == "serving" for k, v in report.user_properties):
            return
        p = read_record(report.user_properties)
        if p is None or p["check"] != "serving":
            return
        from model_checks.nightly.history import served_figures

        if (figures := served_figures(p["figures"])) is not None:
            self.served[p["artifact"]] = figures

    def pytest_benchmark_update_json(self, config: object, benchmarks: list, output_json: dict) -> None:
        from model_checks.nightly.history import SERVING_KEY

        if self.served:
            output_json[SERVING_KEY] = dict(self.served)
