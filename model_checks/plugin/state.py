"""What the plugin keeps in `config.stash` and on items: the gate's session, the options, and each gate item's
(artifact, device)."""

from __future__ import annotations

from typing import Any

import pytest

SESSION_KEY = pytest.StashKey["Any"]()
OPTIONS_KEY = pytest.StashKey["Any"]()
RELEASE_KEY = pytest.StashKey[dict]()
ITEM_KEY = pytest.StashKey[tuple]()  # (artifact, device) of a gate item
NO_ROOTS = "no artifact roots: pass --model-checks DIR or set model_checks_roots in the ini file"


def session(config: pytest.Config) -> Any:
    """The GateSession of a run with artifact roots, else None."""
    return config.stash.get(SESSION_KEY, None)


def options(config: pytest.Config) -> Any:
    """The run's `Options` (set whenever the run has artifact roots)."""
    return config.stash[OPTIONS_KEY]


def artifact_of(item: pytest.Item) -> Any:
    """The artifact a test checks: a gate item's own, or a user test's parameter."""
    if ITEM_KEY in item.stash:
        return item.stash[ITEM_KEY][0]
    callspec = getattr(item, "callspec", None)
    return callspec.params.get("model_checks_artifact") if callspec else None
