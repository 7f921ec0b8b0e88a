"""model-checks: a pytest gate for exported and optimized model artifacts.

The public API, for a notebook or another tool, is what `__all__` names; the README's examples use only it.
Each name is imported on first use, so `import model_checks` imports no ML framework (nor numpy): each
framework is loaded when a check first needs it.

    from model_checks import GateSession
    gs = GateSession(roots=[Path("artifacts")])
    for artifact in gs.artifacts:
        print(artifact.id, gs.run_check("equivalence", artifact))
    gs.pool.close()
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_API = {
    # finding and reading artifacts
    "Artifact": "model_checks.core.artifact",
    "discover": "model_checks.core.discovery",
    "Manifest": "model_checks.manifest",
    "load_manifest": "model_checks.manifest",
    "load_policy": "model_checks.manifest",
    # running checks: a session over roots, or a pool of loaded models for your own code
    "GateSession": "model_checks.core.session",
    "ModelPool": "model_checks.core.pool",
    "CHECKS": "model_checks.checks",
    "applicable": "model_checks.checks",
    "CheckResult": "model_checks.core.results",
    # comparing outputs with the gate's metrics
    "compare_outputs": "model_checks.core.metrics",
    "Comparison": "model_checks.core.metrics",
    # errors: every refusal is a ModelChecksError whose message is the one a user reads
    "ModelChecksError": "model_checks.core.errors",
    "ManifestError": "model_checks.core.errors",
}

__all__ = ["__version__", *_API]


def __getattr__(name: str) -> Any:
    if name not in _API:
        raise AttributeError(f"module 'model_checks' has no attribute {name!r}")
    value = getattr(importlib.import_module(_API[name]), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(__all__)
