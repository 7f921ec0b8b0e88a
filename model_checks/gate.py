"""The built-in checks as pytest tests. The plugin collects this module once per artifact (from its
metadata.yaml), so each test runs as `test_<check>[<artifact id>]`. Each test only hands off: the check
returns a CheckResult and the `model_checks_verdict` fixture turns it into pass, skip or a failure."""

from __future__ import annotations

from typing import Callable

Verdict = Callable[[str], object]


def test_manifest(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("manifest")


def test_integrity(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("integrity")


def test_metadata(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("metadata")


def test_limits(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("limits")


def test_equivalence(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("equivalence")


def test_accuracy(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("accuracy")


def test_tfmot_quantize(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("tfmot_quantize")


def test_tfmot_prune(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("tfmot_prune")
