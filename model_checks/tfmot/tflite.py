"""Where the tfmot road ends: the QAT model converted to a full-integer TFLite model, run in LiteRT, and held
against the float Keras model on the samples. Asked for by `tfmot: {quantize: true, tflite: true}`; runs in the
Keras worker as one call (tfmot rewrites the model object there), and only the report comes back."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Mapping

import numpy as np

from model_checks.manifest.model import TensorSpec

COLUMNS = ("float", "QAT", "TFLite int8")


@dataclass(frozen=True)
class TFLiteReport:
    """Truthy when the full-integer TFLite model holds `limits` against the float model on `n` samples."""

    n: int
    source: str  # where the inputs came from: the artifact's samples, or generated
    figures: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # column -> metric -> value
    limits: Mapping[str, float] = field(default_factory=dict)
    failures: tuple[str, ...] = ()
    problem: str | None = None  # the conversion or the run failed: what happened

    def __bool__(self) -> bool:
        return self.problem is None and not self.failures

    def table(self) -> list[str]:
        """The float, QAT and TFLite figures side by side, against the float model."""
        metrics = sorted({m for col in self.figures.values() for m in col})
        head = f"    {'against the float model':<26}" + "".join(f"{c:>14}" for c in COLUMNS)
        rows = [head]
        for m in metrics:
            cells = "".join(f"{self.figures.get(c, {}).get(m, float('nan')):>14.4g}" for c in COLUMNS)
            limit = self.limits.get(m)
            rows.append(
                f"    {m:<26}{cells}"
                + (f"   limit {'>=' if m == 'top1_agreement' else '<='} {limit:g}" if limit is not None else "")
            )
        return rows

    def __str__(self) -> str:
        if self.problem:
            return f"the QAT model does not convert to a full-integer TFLite model that runs: {self.problem}"
        t = self.figures.get("TFLite int8", {})
        figs = ", ".join(f"{k} {v:.3g}" for k, v in t.items())
        verdict = "holds" if self else "does not hold"
        return f"full-integer TFLite (LiteRT) {verdict} against the float model on {self.n} {self.source}: {figs}"


def _metrics(got: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    from model_checks.core.metrics import rel_l2

    out = {"rel_l2": float(rel_l2(got.astype(np.float64), ref.astype(np.float64)))}
    if ref.ndim == 2 and ref.shape[1] > 1:
        out["top1_agreement"] = float(np.mean(np.argmax(got, -1) == np.argmax(ref, -1)))
    return out


def tflite_report(
    path: Path,
    fmt: str,
    declared: tuple[TensorSpec, ...] | None,
    trust_code: bool,
    seed: int,
    samples: np.ndarray | None,
) -> TFLiteReport:
    """QAT (calibrated, then a short fit to the float model's outputs), full-integer conversion, LiteRT run:
    the three models' outputs against the float model's. Module-level, so a worker process can run it."""
    from model_checks.producers.tflite_convert import TOLERANCE, keras_list, litert_outputs, qat_model, to_tflite
    from model_checks.tfmot.artifact import model_and_feeds
    from model_checks.tfmot.quantize import as_list

    model, feeds = model_and_feeds(path, fmt, declared, trust_code, seed)
    limits = {k: v for k, v in TOLERANCE["int8"].items() if v is not None}
    if len(feeds) != 1 or len(model.outputs) != 1:
        return TFLiteReport(
            0,
            "",
            limits=limits,
            problem=f"the TFLite step handles models with one input and one output "
            f"({len(feeds)} and {len(model.outputs)} here)",
        )
    x, source = (np.asarray(samples, np.float32), "samples") if samples is not None else (feeds[0], "generated inputs")
    try:
        qmodel = qat_model(model, x)
        data = to_tflite(qmodel, "int8", x, "int8", qat=True, names=(model.input_names[0], list(model.output_names)))
        lite = next(iter(litert_outputs(data, x).values()))
    except Exception as e:
        return TFLiteReport(
            len(x), source, limits=limits, problem=f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
        )
    ref = np.asarray(keras_list(model(x, training=False))[0])
    figures = {
        "float": _metrics(ref, ref),
        "QAT": _metrics(as_list(qmodel(x, training=False))[0], ref),
        "TFLite int8": _metrics(lite, ref),
    }
    failures = []
    for m, limit in limits.items():
        v = figures["TFLite int8"].get(m)
        if v is not None and (v < limit if m == "top1_agreement" else v > limit):
            failures.append(f"{m} {v:.4g} {'below' if m == 'top1_agreement' else 'over'} the limit {limit:g}")
    return TFLiteReport(len(x), source, figures, limits, tuple(failures))
