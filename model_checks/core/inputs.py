"""Inputs for running a model: real samples from an `.npz`, or seeded arrays generated from the interface."""

from __future__ import annotations

import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

from model_checks.core import batch as batching
from model_checks.core.errors import DataFileError, InputGenerationError
from model_checks.core.lazy import lazy
from model_checks.manifest.model import TensorSpec
from model_checks.safety.paths import check_regular_file

np = lazy("numpy")

MAX_GENERATED_BYTES = 256 * 1024**2  # one generated input; larger is refused before allocating
BATCH_SIZES = (1, 4)  # a dynamic batch is exercised at more than one size
OTHER_DYNAMIC_DIM = 8
SHORT_DYNAMIC_DIM = 3  # a second size for named dynamic dims other than the batch (sequence lengths)
DEFAULT_RANGES = {"f": (0.0, 1.0), "b": (0, 1)}  # integers have none: an id out of an embedding's rows is no test
MAX_NPZ_BYTES = 1024**3


@dataclass(frozen=True)
class Case:
    """One set of feeds (and recorded outputs, when the reference is a recording)."""

    label: str
    inputs: dict[str, np.ndarray]
    outputs: dict[str, np.ndarray] | None = None


def merge_interface(declared: Iterable[TensorSpec] | None, model: Iterable[TensorSpec]) -> list[TensorSpec]:
    """The model's inputs, each completed by its declaration (the declaration wins where it speaks)."""
    decl = {t.name: t for t in declared or ()}
    out = []
    for m in model:
        d = decl.get(m.name)
        out.append(
            TensorSpec(
                name=m.name,
                # a runner that quantizes an input itself is fed real values, whatever dtype the model stores
                dtype=(m.dtype if m.quantization is not None else d.dtype if d and d.dtype else m.dtype) or "float32",
                shape=d.shape if d and d.shape is not None else m.shape,
                layout=d.layout if d else None,
                range=d.range if d and d.range else m.range,  # declared, else what the graph proves
                quantization=m.quantization,
            )
        )
    return out


def batch_dims(specs: Iterable[TensorSpec]) -> set[str]:
    """The name of the batch dim (`core/batch.find`), as a set: empty when there is none."""
    b = batching.find(specs)
    return {b.name} if b else set()


def concrete_shape(
    spec: TensorSpec, batch: int, sizes: dict[str, int] | None = None, batch_name: str | None = None
) -> tuple[int, ...]:
    """`spec`'s shape with its dynamic dims sized: the batch's (wherever it sits) at `batch`, the others from
    `sizes` or at OTHER_DYNAMIC_DIM. `batch_name` is the batch's name among all the inputs (`core/batch.find`),
    "" when they have none; without it, the batch is found in this spec alone."""
    sizes = sizes or {}
    found = batching.Batch(batch_name, "") if batch_name else batching.find([spec]) if batch_name is None else None
    where = found.axis(spec) if found else None
    shape = []
    for i, d in enumerate(spec.shape or ()):
        if isinstance(d, int) and d > 0:
            shape.append(d)
        elif isinstance(d, str) and d in sizes:
            shape.append(sizes[d])
        else:
            shape.append(batch if i == where else OTHER_DYNAMIC_DIM)
    return tuple(shape)


