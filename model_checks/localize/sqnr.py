"""Signal-to-quantization-noise ratio per tensor of an int8 QDQ model, through onnxruntime's
`qdq_loss_debug`: its SQNR formula for activations (measured pair by pair by the bounded runner, not
through its `collect_activations`, which keeps every intermediate of every run) and its weight matching."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np

from model_checks.localize.report import Sqnr


def is_qdq(model: Any) -> bool:
    return any(n.op_type == "QuantizeLinear" for n in model.graph.node)


def activation_db(got: np.ndarray, want: np.ndarray) -> float:
    from model_checks.backends.onnx.runtime import onnxruntime

    onnxruntime()  # the package itself first, its cache kept out of the user's home
    from onnxruntime.quantization.qdq_loss_debug import compute_signal_to_quantization_noice_ratio

    return float(compute_signal_to_quantization_noice_ratio(np.asarray(want, np.float64), np.asarray(got, np.float64)))


def weights(reference_path: Path, artifact_path: Path) -> list[Sqnr]:
    """SQNR of each quantized weight against the reference's float weight of the same name."""
    from model_checks.backends.onnx.runtime import onnxruntime

    onnxruntime()  # the package itself first, its cache kept out of the user's home
    from onnxruntime.quantization.qdq_loss_debug import compute_weight_error, create_weight_matching

    log = logging.getLogger()
    level = log.level
    log.setLevel(logging.CRITICAL)  # it logs an error for each weight the float model names otherwise
    try:
        matched = create_weight_matching(str(reference_path), str(artifact_path))
    except Exception:  # a weight layout it cannot dequantize: activations still tell
        return []
    finally:
        log.setLevel(level)
    # an all-zero float weight (a fresh bias) has no signal to measure noise against
    matched = {k: v for k, v in matched.items() if np.any(v["float"])}
    return [Sqnr(name, "weight", float(db)) for name, db in compute_weight_error(matched).items()]
