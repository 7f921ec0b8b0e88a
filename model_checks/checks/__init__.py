"""The built-in checks. Each module has NAME and `run(ctx) -> CheckResult`; the plugin makes each a test
`test_<name>[<artifact id>]`. Adding a check is adding a module and a line here."""

from __future__ import annotations

import importlib
from types import ModuleType

from model_checks.artifact import Artifact

# name -> module; order is the order tests run in, cheapest first.
CHECKS: dict[str, str] = {
    "integrity": "model_checks.checks.integrity",
    "metadata": "model_checks.checks.metadata",
    "limits": "model_checks.checks.limits",
    "equivalence": "model_checks.checks.equivalence",
    "accuracy": "model_checks.checks.accuracy",
}


def module(name: str) -> ModuleType:
    return importlib.import_module(CHECKS[name])


def applicable(artifact: Artifact) -> list[str]:
    """Checks to collect for an artifact; an invalid manifest gets only `manifest`, which fails."""
    if artifact.manifest is None:
        return ["manifest"]
    return ["manifest", *CHECKS]
