"""Loading Keras models safely: `.keras` in safe mode with no custom objects; `.h5` and SavedModel only
when trusted (the pool calls `require_trust` first, since both can carry code that runs on load).

`keras_modules()` is the one place TensorFlow is imported: it selects Keras 2 (tf-keras), which tfmot
needs, before TensorFlow reads the setting, so users neither set TF_USE_LEGACY_KERAS nor import tf-keras.
"""

from __future__ import annotations

import os
import sys
import zipfile
from pathlib import Path
from typing import Any

from model_checks.backends.keras.allowlist import config_problems
from model_checks.core.errors import ArtifactLoadError
from model_checks.safety.paths import check_regular_file
from model_checks.safety.sniff import sniff

_QUIET = {"TF_CPP_MIN_LOG_LEVEL": "2", "TF_ENABLE_ONEDNN_OPTS": "0"}


def keras_modules() -> tuple[Any, Any]:
    """(tensorflow, tf_keras), with Keras 2 selected before TensorFlow is first imported."""
    if "tensorflow" not in sys.modules:
        os.environ["TF_USE_LEGACY_KERAS"] = "1"  # read once, when TensorFlow is imported
        for k, v in _QUIET.items():
            os.environ.setdefault(k, v)
    from model_checks.core.requires import require

    return require("tensorflow", "keras", "checking keras artifacts"), require(
        "tf_keras", "keras", "checking keras artifacts"
    )


def set_threads(threads: int | None) -> str:
    """Size TensorFlow's thread pools (intra-op `threads`, inter-op 1) and say what they are. TensorFlow fixes
    its pools when it first runs an op: after that they cannot change, and the answer says so."""
    tf, _ = keras_modules()
    if not threads:
        return "default"
    try:
        tf.config.threading.set_intra_op_parallelism_threads(threads)
        tf.config.threading.set_inter_op_parallelism_threads(1)
        return str(threads)
    except RuntimeError:
        return f"{tf.config.threading.get_intra_op_parallelism_threads() or 'default'} (set before this model; asked for {threads})"


def kind_of(path: Path) -> str:
    """`keras` (a .keras zip), `h5` or `saved_model` (a directory with saved_model.pb)."""
    if path.is_dir():
        if not (path / "saved_model.pb").is_file():
            raise ArtifactLoadError(f"{path.name}: a directory without saved_model.pb is not a SavedModel")
        return "saved_model"
    check_regular_file(path, path.name)
    head = sniff(path)
    if head == "zip":
        return "keras"
    if head == "hdf5":
        return "h5"
    raise ArtifactLoadError(
        f"{path.name}: the file holds {head} data, not a Keras model (.keras is a zip, .h5 is HDF5; judged by its first bytes)"
    )


MAX_CONFIG_BYTES = 64 * 1024 * 1024  # a config.json is text describing layers; weights live elsewhere


def check_keras_zip(path: Path) -> list[str]:
    """Problems of a .keras archive: damaged members, no config.json to rebuild the model from, or a config that
    names code outside Keras (see allowlist), found before Keras reads it."""
    try:
        with zipfile.ZipFile(path) as z:
            bad = z.testzip()
            names = set(z.namelist())
            info = z.getinfo("config.json") if "config.json" in names else None
            text = z.read(info) if info is not None and info.file_size <= MAX_CONFIG_BYTES else None
    except (zipfile.BadZipFile, OSError, EOFError, ValueError) as e:
        return [f"{path.name}: a damaged zip archive ({e})"]
    problems = [f"zip: member {bad} fails its CRC check (the archive is damaged)"] if bad else []
    if info is None:
        problems.append(f"{path.name}: no config.json inside; not a Keras v3 (.keras) archive")
    elif text is None:
        problems.append(f"{path.name}: config.json is {info.file_size} bytes, over the cap of {MAX_CONFIG_BYTES} bytes")
    else:
        problems += config_refusals(text, f"{path.name}: config.json")
    return problems


def config_refusals(text: bytes | str, where: str) -> list[str]:
    """A Keras config (JSON text) checked against the allow-list; unreadable JSON is itself a refusal."""
    import json

    try:
        config = json.loads(text)
    except (ValueError, RecursionError) as e:
        return [f"{where}: not valid JSON ({type(e).__name__}: {str(e)[:200]})"]
    return [f"refused: {p}" for p in config_problems(config, where)]


def _check_h5_config(path: Path) -> None:
    """An .h5 model's `model_config` attribute, through the same allow-list, where h5py can read it."""
    try:
        import h5py
    except ModuleNotFoundError:
        return
    try:
        with h5py.File(path, "r") as f:
            text = f.attrs.get("model_config")
    except OSError as e:
        raise ArtifactLoadError(f"{path.name}: not a readable HDF5 file ({e})") from None
    if isinstance(text, (bytes, str)) and (problems := config_refusals(text, f"{path.name}: model_config")):
        raise ArtifactLoadError("; ".join(problems))


def load_model(path: Path) -> tuple[str, Any]:
    """(`keras`, a tf_keras Model) or (`saved_model`, the loaded object), on the CPU, uncompiled."""
    kind = kind_of(path)
    if kind == "keras" and (problems := check_keras_zip(path)):
        raise ArtifactLoadError("; ".join(problems))
    if kind == "h5":
        _check_h5_config(path)
    tf, keras = keras_modules()
    try:
        if kind == "saved_model":
            return "saved_model", tf.saved_model.load(str(path))
        if kind == "keras":
            # safe_mode refuses Lambda layers' marshalled bytecode; no custom objects are ever registered
            return "keras", keras.models.load_model(str(path), compile=False, safe_mode=True)
        return "keras", keras.models.load_model(str(path), compile=False)
    except Exception as e:
        hint = (
            "; the archive holds a Lambda layer or custom object that safe mode refuses"
            if kind == "keras" and ("safe_mode" in str(e) or "Unknown" in str(e))
            else ""
        )
        raise ArtifactLoadError(
            f"{path.name}: cannot be loaded as {kind} ({type(e).__name__}: {str(e).strip()[:300]}){hint}"
        ) from None


def serving_signature(obj: Any, path: Path) -> Any:
    sigs = getattr(obj, "signatures", {})
    if "serving_default" not in sigs:
        raise ArtifactLoadError(
            f"{path.name}: the SavedModel has no serving_default signature (it has {', '.join(sigs) or 'none'})"
        )
    return sigs["serving_default"]
