"""Localisation of an ONNX artifact against an ONNX reference: match tensors, measure them chunk by chunk,
and say which node introduced the error. Module-level functions with picklable results, so they run in
the ONNX worker process when models are isolated."""

from __future__ import annotations

import time
from functools import partial
from pathlib import Path
from typing import Mapping

import numpy as np

from model_checks.localize.match import match
from model_checks.localize.report import Localization, Row, Sqnr
from model_checks.localize.runner import Caps, Exposed, compare_pairs
from model_checks.core.metrics import rel_l2


def _measure(got: np.ndarray, want: np.ndarray, sqnr: bool = False) -> tuple[float, float | None] | str:
    if got.shape != want.shape:
        return f"shape {list(got.shape)} here, {list(want.shape)} in the reference"
    g, w = np.asarray(got, np.float64), np.asarray(want, np.float64)
    if not (np.isfinite(g).all() and np.isfinite(w).all()):
        bad = "here" if not np.isfinite(g).all() else "in the reference"
        return f"NaN or Inf {bad}"
    if not sqnr:  # onnxruntime.quantization is imported only for quantized models
        return rel_l2(g, w), None
    from model_checks.localize.sqnr import activation_db

    return rel_l2(g, w), activation_db(g, w)


def localize(artifact_path: Path, reference_path: Path, root: Path, feeds: Mapping[str, np.ndarray], case: str,
             limit: float | None = None, limit_source: str = "", caps: Caps = Caps()) -> Localization:
    """The table for one case: each comparable tensor's rel_l2 against the reference and the error it introduces."""
    from model_checks.backends.onnx.loader import load_proto
    from model_checks.localize import sqnr

    start = time.monotonic()
    art = load_proto(artifact_path, root)
    ref = load_proto(reference_path, root)
    pairs, skipped, absent = match(art, ref)
    quantized = sqnr.is_qdq(art)
    measured, unmeasured = compare_pairs(Exposed(art, feeds), Exposed(ref, feeds), [(p.tensor, p.reference) for p in pairs], caps,
                                         partial(_measure, sqnr=quantized))
    rows: list[Row] = []
    errors: dict[str, float] = {}
    skip = [(s.tensor, s.reason) for s in skipped]
    act_db: list[Sqnr] = []
    for p in pairs:
        m = measured.get((p.tensor, p.reference))
        if m is None:
            continue
        if isinstance(m, str):
            skip.append((p.tensor, m))
            continue
        err, db = m
        errors[p.tensor] = err
        base = max((errors[u] for u in p.upstream if u in errors), default=0.0)
        rows.append(Row(p.tensor, p.reference, p.node, p.op, err, err - base, p.note))
        if quantized and db is not None and p.tensor != p.reference:
            act_db.append(Sqnr(p.reference, "activation", db, p.node))
    worst = tuple(sorted([*act_db, *(sqnr.weights(reference_path, artifact_path) if quantized else [])], key=lambda s: s.db))
    return Localization(case, tuple(rows), tuple(skip), absent, unmeasured, limit, limit_source, worst,
                        {"time_s": caps.time_s, "memory_mb": caps.memory_mb}, time.monotonic() - start)
