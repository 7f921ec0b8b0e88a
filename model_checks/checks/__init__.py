"""The built-in checks. Each module has NAME and `run(ctx) -> CheckResult` (and `GATES_THE_REST = True` when the
artifact's other checks cannot run after it fails); the plugin makes each a test `test_<name>[<artifact id>]`.
Adding a check is adding a module, a line here and its test function in `plugin/gate.py`. The budget checks
(latency, throughput, speedup, in `budgets/`) are measured through pytest-benchmark's fixture instead."""

from __future__ import annotations

import importlib
from types import ModuleType

from model_checks.core.artifact import Artifact

# name -> module; order is the order tests run in, cheapest first.
CHECKS: dict[str, str] = {
    "manifest": "model_checks.checks.manifest",
    "integrity": "model_checks.checks.integrity",
    "metadata": "model_checks.checks.metadata",
    "limits": "model_checks.checks.limits",
    "equivalence": "model_checks.checks.equivalence",
    "portability": "model_checks.checks.portability",
    "determinism": "model_checks.checks.determinism",
    "accuracy": "model_checks.checks.accuracy",
    "roundtrip": "model_checks.checks.roundtrip",
    "tfmot_quantize": "model_checks.checks.tfmot_quantize",
    "tfmot_prune": "model_checks.checks.tfmot_prune",
    "serving": "model_checks.serving.check",
}
FIRST = "manifest"  # runs first, and alone for an artifact whose manifest is invalid
# Collected only for Keras artifacts whose manifest asks for them (`tfmot: {quantize: true}`).
TFMOT_CHECKS = {"tfmot_quantize": "quantize", "tfmot_prune": "prune"}


def _wanted(name: str, artifact: Artifact, nightly: bool = False) -> bool:
    if name == "roundtrip":  # collected only where the manifest opts in (`roundtrip: [torch]`)
        return artifact.manifest is not None and bool(artifact.manifest.roundtrip)
    if name == "determinism":  # opt-in (`determinism: true`); a nightly run asks for it on every artifact
        return artifact.manifest is not None and (artifact.manifest.determinism or nightly)
    if name == "serving":  # only where the manifest (or policy.yaml) declares `serving.rate_per_s`
        return artifact.manifest is not None and artifact.manifest.get("serving.rate_per_s") is not None
    if name == "portability":  # ONNX models that declare integer precision (test_metadata holds the graph to it)
        m = artifact.manifest
        return m is not None and m.format == "onnx" and m.get("precision") in ("int8", "uint8", "mixed")
    if name not in TFMOT_CHECKS:
        return True
    m = artifact.manifest
    return m is not None and m.format == "keras" and bool(m.get(f"tfmot.{TFMOT_CHECKS[name]}"))


def module(name: str) -> ModuleType:
    return importlib.import_module(CHECKS[name])


def applicable(artifact: Artifact, nightly: bool = False) -> list[str]:
    """Checks to collect for an artifact; an invalid manifest gets only `manifest`, which fails. `nightly` adds the
    checks a nightly run makes of every artifact (determinism)."""
    if artifact.manifest is None:
        return [FIRST]
    from model_checks.checks.budgets.spec import budget_checks

    return [*(c for c in CHECKS if _wanted(c, artifact, nightly)), *budget_checks(artifact.manifest)]
