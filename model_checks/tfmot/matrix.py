"""The Keras Applications matrix: every constructor in `tf_keras.applications`, random weights, with and
without the top, tried for quantization-aware training and for pruning. Library code: the command
`model-checks tfmot-matrix` and the nightly test both call `run_matrix` and `render`."""

from __future__ import annotations

import gc
import json
import time
from collections import Counter
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

import numpy as np

from model_checks.backends.keras.loader import keras_modules
from model_checks.tfmot.problems import Problem
from model_checks.tfmot.quantize import MAX_REL_L2

DEFAULT_SIZE = 32  # the smallest input most applications accept: the matrix asks "does tfmot apply", not accuracy
MIN_SIZE = {"InceptionV3": 75, "InceptionResNetV2": 75, "Xception": 71, "NASNetLarge": 32}
CLASSES = 10
# The smallest member of each family first, so a run cut short by its time budget still covers every family.
FIRST = (
    "MobileNet",
    "MobileNetV2",
    "MobileNetV3Small",
    "EfficientNetB0",
    "EfficientNetV2B0",
    "ResNet50",
    "ResNet50V2",
    "ResNetRS50",
    "DenseNet121",
    "RegNetX002",
    "RegNetY002",
    "ConvNeXtTiny",
    "NASNetMobile",
    "VGG16",
    "Xception",
    "InceptionV3",
    "InceptionResNetV2",
)


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
        if self.ok and self.note.startswith("rel_l2"):  # quantize: it applies; how close it stays is the other fact
            far = " (too far: the per-artifact check fails it)" if ">" in self.note else ""
            return f"applies; {self.note}{far}"
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
    phases: Mapping[str, float] = field(default_factory=dict)  # seconds: build, quantize, prune
    quantize_rel_l2: float | None = None  # the fake-quantized model against the float one, before any training


@dataclass
class Matrix:
    entries: list[Entry] = field(default_factory=list)
    not_run: list[tuple[str, bool]] = field(default_factory=list)  # left out by the time budget
    seconds: float = 0.0  # wall time of this run
    carried: int = 0  # entries taken from the results of earlier runs (`--resume`), not re-run

    def counts(self) -> dict[str, int]:
        return {
            "entries": len(self.entries),
            "quantize_pass": sum(e.quantize.ok for e in self.entries),
            "prune_pass": sum(e.prune.ok for e in self.entries),
            "both_pass": sum(e.quantize.ok and e.prune.ok for e in self.entries),
            "quantize_close": sum(
                e.quantize.ok and e.quantize_rel_l2 is not None and e.quantize_rel_l2 <= MAX_REL_L2
                for e in self.entries
            ),
            "not_run": len(self.not_run),
        }

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
    """The application with seeded random weights: the same weights on every run, so the distances to the float
    model and a divergence of the short fit repeat. Whether a transform applies does not depend on the weights
    (the fingerprint leaves the seed out: entries recorded before seeding stay valid for that)."""
    _, keras = keras_modules()
    keras.utils.set_random_seed(0)
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
    t1 = time.perf_counter()
    x = [np.random.default_rng(0).uniform(0, 255, (batch, size, size, 3)).astype(np.float32)]
    q = check_quantize(model, x, roundtrip=False)
    # The matrix asks whether QAT applies and runs; how close the fake-quantized model stays is shown, not gated:
    # with random weights and one calibration pass, deep feature maps (no top) can sit far from the float ones.
    far = q.rel_l2 is not None and q.rel_l2 > q.max_rel_l2
    quantize = Outcome(
        q.applied,
        q.problems,
        "" if q.rel_l2 is None else f"rel_l2 {q.rel_l2:.2g}" + (f" > {q.max_rel_l2:g}" if far else ""),
    )
    t2 = time.perf_counter()
    p = check_prune(model, x)
    prune = Outcome(
        bool(p),
        p.problems,
        (f"fit diverged in {len(p.diverged)} layer(s)" if p.diverged else "")
        if p or p.problems
        else "; ".join(p.lines())[:160],
    )
    t3 = time.perf_counter()
    phases = {"build": round(t1 - t0, 2), "quantize": round(t2 - t1, 2), "prune": round(t3 - t2, 2)}
    entry = Entry(app, top, size, int(model.count_params()), quantize, prune, t3 - t0, phases, q.rel_l2)
    del model
    keras.backend.clear_session()
    gc.collect()
    return entry


def run_matrix(
    apps: Iterable[str] | None = None,
    tops: Iterable[bool] = (False, True),
    budget_s: float | None = None,
    on_entry: Callable[[Entry], None] | None = None,
    done: Mapping[tuple[str, bool], Entry] | None = None,
) -> Matrix:
    """Every (application, top) pair in order; pairs in `done` are taken as they are, pairs left when `budget_s`
    runs out are listed as not run."""
    pairs = [(a, t) for a in (list(apps) if apps is not None else constructors()) for t in tops]
    done = done or {}
    m = Matrix()
    t0 = time.perf_counter()
    for app, top in pairs:
        if (app, top) in done:
            m.entries.append(done[(app, top)])
            m.carried += 1
        elif budget_s is not None and time.perf_counter() - t0 > budget_s:
            m.not_run.append((app, top))
        else:
            entry = run_entry(app, top)
            m.entries.append(entry)
            if on_entry:
                on_entry(entry)
    m.seconds = time.perf_counter() - t0
    return m


