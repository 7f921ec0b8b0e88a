"""What equivalence compares against: another model, recorded inputs and outputs, or ONNX test data."""

from __future__ import annotations

import re
from pathlib import Path
from typing import TYPE_CHECKING

from model_checks.backends.base import named_feeds
from model_checks.backends.onnx.testdata import read_tensor
from model_checks.backends.registry import format_by_suffix, reference_formats
from model_checks.core.errors import DataFileError
from model_checks.core.inputs import Case, load_npz
from model_checks.manifest import guess_format
from model_checks.safety.paths import resolve_inside

if TYPE_CHECKING:
    import numpy as np


def reference_kind(path: Path) -> str:
    """`model`, `npz` or `testdata`, from the path (as the manifest spec says)."""
    if path.is_dir():
        return "model" if (path / "saved_model.pb").is_file() else "testdata"
    if path.suffix.lower() == ".npz":
        return "npz"
    if path.suffix and guess_format(path.name) in reference_formats():
        return "model"
    suffixes = ", ".join(s for s, f in format_by_suffix().items() if s and f in reference_formats())
    raise DataFileError(
        f"reference.path: cannot tell what {path.name} is; use a model ({suffixes}), an .npz, or an ONNX test data directory"
    )


def recorded_cases(path: Path, key: str) -> list[Case]:
    """An `.npz` with arrays named `input:<name>` and `output:<name>`."""
    arrays = load_npz(path, key)
    ins = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("input:")}
    outs = {k.split(":", 1)[1]: v for k, v in arrays.items() if k.startswith("output:")}
    if not ins or not outs:
        raise DataFileError(
            f"{key}: {path.name} needs arrays named input:<name> and output:<name> (it has {', '.join(arrays) or 'none'})"
        )
    return [Case(f"recorded ({path.name})", ins, outs)]


def _inside(root: Path | None, path: Path, key: str) -> Path:
    """`path` (found by listing a test-data folder) proven inside the root: a set or a tensor file may be a
    symlink, and one that leads out is refused like any manifest path."""
    return path if root is None else resolve_inside(root, path.parent, path.name, key)


def _numbered(folder: Path, stem: str) -> list[Path]:
    rx = re.compile(rf"^{stem}_(\d+)\.pb$")
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := rx.match(p.name))]
    return [p for _, p in sorted(found)]


# One test-data set as read: its folder's name, its inputs and its outputs, each (name in the file, values) in order.
TestData = list[tuple[str, list[tuple[str, "np.ndarray"]], list[tuple[str, "np.ndarray"]]]]


def read_testdata(path: Path, key: str, root: Path | None = None) -> TestData:
    """ONNX test data as read, before its unnamed tensors are named after the model's inputs and outputs
    (`testdata_cases`). With `root`, every set and tensor file must resolve inside it (symlinks leading out are
    refused)."""
    sets = (
        [path]
        if path.name.startswith("test_data_set_")
        else sorted(
            (p for p in path.iterdir() if p.is_dir() and p.name.startswith("test_data_set_")),
            key=lambda p: int(p.name.rsplit("_", 1)[1]) if p.name.rsplit("_", 1)[1].isdigit() else 0,
        )
    )
    if not sets:
        raise DataFileError(f"{key}: {path.name} holds no test_data_set_N directories")
    found: TestData = []
    held = 0
    for s in sets:
        s = _inside(root, s, key)
        ins = [read_tensor(_inside(root, p, key), key, root) for p in _numbered(s, "input")]
        outs = [read_tensor(_inside(root, p, key), key, root) for p in _numbered(s, "output")]
        if not outs:
            raise DataFileError(f"{key}: {s.name} has no output_K.pb files")
        found.append((s.name, ins, outs))
        held += sum(_in_memory(a) for _, a in (*ins, *outs))
        if held > MAX_TESTDATA_BYTES:
            raise DataFileError(
                f"{key}: the test data takes over {MAX_TESTDATA_BYTES / 1024**3:g} GiB in memory by {s.name} "
                f"({len(found)} of {len(sets)} sets read); the gate holds an artifact's test data whole: keep fewer "
                "or smaller sets"
            )
    return found


MAX_TESTDATA_BYTES = 2 * 1024**3  # an artifact's test data, all sets together, as held in memory


def _in_memory(a: np.ndarray) -> int:
    """An array's bytes in memory, a string array's objects counted too (about 56 bytes each beyond its text)."""
    return int(a.nbytes + (a.size * 56 if a.dtype == object else 0))


def testdata_cases(
    path: Path, input_names: list[str], output_names: list[str], key: str, root: Path | None = None
) -> list[Case]:
    """ONNX test data: `test_data_set_N/input_K.pb` and `output_K.pb`; unnamed tensors map by order.
    With `root`, every set and tensor file must resolve inside it (symlinks leading out are refused)."""
    return cases_of(read_testdata(path, key, root), input_names, output_names)


def cases_of(data: TestData, input_names: list[str], output_names: list[str]) -> list[Case]:
    """Test data as read (`read_testdata`) as cases, its unnamed tensors named by their order in the model's."""
    cases = []
    for name, ins, outs in data:
        expected = {
            (n or (output_names[i] if i < len(output_names) else f"output_{i}")): a for i, (n, a) in enumerate(outs)
        }
        cases.append(Case(name, named_feeds(ins, input_names), expected))
    return cases