def generate(
    specs: list[TensorSpec], batch: int, seed: int = 0, sizes: dict[str, int] | None = None
) -> dict[str, np.ndarray]:
    """Seeded inputs for `specs` at `batch` (along the batch dim wherever each input carries it; inputs without
    it are generated whole), within each spec's range; refuses gigantic inputs first."""
    rng = np.random.default_rng(seed)
    found = batching.find(specs)
    feeds = {}
    for spec in specs:
        if spec.shape is None:
            raise InputGenerationError(
                f"input '{spec.name}': no shape declared or in the model; declare inputs[].shape or give samples"
            )
        try:
            dtype = np.dtype(spec.dtype or "float32")
        except TypeError:
            dtype = None
        if dtype is None or dtype.kind not in "fbiu":
            raise InputGenerationError(
                f"input '{spec.name}' is {spec.dtype}: the gate generates numbers and bools only; give samples (an .npz with an array named '{spec.name}')"
            )
        shape = concrete_shape(spec, batch, sizes, found.name if found else "")
        nbytes = int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if nbytes > MAX_GENERATED_BYTES:
            raise InputGenerationError(
                f"input '{spec.name}': a generated input of shape {list(shape)} ({dtype}) would need {nbytes / 1024**3:.1f} GiB, "
                f"over the {MAX_GENERATED_BYTES // 1024**2} MiB cap; declare smaller dims or give samples"
            )
        if dtype.kind == "f":
            lo, hi = spec.range or DEFAULT_RANGES["f"]
            feeds[spec.name] = rng.uniform(lo, hi, size=shape).astype(dtype)
        elif dtype.kind == "b":
            feeds[spec.name] = integers(rng, (0, 1), shape).astype(bool)
        else:
            feeds[spec.name] = integers(rng, integer_range(spec), shape).astype(dtype)
    return feeds


def integer_range(spec: TensorSpec) -> tuple[int, int]:
    """The inclusive range of an integer input: declared, or proven by the graph; otherwise refused, since
    an id the model cannot take (a token type of 5 for an embedding of 2 rows) proves nothing about it."""
    if spec.range is None:
        raise InputGenerationError(
            f"input '{spec.name}' ({spec.dtype}): no range declared and none the graph proves (an index into an "
            f"embedding's rows); declare inputs[].range for '{spec.name}' in metadata.yaml (inclusive: [0, 1] for a "
            "mask or token types, [0, vocab_size - 1] for token ids) or give samples"
        )
    lo, hi = spec.range
    if int(lo) != lo or int(hi) != hi:
        raise InputGenerationError(
            f"input '{spec.name}' ({spec.dtype}): range {list(spec.range)} is not a pair of integers; declare whole numbers"
        )
    return int(lo), int(hi)


def integers(rng: np.random.Generator, bounds: tuple[int, int], shape: tuple[int, ...]) -> np.ndarray:
    """Integers in the inclusive `bounds`, both ends always drawn where there is room for them, and every
    value where there are at least as many elements as values (a mask of only zeros, or token ids that
    never reach the top of the vocabulary, would hide a model that mishandles them)."""
    lo, hi = bounds
    out = rng.integers(lo, hi, size=shape, endpoint=True)
    n_values = hi - lo + 1
    wanted = np.arange(lo, hi + 1, dtype=np.int64) if n_values <= out.size else np.array([lo, hi], np.int64)[: out.size]
    if wanted.size:
        flat = out.reshape(-1)
        flat[rng.choice(out.size, size=wanted.size, replace=False)] = wanted
    return out


def seed_for(artifact_id: str) -> int:
    return zlib.crc32(artifact_id.encode())


def other_dynamic_dims(specs: Iterable[TensorSpec]) -> list[str]:
    """Named dynamic dims that are not the batch (sequence lengths, image sizes), in order of appearance."""
    specs = list(specs)
    batch = batch_dims(specs)
    named = (d for s in specs for d in (s.shape or ()) if isinstance(d, str) and d not in batch and d != "?")
    return list(dict.fromkeys(named))


def generated_cases(specs: list[TensorSpec], artifact_id: str) -> list[Case]:
    """One case per batch size when the batch is dynamic (else batch 1), other named dynamic dims at
    OTHER_DYNAMIC_DIM; where there are such dims, one more case at the largest batch with them at SHORT_DYNAMIC_DIM."""
    batches = BATCH_SIZES if batch_dims(specs) else (1,)
    seed = seed_for(artifact_id)
    cases = [Case(f"generated, batch {b}", generate(specs, b, seed + b)) for b in batches]
    others = other_dynamic_dims(specs)
    if others:
        b, sizes = max(batches), {d: SHORT_DYNAMIC_DIM for d in others}
        dims = ", ".join(f"{d} {SHORT_DYNAMIC_DIM}" for d in others)
        cases.append(Case(f"generated, batch {b}, {dims}", generate(specs, b, seed + 100 + b, sizes)))
    return cases


