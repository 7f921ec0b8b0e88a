"""A Keras artifact made ready for tfmot, and the two tfmot checks as functions of the artifact's path.
tfmot rewrites the Python model object, so the whole check (load, rewrite, report) runs as one call where
the model lives: in the Keras worker process when isolated, and only the report comes back."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from model_checks.backends import require_trust_for
from model_checks.core.errors import ArtifactLoadError
from model_checks.core.inputs import generate, merge_interface
from model_checks.core.results import CheckResult
from model_checks.manifest.model import TensorSpec
from model_checks.tfmot.prune import PruneReport, check_prune
from model_checks.tfmot.quantize import QuantizeReport, check_quantize

BATCH = 4  # the short pruning fit takes two steps of 2


def model_and_feeds(
    path: Path, fmt: str, declared: tuple[TensorSpec, ...] | None, trust_code: bool, seed: int
) -> tuple[Any, list[np.ndarray]]:
    """(tf_keras Model, one generated array per model input, in the model's order)."""
    from model_checks.backends.keras.facts import interface
    from model_checks.backends.keras.loader import load_model

    # judged by content too: tf-keras loads an HDF5 file named .keras with its legacy, code-running loader
    require_trust_for(path, fmt, trust_code)
    kind, model = load_model(path)
    if kind != "keras":
        raise ArtifactLoadError(f"{path.name}: tfmot needs a Keras model; a {kind} cannot be rewritten by tfmot")
    specs = merge_interface(declared, interface(kind, model)[0])
    feeds = generate(specs, batch=BATCH, seed=seed)
    return model, [feeds[s.name] for s in specs]


def quantize_report(
    path: Path, fmt: str, declared: tuple[TensorSpec, ...] | None, trust_code: bool, seed: int
) -> QuantizeReport:
    """The QuantizeReport of the Keras model at `path` (module-level, so a worker process can run it)."""
    return check_quantize(*model_and_feeds(path, fmt, declared, trust_code, seed))


def prune_report(
    path: Path,
    fmt: str,
    declared: tuple[TensorSpec, ...] | None,
    trust_code: bool,
    seed: int,
    target: float,
    skip: tuple[str, ...],
) -> PruneReport:
    """The PruneReport of the Keras model at `path` (module-level, so a worker process can run it)."""
    return check_prune(*model_and_feeds(path, fmt, declared, trust_code, seed), target=target, skip=skip)


def verdict(check: str, subject: str, report: Any, failing: str, hint: str, figures: dict) -> CheckResult:
    """A tfmot report as the check's result: the headline names the reason classes, one line per problem."""
    if report:
        return CheckResult(check, True, f"{check}: {subject}: {report}", figures=figures)
    classes = sorted({p.reason for p in report.problems})
    # Without problems it did apply; what failed came after (distance, save and load): say that, not "does not apply".
    head = (
        f"{failing} ({', '.join(classes)})"
        if classes
        else "applies, but the applied model fails: " + "; ".join(report.lines())[:300]
    )
    return CheckResult(
        check,
        False,
        f"{check}: {subject}: {head}",
        tuple(f"  - {line}" for line in report.lines()) + (f"  {hint}",),
        figures=figures,
    )
