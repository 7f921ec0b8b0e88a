"""Where the tfmot road ends: the QAT model converted to a full-integer TFLite model, run in LiteRT, and held
against the float Keras model on the samples under the artifact's `tolerance` (the spec: "holds `tolerance`
against this float model"), resolved as equivalence resolves it. Asked for by `tfmot: {quantize: true, tflite:
true}`; runs in the Keras worker as one call (tfmot rewrites the model object there), and only the figures
come back; the parent judges them."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Mapping

import numpy as np

from model_checks.core.metrics import FLOAT_METRICS, HIGHER_IS_BETTER, METRIC_FUNCS, MetricRow
from model_checks.manifest.model import Limit, TensorSpec

COLUMNS = ("float", "QAT", "TFLite int8")


@dataclass(frozen=True)
class TFLiteReport:
    """The float, QAT and full-integer TFLite models' figures against the float model on `n` inputs, for the
    model's one output `output`; judged (`judge`) against the artifact's tolerance for that output, truthy
    when the TFLite model holds every limit in it."""

    n: int
    source: str  # where the inputs came from: the artifact's samples, or generated
    output: str = ""
    figures: Mapping[str, Mapping[str, float]] = field(default_factory=dict)  # column -> metric -> value
    limits: Mapping[str, Limit] = field(default_factory=dict)  # metric -> the artifact's limit and its source
    failures: tuple[str, ...] = ()
    problem: str | None = None  # the conversion or the run failed: what happened

    def __bool__(self) -> bool:
        return self.problem is None and not self.failures

    def table(self) -> list[str]:
        """The float, QAT and TFLite figures side by side, against the float model, with each gated limit."""
        metrics = [m for m in FLOAT_METRICS if any(m in col for col in self.figures.values())]
        head = f"    {'against the float model':<26}" + "".join(f"{c:>14}" for c in COLUMNS)
        rows = [head]
        for m in metrics:
            cells = "".join(f"{self.figures.get(c, {}).get(m, float('nan')):>14.4g}" for c in COLUMNS)
            lim = self.limits.get(m)
            op = ">=" if m in HIGHER_IS_BETTER else "<="
            rows.append(f"    {m:<26}{cells}" + (f"   limit {op} {lim.value:g} ({lim.source})" if lim else ""))
        return rows

    def __str__(self) -> str:
        if self.problem:
            return f"the QAT model does not convert to a full-integer TFLite model that runs: {self.problem}"
        t = self.figures.get("TFLite int8", {})
        gated = [m for m in t if m in self.limits] or list(t)
        figs = ", ".join(f"{m} {t[m]:.3g}" for m in gated)
        verdict = "holds" if self else "does not hold"
        return (
            f"full-integer TFLite (LiteRT) {verdict} the tolerance against the float model on {self.n} "
            f"{self.source}: {figs}"
        )


def judge(report: TFLiteReport, limits: Mapping[str, Limit]) -> TFLiteReport:
    """`report` held against `limits` (the artifact's tolerance for its output, as equivalence resolves it:
    metadata.yaml over policy.yaml over model-checks' defaults, per_output over the rest)."""
    gated = {m: lim for m, lim in limits.items() if m in FLOAT_METRICS}  # mismatch_fraction: exact outputs only
    if report.problem:
        return replace(report, limits=gated)
    got = report.figures.get("TFLite int8", {})
    failures = []
    if not gated:
        failures.append(
            f"no tolerance applies to output '{report.output}' (every float metric is null): the TFLite step "
            "would pass anything"
        )
    for m, lim in gated.items():
        row = MetricRow(m, got[m], lim)
        if not row.ok:
            how = "below" if m in HIGHER_IS_BETTER else "over"
            failures.append(f"{m} {got[m]:.4g} {how} the limit {lim.value:g} ({lim.source})")
    return replace(report, limits=gated, failures=tuple(failures))


def _metrics(got: np.ndarray, ref: np.ndarray) -> dict[str, float]:
    """Equivalence's float metrics (core.metrics), computed the same way."""
    return {m: float(METRIC_FUNCS[m](got, ref)) for m in FLOAT_METRICS}


def tflite_report(
    path: Path,
    fmt: str,
    declared: tuple[TensorSpec, ...] | None,
    trust_code: bool,
    seed: int,
    samples: np.ndarray | None,
) -> TFLiteReport:
    """QAT (calibrated, then a short fit to the float model's outputs), full-integer conversion, LiteRT run:
    the three models' outputs against the float model's, not yet judged (the parent holds them against the
    artifact's tolerance). Module-level, so a worker process can run it."""
    from model_checks.producers.tflite_convert import keras_list, litert_outputs, qat_model, to_tflite
    from model_checks.tfmot.artifact import model_and_feeds
    from model_checks.tfmot.quantize import as_list

    model, feeds = model_and_feeds(path, fmt, declared, trust_code, seed)
    if len(feeds) != 1 or len(model.outputs) != 1:
        return TFLiteReport(
            0,
            "",
            problem=f"the TFLite step handles models with one input and one output "
            f"({len(feeds)} and {len(model.outputs)} here)",
        )
    output = list(model.output_names)[0]
    x, source = (np.asarray(samples, np.float32), "samples") if samples is not None else (feeds[0], "generated inputs")
    try:
        qmodel = qat_model(model, x)
        data = to_tflite(qmodel, "int8", x, "int8", qat=True, names=(model.input_names[0], list(model.output_names)))
        lite = next(iter(litert_outputs(data, x).values()))
    except Exception as e:
        return TFLiteReport(
            len(x), source, output, problem=f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
        )
    ref = np.asarray(keras_list(model(x, training=False))[0])
    figures = {
        "float": _metrics(ref, ref),
        "QAT": _metrics(as_list(qmodel(x, training=False))[0], ref),
        "TFLite int8": _metrics(lite, ref),
    }
    return TFLiteReport(len(x), source, output, figures)
