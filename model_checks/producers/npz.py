"""Writing `.npz` files byte for byte reproducibly: numpy stamps each member with the current time, which
would make every rebuild of a committed artifact a change."""

from __future__ import annotations

import io
import zipfile
from pathlib import Path
from typing import Mapping

import numpy as np

from model_checks.core.fileio import write_bytes

EPOCH = (1980, 1, 1, 0, 0, 0)  # the earliest time a zip entry can carry


def write_npz(path: str | Path, arrays: Mapping[str, np.ndarray]) -> Path:
    """Arrays saved as `np.savez` would (readable by np.load, no pickles), with fixed timestamps."""
    data = io.BytesIO()
    with zipfile.ZipFile(data, "w", compression=zipfile.ZIP_DEFLATED) as z:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.lib.format.write_array(buf, np.ascontiguousarray(arr), allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=EPOCH)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = 0o644 << 16
            z.writestr(info, buf.getvalue())
    return write_bytes(path, data.getvalue())
