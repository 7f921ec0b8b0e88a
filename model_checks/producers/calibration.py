"""Calibration data for static quantization: one adapter over any iterable of arrays (or of feed dicts), an
`.npz` file, or a generator, that reads the model's input name and dtype itself. It implements onnxruntime's
`CalibrationDataReader` protocol (`get_next` returns a feed dict, then None)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping

import numpy as np

from model_checks.producers.progress import progress
from model_checks.producers.verify import ProducerError, input_specs

DEFAULT_BATCH = 16
NPZ_NAMES = ("x", "input", "inputs", "samples")  # tried, in order, when no array is named by the input


class CalibrationReader:
    """Feeds for calibration, from `source`:

    - an array with the model's rank (or one less): split into batches of `batch`
    - an iterable or generator of arrays (each a batch, or one sample) or of feed dicts {input name: array}
    - a path to an `.npz`: the array named by the input, else one of x/input/inputs/samples, else its only array

    The model (a path or a ModelProto) gives the input name, rank and dtype. `limit` caps the batches read;
    the first `keep` feeds stay in `kept` (a quantizer compares its result with the source on them).
    """

    def __init__(self, source: Any, model: Any, batch: int = DEFAULT_BATCH, limit: int | None = None, keep: int = 0):
        self.input_name, self.rank, self.dtype = _model_input(model)
        self.batch = batch
        self.limit = limit
        self.count = 0
        self.keep = keep
        self.kept: list[dict[str, np.ndarray]] = []
        self._it: Iterator[dict[str, np.ndarray]] = self._feeds(source)

    def _array_from_npz(self, path: Path) -> np.ndarray:
        from model_checks.core.inputs import load_npz

        return pick_array(load_npz(path, "calibration"), self.input_name, f"calibration: {path.name}")

    def _items(self, source: Any) -> Iterable[Any]:
        if isinstance(source, (str, Path)):
            path = Path(source)
            if path.suffix.lower() != ".npz" or not path.is_file():
                raise ProducerError(f"calibration: {source} is not an .npz file")
            source = self._array_from_npz(path)
        if isinstance(source, np.ndarray):
            if source.ndim == self.rank - 1:
                source = source[None]
            if source.ndim != self.rank:
                raise ProducerError(
                    f"calibration: an array of shape {list(source.shape)} for input '{self.input_name}' of rank {self.rank}"
                )
            return (source[i : i + self.batch] for i in range(0, len(source), self.batch))
        if isinstance(source, dict):
            raise ProducerError("calibration: a dict is one feed; pass a list of feed dicts, or arrays")
        try:
            return iter(source)
        except TypeError:
            raise ProducerError(
                f"calibration: {type(source).__name__} is neither an array, an iterable of arrays nor an .npz path"
            ) from None

    def _feeds(self, source: Any) -> Iterator[dict[str, np.ndarray]]:
        for item in self._items(source):
            if isinstance(item, dict):
                if self.input_name not in item:
                    raise ProducerError(
                        f"calibration: a feed dict has {', '.join(item)}, not the model's input '{self.input_name}'"
                    )
                arr = np.asarray(item[self.input_name])
            else:
                arr = np.asarray(item)
            if arr.ndim == self.rank - 1:
                arr = arr[None]
            if arr.ndim != self.rank:
                raise ProducerError(
                    f"calibration: a batch of shape {list(arr.shape)} for input '{self.input_name}' of rank {self.rank}"
                )
            yield {self.input_name: arr.astype(self.dtype, copy=False)}

    def get_next(self) -> dict[str, np.ndarray] | None:
        if self.limit is not None and self.count >= self.limit:
            return None
        feed = next(self._it, None)
        if feed is not None:
            self.count += 1
            if len(self.kept) < self.keep:
                self.kept.append(feed)
        return feed

    def __iter__(self) -> Iterator[dict[str, np.ndarray]]:
        return iter(self.get_next, None)

    def with_progress(self, desc: str = "calibrating") -> CalibrationReader:
        """The same reader, counting its batches on a progress bar."""
        self._it = iter(progress(self._it, desc, total=self.limit))
        return self


def _model_input(model: Any) -> tuple[str, int, np.dtype]:
    """(name, rank, dtype) of the model's single input."""
    import onnx

    proto = onnx.load(str(model), load_external_data=False) if isinstance(model, (str, Path)) else model
    specs = input_specs(proto)
    if len(specs) != 1:
        raise ProducerError(
            f"calibration: the model has {len(specs)} inputs ({', '.join(s.name for s in specs)}); this adapter feeds single-input models"
        )
    s = specs[0]
    return s.name, len(s.shape or ()), np.dtype(s.dtype if s.dtype and s.dtype != "bfloat16" else "float32")


def pick_array(arrays: Mapping[str, np.ndarray], input_name: str | None, where: str) -> np.ndarray:
    """The array for a single-input model out of an .npz's arrays: the one named by the input, else one of
    x/input/inputs/samples, else the only one."""
    for key in (*((input_name, f"input:{input_name}") if input_name else ()), *NPZ_NAMES):
        if key in arrays:
            return arrays[key]
    if len(arrays) == 1:
        return next(iter(arrays.values()))
    raise ProducerError(f"{where} has arrays {', '.join(arrays) or 'none'}; name the one to use {input_name or 'x'}")
