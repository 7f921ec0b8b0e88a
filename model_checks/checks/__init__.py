"""The built-in checks. Each module declares itself once, `CHECK = Check(NAME, run, ...)` (`checks/registry.py`:
where it applies, its markers, whether its failure blocks the rest, its summary cell and figures); the plugin
builds one test `test_<name>[<artifact id>]` per applicable check from that declaration, the summary one column.
Adding a check is adding a module and a line in CHECKS. The budget checks (latency, throughput, speedup, in
`budgets/`) are measured per device through pytest-benchmark's fixture."""

from __future__ import annotations

import importlib
from functools import cache
from types import ModuleType

from model_checks.checks.registry import Check
from model_checks.core.artifact import Artifact
from model_checks.core.errors import ModelChecksError

# The checks' modules (`module` holds CHECK; `module:NAME` another declaration); the order is the run order,
# cheapest first.
CHECKS: tuple[str, ...] = (
    "model_checks.checks.manifest",
    "model_checks.checks.integrity",
    "model_checks.checks.metadata",
    "model_checks.checks.limits",
    "model_checks.checks.equivalence",
    "model_checks.checks.portability",
    "model_checks.checks.determinism",
    "model_checks.checks.accuracy",
    "model_checks.checks.roundtrip",
    "model_checks.checks.tfmot_quantize",
    "model_checks.checks.tfmot_prune",
    "model_checks.serving.check",
    "model_checks.checks.budgets.declare:LATENCY",
    "model_checks.checks.budgets.declare:THROUGHPUT",
    "model_checks.checks.budgets.declare:SPEEDUP",
)
FIRST = "manifest"  # runs first, and alone for an artifact whose manifest is invalid


def declaration(entry: str) -> Check:
    """The Check a CHECKS entry names; a module without one is a message naming what to add."""
    path, _, attr = entry.partition(":")
    try:
        mod = importlib.import_module(path)
    except ValueError as e:  # a declaration that contradicts itself (Check.__post_init__)
        raise ModelChecksError(f"{entry}: {e}") from None
    found = getattr(mod, attr or "CHECK", None)
    if not isinstance(found, Check):
        raise ModelChecksError(
            f"{entry} is listed in model_checks.checks.CHECKS but declares no check: end the module with "
            f"`{attr or 'CHECK'} = Check(NAME, run, ...)` (model_checks/checks/registry.py)"
        )
    return found


def registry() -> dict[str, Check]:
    """name -> Check, in run order (as CHECKS lists them now); two of one name are a message, not an override."""
    return _registry(CHECKS)


@cache
def _registry(entries: tuple[str, ...]) -> dict[str, Check]:
    found: dict[str, Check] = {}
    for entry in entries:
        check = declaration(entry)
        if check.name in found:
            raise ModelChecksError(
                f"two checks are named {check.name!r} in model_checks.checks.CHECKS ({entry} and another)"
            )
        found[check.name] = check
    return found


def get(name: str) -> Check:
    """The declared check `name`; an unknown name is a message listing the known ones."""
    checks = registry()
    if name not in checks:
        raise ModelChecksError(f"no check named {name!r}; known: {', '.join(checks)}")
    return checks[name]


def module(name: str) -> ModuleType:
    """The module that declares check `name`."""
    return importlib.import_module(get(name).run.__module__)


def applicable(artifact: Artifact, nightly: bool = False) -> list[str]:
    """Checks to collect for an artifact; an invalid manifest gets only `manifest`, which fails. `nightly` adds the
    checks a nightly run makes of every artifact (`Check.nightly`: determinism)."""
    if artifact.manifest is None:
        return [FIRST]
    m = artifact.manifest
    return [name for name, c in registry().items() if c.applies is None or c.applies(m) or (nightly and c.nightly)]
