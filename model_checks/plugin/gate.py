"""The built-in checks as pytest tests. The plugin collects this module once per artifact (from its
metadata.yaml), so each test runs as `test_<check>[<artifact id>]`. Each test only hands off: the check
returns a CheckResult and the `model_checks_verdict` fixture turns it into pass, skip or a failure."""

from __future__ import annotations

from typing import Callable

import pytest

Verdict = Callable[[str], object]
Budget = Callable[[str, object], object]


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


def test_portability(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("portability")


def test_determinism(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("determinism")


def test_accuracy(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("accuracy")


def test_roundtrip(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("roundtrip")


# Budgets (`budgets:` in the manifest): collected only for artifacts that declare them, once per device, as
# `test_latency[<id>-cpu]`. They measure through pytest-benchmark's fixture and never run under xdist.
def test_latency(model_checks_budget: Budget, benchmark: object) -> None:
    model_checks_budget("latency", benchmark)


def test_throughput(model_checks_budget: Budget, benchmark: object) -> None:
    model_checks_budget("throughput", benchmark)


def test_speedup(model_checks_budget: Budget, benchmark: object) -> None:
    model_checks_budget("speedup", benchmark)


def test_tfmot_quantize(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("tfmot_quantize")


def test_tfmot_prune(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("tfmot_prune")


# Serving (`serving:` in the manifest): the artifact behind its own service on loopback, load-tested open-loop.
# Marked `serving` (select with -m serving); never under xdist (it skips there and says why).
@pytest.mark.serving
def test_serving(model_checks_verdict: Verdict) -> None:
    model_checks_verdict("serving")
