"""The Keras Applications matrix: every constructor in `tf_keras.applications`, random weights, with and
without the top, tried for quantization-aware training and for pruning. Library code: the command
`model-checks tfmot-matrix` and the nightly test both call `run_matrix` and `render`."""

from __future__ import annotations

import gc
import time
from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Callable, Iterable

import numpy as np

from model_checks.backends.keras.loader import keras_modules
from model_checks.tfmot.problems import Problem

DEFAULT_SIZE = 32  # the smallest input most applications accept: the matrix asks "does tfmot apply", not accuracy
MIN_SIZE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71, "NASNetLarge": 32}
CLASSES = 10
# The smallest member of each family first, so a run cut short by its time budget still covers every family.
FIRST = ("MobileNet", "MobileNetV2", "MobileNetV3Small", "EfficientNetB0", "EfficientNetV2B0", "ResNet50", "ResNet50V2", "ResNetRS50",
         "DenseNet121", "RegNetX002", "RegNetY002", "ConvNeXtTiny", "NASNetMobile", "VGG16", "Xception", "InceptionV3", "InceptionResNetV2")


@dataclass(frozen=True)
class Outcome:
    """One transform on one application: passed, or the problems (by class), or an error before tfmot ran."""

    ok: bool
    problems: tuple[Problem, ...] = ()
    note: str = ""

    @property
    def classes(self) -> tuple[str, ...]:
        return tuple(sorted({p.reason for p in self.problems}))

    def cell(self) -> str:
        if self.ok:
            return "pass" + (f" ({self.note})" if self.note else "")
        if not self.problems:
            return f"FAIL: {self.note}"
        first = self.problems[0]
        more = f" (+{len(self.problems) - 1} more)" if len(self.problems) > 1 else ""
        return f"FAIL {', '.join(self.classes)}: `{first.layer}` ({first.layer_class}){more}"


@dataclass(frozen=True)
class Entry:
    app: str
    top: bool
    size: int
    params: int
    quantize: Outcome
    prune: Outcome
    seconds: float


@dataclass
class Matrix:
    entries: list[Entry] = field(default_factory=list)
    not_run: list[tuple[str, bool]] = field(default_factory=list)  # left out by the time budget
    seconds: float = 0.0

    def counts(self) -> dict[str, int]:
        return {"entries": len(self.entries), "quantize_pass": sum(e.quantize.ok for e in self.entries),
                "prune_pass": sum(e.prune.ok for e in self.entries), "both_pass": sum(e.quantize.ok and e.prune.ok for e in self.entries),
                "not_run": len(self.not_run)}

    def failure_classes(self, transform: str) -> Counter:
        c: Counter = Counter()
        for e in self.entries:
            o = getattr(e, transform)
            if not o.ok:
                c.update(o.classes or ("error before tfmot",))
        return c


def constructors() -> list[str]:
    """Every application constructor, ordered so that each family's smallest member comes first."""
    _, keras = keras_modules()
    names = sorted(n for n in dir(keras.applications) if n[0].isupper() and callable(getattr(keras.applications, n)))
    return [n for n in FIRST if n in names] + [n for n in names if n not in FIRST]


def build(app: str, top: bool, size: int) -> Any:
    _, keras = keras_modules()
    kwargs: dict[str, Any] = {"weights": None, "include_top": top, "input_shape": (size, size, 3)}
    if top:
        kwargs["classes"] = CLASSES
    return getattr(keras.applications, app)(**kwargs)


def run_entry(app: str, top: bool, size: int | None = None, batch: int = 2) -> Entry:
    """Build the application, then try each transform; an exception while building is the row's note."""
    from model_checks.tfmot.prune import check_prune
    from model_checks.tfmot.quantize import check_quantize

    _, keras = keras_modules()
    size = size or max(DEFAULT_SIZE, MIN_SIZE.get(app, 0))
    t0 = time.perf_counter()
    try:
        model = build(app, top, size)
    except Exception as e:
        bad = Outcome(False, note=f"cannot build: {type(e).__name__}: {str(e).splitlines()[0][:120]}")
        return Entry(app, top, size, 0, bad, bad, time.perf_counter() - t0)
    x = [np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype(np.float32)]
    q = check_quantize(model, x, roundtrip=False)
    quantize = Outcome(q.applied, q.problems, f"rel_l2 {q.rel_l2:.2g}" if q.rel_l2 is not None and q.rel_l2 <= q.max_rel_l2 else "")
    p = check_prune(model, x)
    prune = Outcome(bool(p), p.problems, "" if p or p.problems else "; ".join(p.lines())[:160])
    entry = Entry(app, top, size, int(model.count_params()), quantize, prune, time.perf_counter() - t0)
    del model
    keras.backend.clear_session()
    gc.collect()
    return entry


def run_matrix(apps: Iterable[str] | None = None, tops: Iterable[bool] = (False, True), budget_s: float | None = None,
               on_entry: Callable[[Entry], None] | None = None) -> Matrix:
    """Every (application, top) pair in order; pairs left when `budget_s` runs out are listed as not run."""
    pairs = [(a, t) for a in (list(apps) if apps is not None else constructors()) for t in tops]
    m = Matrix()
    t0 = time.perf_counter()
    for i, (app, top) in enumerate(pairs):
        if budget_s is not None and time.perf_counter() - t0 > budget_s:
            m.not_run = pairs[i:]
            break
        entry = run_entry(app, top)
        m.entries.append(entry)
        if on_entry:
            on_entry(entry)
    m.seconds = time.perf_counter() - t0
    return m


def _label(app: str, top: bool) -> str:
    return app if top else f"{app} (no top)"


def render(m: Matrix) -> str:
    """The matrix as markdown: counts, failure classes, one row per (application, top)."""
    c = m.counts()
    lines = ["# tfmot compatibility of Keras Applications", "",
             f"Random weights, input {DEFAULT_SIZE}x{DEFAULT_SIZE} (larger where an application needs it), {CLASSES} classes with the top. "
             "Quantize: QAT with BatchNormalization on an 8-bit moving-average config and preprocessing layers on a no-op config, "
             "wrapped model run after calibration (save/load is left to the per-artifact check). Prune: supported layers wrapped, "
             "a 2-step fit with UpdatePruningStep and PruningSummaries must reach 0.5 sparsity.", "",
             f"{c['entries']} configurations in {m.seconds:.0f} s: quantize passes {c['quantize_pass']}, prune passes {c['prune_pass']}, "
             f"both {c['both_pass']}." + (f" **{c['not_run']} not run** (time budget): {', '.join(_label(a, t) for a, t in m.not_run)}." if m.not_run else ""), ""]
    for t in ("quantize", "prune"):
        fc = m.failure_classes(t)
        lines.append(f"- {t} failures by class: " + (", ".join(f"{k} {v}" for k, v in fc.most_common()) or "none"))
    lines += ["", "| application | top | input | params | quantize | prune | s |", "|---|---|---|---|---|---|---|"]
    for e in m.entries:
        lines.append(f"| {e.app} | {'yes' if e.top else 'no'} | {e.size} | {e.params / 1e6:.1f}M | {e.quantize.cell()} | {e.prune.cell()} | {e.seconds:.0f} |")
    return "\n".join(lines) + "\n"