def cast_feeds(feeds: dict[str, np.ndarray], specs: Iterable[TensorSpec]) -> tuple[dict[str, np.ndarray], list[str]]:
    """`feeds` in the dtypes `specs` (a model's own inputs) declare, and what was cast: a float16 model gets its
    float32 samples as float16 and a float32 reference the float16 ones as float32; integers are cast where
    every value fits. Anything else (floats for an integer input) is left for the model to refuse."""
    out, notes = dict(feeds), []
    for spec in specs:
        a = feeds.get(spec.name)
        if a is None or not spec.dtype:
            continue
        try:
            want = np.dtype(spec.dtype)
        except TypeError:
            continue
        if a.dtype == want or a.dtype.kind not in "fiu" or want.kind not in "fiu":
            continue
        if (a.dtype.kind == "f") != (want.kind == "f"):
            continue
        if want.kind in "iu" and a.size and (a.min() < np.iinfo(want).min or a.max() > np.iinfo(want).max):
            continue
        out[spec.name] = a.astype(want)
        notes.append(f"'{spec.name}' cast {a.dtype} -> {want}")
    return out, notes


def _unpacked_bytes(path: Path, key: str) -> int:
    """What the arrays of an `.npz` take once decompressed, read from each member's .npy header, so a small
    file that inflates to gigabytes (a zip bomb, or a header declaring a huge shape) is refused before np.load."""
    import zipfile

    total = 0
    try:
        with zipfile.ZipFile(path) as z:
            for info in z.infolist():
                with z.open(info) as f:
                    version = np.lib.format.read_magic(f)
                    read_header = {
                        (1, 0): np.lib.format.read_array_header_1_0,
                        (2, 0): np.lib.format.read_array_header_2_0,
                    }[version]
                    shape, _, dtype = read_header(f, max_header_size=10_000)
                total += max(info.file_size, int(np.prod(shape, dtype=np.float64)) * dtype.itemsize)
    except Exception as e:
        raise DataFileError(f"{key}: {path.name} is not a readable .npz ({type(e).__name__}: {e})") from None
    return total


def load_npz(path: Path, key: str) -> dict[str, np.ndarray]:
    """Arrays of an `.npz`, pickles refused, size capped (on disk, and once decompressed)."""
    check_regular_file(path, key, MAX_NPZ_BYTES, missing=DataFileError)
    unpacked = _unpacked_bytes(path, key)
    if unpacked > MAX_NPZ_BYTES:
        raise DataFileError(
            f"{key}: {path.name} unpacks to {unpacked / 1024**3:.1f} GiB, over the {MAX_NPZ_BYTES // 1024**2} MiB cap"
        )
    try:
        with np.load(path, allow_pickle=False) as z:
            return {k: z[k] for k in z.files}
    except ValueError as e:
        raise DataFileError(f"{key}: {path.name} holds pickled objects, which are refused ({e})") from None
    except Exception as e:
        raise DataFileError(f"{key}: {path.name} is not a readable .npz ({type(e).__name__}: {e})") from None


def sample_cases(path: Path, specs: list[TensorSpec], key: str) -> list[Case]:
    """`samples`: arrays named by input (or `input:<name>`)."""
    arrays = load_npz(path, key)
    feeds = {}
    for s in specs:
        arr = arrays.get(s.name, arrays.get(f"input:{s.name}"))
        if arr is None:
            raise DataFileError(
                f"{key}: {path.name} has no array for input '{s.name}' (it has {', '.join(arrays) or 'none'})"
            )
        feeds[s.name] = arr
    cases = [Case(f"samples ({path.name})", feeds)]
    found = batching.find(specs)
    where = batching.axes(specs, found)
    n = batching.size(feeds, where)
    if found and n and n > 1:  # a dynamic batch: the first sample alone as well, cut along the batch wherever it sits
        alone = batching.take(feeds, where, slice(0, 1))
        cases.append(Case(f"samples ({path.name}), sample 0 alone ({found.describe()})", alone))
    return cases
