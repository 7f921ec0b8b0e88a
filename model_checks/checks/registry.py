"""What a check declares about itself, once, for everything that lists checks: collection (which artifacts it
applies to, its markers, whether it is measured per device), the session (whether its failure blocks the
artifact's later checks) and the reports (its summary cell and figure columns). Each check module ends with
`CHECK = Check(...)`; `checks/__init__.py`'s CHECKS names the modules, in run order. Imports nothing heavy."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable, Literal, Sequence

Blocking = Literal["failure", "model", "never"]


@dataclass(frozen=True)
class Figure:
    """A column of summary.md read from a check's figures: `format(figures[key], spec)`, `-` when absent."""

    header: str
    key: str
    spec: str = ".3g"


@dataclass(frozen=True)
class Check:
    """One check, as collection, the session and the reports see it.

    - `run(ctx) -> CheckResult`; a check measured per device (`per_device`) is run as
      `run(name, ctx, device, benchmark, options)` through pytest-benchmark's fixture instead.
    - `applies(manifest)`: whether an artifact with a valid manifest gets this check (None: every one).
    - `variants(manifest)`: the items it gets, `test_<name>[<id>-<variant>]` for each, None for the plain
      `test_<name>[<id>]` (None: one plain item); for a check measured per device, the devices.
    - `markers`: (name, description) of the pytest markers its items carry, registered by the plugin.
    - `blocking`: what a failure means for the artifact's later checks: "failure" (any failure: they cannot run,
      as after an invalid manifest), "model" (a failure saying the model cannot be had at all, refused, unsafe,
      unloadable or its framework missing, is read once and the later checks say so), "never".
    - `nightly`: also collected for every artifact when the run writes the nightly report (`applies` aside).
    - `machine_dependent`: its verdict depends on the machine (timings, int8 arithmetic): the machine's properties
      travel with it, and a merge of shards from different machines names it.
    - `timed`: it times the model (budgets, a service's load test): every worker first finishes what it was sent,
      so that nothing sent ahead for another artifact shares the cores with the measurement.
    - `figures`: columns of summary.md taken from its figures; `cell(status, figures)`: its own status cell
      (default: the status), under `column` (default: its name)."""

    name: str
    run: Callable[..., Any]
    applies: Callable[[Any], bool] | None = None
    markers: tuple[tuple[str, str], ...] = ()
    blocking: Blocking = "model"
    per_device: bool = False
    variants: Callable[[Any], Sequence[str | None]] | None = None
    nightly: bool = False
    machine_dependent: bool = False
    timed: bool = False
    figures: tuple[Figure, ...] = ()
    column: str | None = None
    cell: Callable[[str, dict], str] | None = None

    def __post_init__(self) -> None:
        if self.blocking not in ("failure", "model", "never"):
            raise ValueError(
                f"check {self.name!r}: blocking is {self.blocking!r}; it must be 'failure', 'model' or 'never'"
            )

    @property
    def header(self) -> str:
        return self.column or self.name
