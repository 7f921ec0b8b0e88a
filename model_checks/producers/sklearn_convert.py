"""scikit-learn -> ONNX through skl2onnx: a fitted classifier (or a pipeline ending in one) with one float
input of `n_features` columns and a dynamic batch, with or without skl2onnx's ZipMap (probabilities as a
sequence of maps, one per sample). Labels and probabilities are compared with scikit-learn's own
`predict` and `predict_proba` on the samples before anything is written."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_checks.core.fileio import write_bytes
from model_checks.producers.verify import ProducerError, onnx_outputs, verified

DEFAULT_OPSET = 17
BATCH_AXIS = "batch"
OUTPUT_NAMES = ("label", "probabilities")
# skl2onnx computes in float32 where scikit-learn uses float64: probabilities agree to about 1e-6.
PROBA_TOLERANCE = {"rel_l2": 1e-4, "max_abs": 1e-4}


@dataclass(frozen=True)
class SklearnConversion:
    path: Path
    steps: tuple[str, ...]
    outputs: tuple[str, ...]
    size_bytes: int

    def __str__(self) -> str:
        return f"{self.path}: scikit-learn -> ONNX ({', '.join(self.steps)}), outputs {', '.join(self.outputs)}, {self.size_bytes / 1e6:.3f} MB"


def _rename_outputs(onx: Any, names: tuple[str, ...]) -> None:
    """skl2onnx names the outputs `label`/`probabilities` without ZipMap and `output_label`/`output_probability`
    with it; one pair of names for both, so either variant compares with the other by name."""
    renames = {o.name: new for o, new in zip(onx.graph.output, names)}
    used = {n for node in onx.graph.node for n in [*node.input, *node.output]}
    for new in names:  # with ZipMap, `label`/`probabilities` already name the tensors before it: move those aside
        if new in used and new not in renames:
            renames[new] = f"{new}_tensor"
    for node in onx.graph.node:
        node.input[:] = [renames.get(n, n) for n in node.input]
        node.output[:] = [renames.get(n, n) for n in node.output]
    for o in onx.graph.output:
        o.name = renames.get(o.name, o.name)


def _final(model: Any) -> Any:
    return model.steps[-1][1] if hasattr(model, "steps") else model


def convert_sklearn(
    model: Any,
    out: str | Path,
    samples: np.ndarray,
    *,
    zipmap: bool = True,
    opset: int = DEFAULT_OPSET,
    input_name: str = "input",
) -> SklearnConversion:
    """Write `model` as ONNX at `out`; refuses (ProducerError) when labels or probabilities on `samples` differ."""
    from model_checks.core.requires import require

    to_onnx = require("skl2onnx", "producers", "converting scikit-learn").to_onnx
    FloatTensorType = require("skl2onnx.common.data_types", "producers", "converting scikit-learn").FloatTensorType
    x = np.asarray(samples, np.float32)
    if x.ndim != 2 or len(x) == 0:
        raise ProducerError(f"samples: need a 2-d float array of rows of features (got shape {list(x.shape)})")
    final = _final(model)
    if not hasattr(final, "predict_proba"):
        raise ProducerError(f"model: {type(final).__name__} has no predict_proba; convert-sklearn packages classifiers")
    options = {id(final): {"zipmap": bool(zipmap)}}
    try:
        onx = to_onnx(
            model,
            initial_types=[(input_name, FloatTensorType([None, x.shape[1]]))],
            target_opset={"": opset, "ai.onnx.ml": 3},
            options=options,
        )
    except Exception as e:
        from model_checks.core.errors import runtime_error_text

        raise ProducerError(f"skl2onnx could not convert {type(model).__name__}: {runtime_error_text(e)}") from None
    _rename_outputs(onx, OUTPUT_NAMES)
    for v in [*onx.graph.input, *onx.graph.output]:  # skl2onnx leaves the batch unnamed
        if (
            v.type.HasField("tensor_type")
            and v.type.tensor_type.shape.dim
            and not v.type.tensor_type.shape.dim[0].HasField("dim_value")
        ):
            v.type.tensor_type.shape.dim[0].dim_param = BATCH_AXIS
    data = onx.SerializeToString()
    got = onnx_outputs(data, {input_name: x})
    label_name, proba_name = [o.name for o in onx.graph.output][:2]
    expected = {
        label_name: np.asarray(model.predict(x)).astype(got[label_name].dtype),
        proba_name: model.predict_proba(x).astype(np.float32),
    }
    v = verified(
        onx,
        f"skl2onnx {type(final).__name__}",
        {input_name: x},
        expected,
        {**PROBA_TOLERANCE, "mismatch_fraction": 0.0},
    )
    path = write_bytes(Path(out), v.data)
    steps = ("skl2onnx", "zipmap" if zipmap else "no_zipmap")
    return SklearnConversion(path, steps, tuple(o.name for o in onx.graph.output), path.stat().st_size)
