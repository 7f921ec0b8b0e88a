"""Will TensorFlow Model Optimization accept a Keras model? Quantization-aware training (`quantize`) and
low-magnitude pruning (`prune`) tried on the model, with failures sorted into classes a user can act on
(`problems`), and the Keras Applications matrix (`matrix`). TensorFlow is imported inside the functions,
through `model_checks.backends.keras.loader.keras_modules`, which selects Keras 2 first."""

from __future__ import annotations

from model_checks.tfmot.problems import NESTED_MODEL, NON_LAYER_OP, TENSOR_RANK, TFMOT_ERROR, UNSUPPORTED, Problem

__all__ = ["Problem", "UNSUPPORTED", "TENSOR_RANK", "NESTED_MODEL", "NON_LAYER_OP", "TFMOT_ERROR"]
