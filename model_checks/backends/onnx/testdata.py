"""ONNX test data (`test_data_set_N/input_K.pb`): one TensorProto a file, read safely. onnx is imported inside."""

from __future__ import annotations

from pathlib import Path

from model_checks.core.errors import ArtifactLoadError
from model_checks.core.lazy import lazy
from model_checks.safety.paths import check_regular_file

np = lazy("numpy")

MAX_PB_BYTES = 1024**3


def read_tensor(path: Path, key: str) -> tuple[str, np.ndarray]:
    """(name, values) of one TensorProto file of ONNX test data (`input_0.pb`); its values must be in the file."""
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
        raise ArtifactLoadError(
            f"{key}: {path.name} keeps its values in an external file; test data must hold its values itself"
        )
    elements = int(np.prod([max(int(d), 0) for d in t.dims], dtype=np.float64))
    if elements > 8 * size:  # no TensorProto encoding stores more than 8 values a byte: the dims lie
        raise ArtifactLoadError(
            f"{key}: {path.name} declares dims {list(t.dims)} ({elements:.3g} values) but holds {size} bytes"
        )
    try:
        return t.name, numpy_helper.to_array(t)
    except Exception as e:
        raise ArtifactLoadError(f"{key}: {path.name} is not a readable TensorProto ({type(e).__name__}: {e})") from None