# Results of each entry, one JSON line each, so that a run cut short by its budget (or by a nightly's time limit)
# can be taken up again; lines written under other library versions are never mixed in.
# The modules whose code decides an entry's outcome; a change to any of them makes recorded entries stale.
DECIDING = ("prune.py", "quantize.py", "problems.py")


def matrix_fingerprint() -> dict[str, str]:
    """What a recorded entry depends on: the library versions, the matrix's settings, and our deciding code."""
    import hashlib

    from model_checks.tfmot.quantize import tfmot_module

    tf, keras = keras_modules()
    here = Path(__file__).resolve().parent
    code = hashlib.sha256(b"".join((here / name).read_bytes() for name in DECIDING)).hexdigest()[:16]
    return {
        "tensorflow": tf.__version__,
        "tf-keras": keras.__version__,
        "tfmot": tfmot_module().__version__,
        "input": str(DEFAULT_SIZE),
        "classes": str(CLASSES),
        "code": code,
    }


def entry_line(e: Entry, fp: Mapping[str, str]) -> str:
    return json.dumps({"fingerprint": dict(fp), **asdict(e)}, sort_keys=True)


def _outcome(d: Mapping[str, Any]) -> Outcome:
    return Outcome(bool(d["ok"]), tuple(Problem(**p) for p in d["problems"]), d["note"])


def load_results(path: Path, fp: Mapping[str, str]) -> tuple[dict[tuple[str, bool], Entry], int]:
    """Entries recorded in `path` under the fingerprint `fp` (the last line for a pair wins), and how many
    lines were left out because another fingerprint (or no readable one) wrote them."""
    done: dict[tuple[str, bool], Entry] = {}
    other = 0
    lines = path.read_text().splitlines() if path.is_file() else []
    for line in filter(str.strip, lines):
        try:
            d = json.loads(line)
            if d.pop("fingerprint") != dict(fp):
                other += 1
                continue
            e = Entry(
                d["app"],
                bool(d["top"]),
                int(d["size"]),
                int(d["params"]),
                _outcome(d["quantize"]),
                _outcome(d["prune"]),
                float(d["seconds"]),
                dict(d.get("phases", {})),
                d.get("quantize_rel_l2"),
            )
        except (ValueError, KeyError, TypeError):
            other += 1
            continue
        done[(e.app, e.top)] = e
    return done, other


class Results:
    """The JSON-lines record of matrix runs at `path`: when resuming, the entries earlier runs left under this
    fingerprint (`done`) and how many lines another fingerprint wrote (`other`); otherwise a fresh file. Each new
    entry is appended by `record` as soon as it finishes, so a run cut short keeps what it did."""

    def __init__(self, path: Path, resume: bool):
        self.path, self.fp = path, matrix_fingerprint()
        path.parent.mkdir(parents=True, exist_ok=True)
        self.done, self.other = load_results(path, self.fp) if resume else ({}, 0)
        if not resume:
            path.write_text("")

    def record(self, e: Entry) -> None:
        with self.path.open("a") as f:
            f.write(entry_line(e, self.fp) + "\n")


def _label(app: str, top: bool) -> str:
    return app if top else f"{app} (no top)"


def render(m: Matrix) -> str:
    """The matrix as markdown: counts, failure classes, one row per (application, top)."""
    c = m.counts()
    carried = (
        (
            f" ({m.carried} of them carried over from earlier runs with the same library versions; "
            f"{sum(e.seconds for e in m.entries):.0f} s of work in all)"
        )
        if m.carried
        else ""
    )
    lines = [
        "# tfmot compatibility of Keras Applications",
        "",
        f"Random weights, input {DEFAULT_SIZE}x{DEFAULT_SIZE} (larger where an application needs it), {CLASSES} classes with the top. "
        "Quantize: QAT with BatchNormalization on an 8-bit moving-average config and preprocessing layers on a no-op config, "
        "wrapped model run after calibration, its distance to the float model shown (save/load is left to the per-artifact check). Prune: supported layers wrapped, "
        "a 2-step fit with UpdatePruningStep and PruningSummaries must reach 0.5 sparsity.",
        "",
        f"{c['entries']} configurations in {m.seconds:.0f} s{carried}: quantize applies to {c['quantize_pass']}, prune passes {c['prune_pass']}, "
        f"both {c['both_pass']}. Of those quantize applies to, {c['quantize_close']} stay within rel_l2 {MAX_REL_L2:g} of the float model before "
        "training; the rest run but sit further off (random weights, one calibration pass; the per-artifact check gates it)."
        + (
            f" **{c['not_run']} not run** (time budget): {', '.join(_label(a, t) for a, t in m.not_run)}."
            if m.not_run
            else ""
        ),
        "",
    ]
    for t in ("quantize", "prune"):
        fc = m.failure_classes(t)
        lines.append(f"- {t} failures by class: " + (", ".join(f"{k} {v}" for k, v in fc.most_common()) or "none"))
    lines += ["", "| application | top | input | params | quantize | prune | s |", "|---|---|---|---|---|---|---|"]
    for e in m.entries:
        lines.append(
            f"| {e.app} | {'yes' if e.top else 'no'} | {e.size} | {e.params / 1e6:.1f}M | {e.quantize.cell()} | {e.prune.cell()} | {e.seconds:.0f} |"
        )
    return "\n".join(lines) + "\n"
