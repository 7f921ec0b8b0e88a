"""The spare worker's process, started when the plugin is loaded rather than at pytest_configure: its interpreter
starts while pytest loads the rest of its plugins and parses the command line (~0.05-0.1 s sooner).

pytest has parsed nothing yet when the plugin is loaded, so this reads the command line itself (the arguments,
PYTEST_ADDOPTS, the ini's addopts) and starts the process only for a run that names `--model-checks` and asks for
none of what runs no check (--help, --version, --collect-only, listings, xdist's controller, isolation off). It is a
guess: pytest_configure decides with the parsed options and hands the process to the session's workers
(`Workers.start_spare`), which give it its limits and the backends' table then, or ends it. Until then the process
only waits: no limits, no model, no path from the tree."""

from __future__ import annotations

import os
import shlex
import threading
from typing import TYPE_CHECKING

import pytest

if TYPE_CHECKING:
    from model_checks.isolation.workers import Worker

LAUNCHED_KEY = pytest.StashKey["Worker"]()
# Flags after which this run checks nothing in this process (pytest's, xdist's, ours), by their exact spelling.
_NO_RUN = frozenset(
    {
        "-h",
        "--help",
        "-V",
        "--version",
        "--co",
        "--collect-only",
        "--collectonly",
        "--fixtures",
        "--funcargs",
        "--fixtures-per-test",
        "--markers",
        "-n",
        "--numprocesses",
        "--dist",
        "-f",
        "--looponfail",
        "--model-checks-isolate=off",
    }
)
_NO_RUN_PREFIXES = ("-n", "--numprocesses=", "--dist=", "--tx")


def gate_asked(args: list[str]) -> bool:
    """Whether `args` name the gate's roots and none of what runs no check (see the module's docstring)."""
    asked = False
    for i, a in enumerate(args):
        if a in _NO_RUN or a.startswith(_NO_RUN_PREFIXES):
            return False
        if a == "--model-checks-isolate" and args[i + 1 : i + 2] == ["off"]:
            return False
        asked = asked or a == "--model-checks" or a.startswith("--model-checks=")
    return asked


def launch(config: pytest.Config) -> None:
    """Start the spare's process if this run asks for the gate (the plugin's pytest_addoption, at load time)."""
    if os.environ.get("PYTEST_XDIST_WORKER") or threading.current_thread() is not threading.main_thread():
        return  # (a worker dies with the thread that started it: PR_SET_PDEATHSIG)
    try:
        args = [*config.getini("addopts"), *shlex.split(os.environ.get("PYTEST_ADDOPTS", "")),
                *map(str, config.invocation_params.args)]  # fmt: skip
    except (ValueError, TypeError):  # an ini pytest will refuse: it says so itself
        return
    if not gate_asked(args):
        return
    from model_checks.isolation.workers import discard, launch_spare

    try:
        w = config.stash[LAUNCHED_KEY] = launch_spare()
    except OSError:  # no sandbox or no process now (a full disk, a process limit): configure starts one, or says why
        return
    config.add_cleanup(lambda: discard(w) if config.stash.get(LAUNCHED_KEY, None) is w else None)


def take(config: pytest.Config) -> Worker | None:
    """The process `launch` started, for the session's workers (pytest_configure), or None."""
    w = config.stash.get(LAUNCHED_KEY, None)
    if w is not None:
        del config.stash[LAUNCHED_KEY]
    return w
