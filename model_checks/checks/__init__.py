"""The built-in checks. Each module has NAME and `run(ctx) -> CheckResult`; the plugin makes each a test
`test_<name>[<artifact id>]`. Adding a check is adding a module and a line here."""

from __future__ import annotations

import importlib
from types import ModuleType

from model_checks.core.artifact import Artifact

# name -> module; order is the order tests run in, cheapest first.
CHECKS: dict[str, str] = {
    "integrity": "model_checks.checks.integrity",
    "metadata": "model_checks.checks.metadata",
    "limits": "model_checks.checks.limits",
    "equivalence": "model_checks.checks.equivalence",
    "accuracy": "model_checks.checks.accuracy",
    "tfmot_quantize": "model_checks.checks.tfmot_quantize",
    "tfmot_prune": "model_checks.checks.tfmot_prune",
    "serving": "model_checks.serving.check",
}
# Collected only for Keras artifacts whose manifest asks for them (`tfmot: {quantize: true}`).
TFMOT_CHECKS = {"tfmot_quantize": "quantize", "tfmot_prune": "prune"}


def _wanted(name: str, artifact: Artifact) -> bool:
    if name == "serving":  # only where the manifest (or policy.yaml) declares `serving.rate_per_s`
        return artifact.manifest is not None and artifact.manifest.get("serving.rate_per_s") is not None
    if name not in TFMOT_CHECKS:
        return True
    m = artifact.manifest
    return m is not None and m.format == "keras" and bool(m.get(f"tfmot.{TFMOT_CHECKS[name]}"))


def module(name: str) -> ModuleType:
    return importlib.import_module(CHECKS[name])


def applicable(artifact: Artifact) -> list[str]:
    """Checks to collect for an artifact; an invalid manifest gets only `manifest`, which fails."""
    if artifact.manifest is None:
        return ["manifest"]
    from model_checks.checks.budgets.spec import budget_checks

    return ["manifest", *(c for c in CHECKS if _wanted(c, artifact)), *budget_checks(artifact.manifest)]
