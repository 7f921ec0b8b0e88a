"""What equivalence compares against: another model, recorded inputs and outputs, or ONNX test data."""

from __future__ import annotations

import re
from pathlib import Path

import numpy as np

from model_checks.core.errors import ArtifactLoadError
from model_checks.core.inputs import Case, load_npz
from model_checks.manifest import guess_format
from model_checks.safety.paths import check_regular_file, resolve_inside

MAX_PB_BYTES = 1024**3


def reference_kind(path: Path) -> str:
    """`model`, `npz` or `testdata`, from the path (as the manifest spec says)."""
    if path.is_dir():
        return "model" if (path / "saved_model.pb").is_file() else "testdata"
    if path.suffix.lower() == ".npz":
        return "npz"
    if guess_format(path.name) in ("onnx", "torchscript", "keras", "tflite"):
        return "model"
    raise ArtifactLoadError(f"reference.path: cannot tell what {path.name} is; use a model (.onnx, .pt, .keras, .h5, .tflite), an .npz, or an ONNX test data directory")


def recorded_cases(path: Path, key: str) -> list[Case]:
    """An `.npz` with arrays named `input:<name>` and `output:<name>`."""
    arrays = load_npz(path, key)
    ins = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("input:")}
    outs = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("output:")}
    if not ins or not outs:
        raise ArtifactLoadError(f"{key}: {path.name} needs arrays named input:<name> and output:<name> (it has {', '.join(arrays) or 'none'})")
    return [Case(f"recorded ({path.name})", ins, outs)]


def _inside(root: Path | None, path: Path, key: str) -> Path:
    """`path` (found by listing a test-data folder) proven inside the root: a set or a tensor file may be a
    symlink, and one that leads out is refused like any manifest path."""
    return path if root is None else resolve_inside(root, path.parent, path.name, key)


def _read_tensor(path: Path, key: str) -> tuple[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    size = check_regular_file(path, key, MAX_PB_BYTES)
    t = onnx.TensorProto()
    try:
        t.ParseFromString(path.read_bytes())
    except Exception as e:
        raise ArtifactLoadError(f"{key}: {path.name} is not a readable TensorProto ({type(e).__name__}: {e})") from None
    if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
        # onnx would read it relative to the working directory, i.e. from outside the artifacts root
        raise ArtifactLoadError(f"{key}: {path.name} keeps its values in an external file; test data must hold its values itself")
    elements = int(np.prod([max(int(d), 0) for d in t.dims], dtype=np.float64))
    if elements > 8 * size:  # no TensorProto encoding stores more than 8 values a byte: the dims lie
        raise ArtifactLoadError(f"{key}: {path.name} declares dims {list(t.dims)} ({elements:.3g} values) but holds {size} bytes")
    try:
        return t.name, numpy_helper.to_array(t)
    except Exception as e:
        raise ArtifactLoadError(f"{key}: {path.name} is not a readable TensorProto ({type(e).__name__}: {e})") from None


def _numbered(folder: Path, stem: str) -> list[Path]:
    rx = re.compile(rf"^{stem}_(\d+)\.pb$")
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := rx.match(p.name))]
    return [p for _, p in sorted(found)]


def testdata_cases(path: Path, input_names: list[str], output_names: list[str], key: str, root: Path | None = None) -> list[Case]:
    """ONNX test data: `test_data_set_N/input_K.pb` and `output_K.pb`; unnamed tensors map by order.
    With `root`, every set and tensor file must resolve inside it (symlinks leading out are refused)."""
    sets = [path] if path.name.startswith("test_data_set_") else sorted(
        (p for p in path.iterdir() if p.is_dir() and p.name.startswith("test_data_set_")), key=lambda p: int(p.name.rsplit("_", 1)[1]) if p.name.rsplit("_", 1)[1].isdigit() else 0
    )
    if not sets:
        raise ArtifactLoadError(f"{key}: {path.name} holds no test_data_set_N directories")
    cases = []
    for s in sets:
        s = _inside(root, s, key)
        ins = [_read_tensor(_inside(root, p, key), key) for p in _numbered(s, "input")]
        outs = [_read_tensor(_inside(root, p, key), key) for p in _numbered(s, "output")]
        if not outs:
            raise ArtifactLoadError(f"{key}: {s.name} has no output_K.pb files")
        feeds = {(n or input_names[i] if i < len(input_names) else n): a for i, (n, a) in enumerate(ins)}
        expected = {(n or (output_names[i] if i < len(output_names) else f"output_{i}")): a for i, (n, a) in enumerate(outs)}
        cases.append(Case(s.name, feeds, expected))
    return cases
