"""Keras models (`.keras`, `.h5` through tf-keras) and TensorFlow SavedModel directories: loader, runner,
inspect. TensorFlow is imported only inside them, with Keras 2 (tf-keras) selected first."""

from __future__ import annotations

from pathlib import Path

from model_checks.backends.registry import DIRECTORY, Framework

H5_WHY = "a Keras .h5 file can hold Lambda layers whose marshalled bytecode runs when it loads"
SAVED_MODEL_WHY = "a SavedModel carries TensorFlow functions that run when it loads"


def carries_code(fmt: str, path: Path) -> str | None:
    """Judged by what the file holds rather than its name: tf-keras loads anything that is not a `.keras` zip
    archive with its legacy loader, which runs the code an HDF5 file or a SavedModel folder carries, so a Keras
    model named `model.keras` that is not a zip counts as `.h5`, and a folder as a SavedModel."""
    if fmt == "saved_model" or path.is_dir():
        return SAVED_MODEL_WHY
    if path.suffix.lower() == ".h5":
        return H5_WHY
    from model_checks.safety.sniff import sniff

    return H5_WHY if path.is_file() and sniff(path) != "zip" else None


FRAMEWORK = Framework(
    name="Keras",
    formats=("keras", "saved_model"),
    suffixes={".keras": "keras", ".h5": "keras", DIRECTORY: "saved_model"},
    family="tensorflow",
    extra="model-checks[keras]",
    modules=("tensorflow", "tf_keras", "keras", "tensorflow_model_optimization", "tensorboard"),
    runtime={"keras": "tf-keras", "saved_model": "tensorflow"},
    layout={"keras": "NHWC", "saved_model": "NHWC"},
    carries_code=carries_code,
)
