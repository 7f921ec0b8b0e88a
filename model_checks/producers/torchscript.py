"""TorchScript: `trace` and `script` a model to `.pt`, each compared with the eager model.

A trace records the operations one input ran through: a data-dependent `if` is frozen to the branch that
input took. torch's TracerWarning is the signal; `trace` re-raises it as a FrozenBranchWarning that names
the lines, and compares on `check_inputs` too, where a frozen branch shows as a difference. `script`
compiles the Python source and keeps both branches.
"""

from __future__ import annotations

import hashlib
import io
import warnings
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping, Sequence

from model_checks.core.fileio import write_bytes
from model_checks.core.metrics import Comparison
from model_checks.producers.npz import EPOCH
from model_checks.producers.torch_export import as_tuple, torch_outputs
from model_checks.producers.verify import ProducerError, compare, require_match

KINDS = ("trace", "script")


class FrozenBranchWarning(UserWarning):
    """A trace took a Python decision on a tensor's value: other inputs may need the other branch."""


@dataclass(frozen=True)
class TorchScriptResult:
    """What was saved, and how it compares with the eager model on each input it was tried on."""

    path: Path
    kind: str
    comparisons: tuple[tuple[str, Comparison], ...]
    frozen_branches: tuple[str, ...] = ()

    def __bool__(self) -> bool:
        return all(bool(c) for _, c in self.comparisons)

    def __str__(self) -> str:
        bad = [label for label, c in self.comparisons if not c]
        head = f"{self.path} ({self.kind}): " + (
            "matches the eager model" if not bad else f"differs from the eager model on {', '.join(bad)}"
        )
        return "\n".join([head, *(f"  frozen branch: {w}" for w in self.frozen_branches)])


def _frozen(caught: list[warnings.WarningMessage]) -> tuple[str, ...]:
    import torch

    return tuple(
        dict.fromkeys(
            f"{Path(w.filename).name}:{w.lineno}: {str(w.message).splitlines()[0]}"
            for w in caught
            if issubclass(w.category, torch.jit.TracerWarning)
        )
    )


def to_torchscript(
    model: Any,
    example: Any,
    path: str | Path,
    kind: str = "trace",
    check_inputs: Sequence[Any] = (),
    tolerance: Mapping[str, float | None] | None = None,
    keep_debug: bool = False,
) -> TorchScriptResult:
    """Trace or script `model` (eval mode), compare with eager on `example` (must match, or nothing is written)
    and on each of `check_inputs` (differences are reported in the result and warned about), save to `path`
    (reproducibly, without debug records, unless `keep_debug`: see `archive_bytes`)."""
    import torch

    if kind not in KINDS:
        raise ProducerError(f"kind: {kind!r} is not one of {', '.join(KINDS)}")
    model = model.eval()
    example = as_tuple(example)
    caught: list[warnings.WarningMessage] = []
    with torch.no_grad():
        if kind == "trace":
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always", torch.jit.TracerWarning)
                compiled = torch.jit.trace(model, example, check_trace=False)
        else:
            try:
                compiled = torch.jit.script(model)
            except Exception as e:
                raise ProducerError(
                    f"torch.jit.script cannot compile {type(model).__name__}: {' '.join(str(e).splitlines()[:3])[:400]}; try kind='trace'"
                ) from e
    frozen = _frozen(caught)
    if frozen:
        warnings.warn(
            FrozenBranchWarning(
                f"the trace froze {len(frozen)} data-dependent decision(s); other inputs may take another branch: "
                + "; ".join(frozen)
            ),
            stacklevel=2,
        )
    comparisons = [
        (
            "example",
            require_match(
                torch_outputs(compiled, example), torch_outputs(model, example), f"{kind} on the example", tolerance
            ),
        )
    ]
    for i, inp in enumerate(check_inputs):
        inp = as_tuple(inp)
        c = compare(torch_outputs(compiled, inp), torch_outputs(model, inp), tolerance)
        comparisons.append((f"check input {i}", c))
        if not c:
            warnings.warn(
                FrozenBranchWarning(
                    f"the {kind}d model differs from the eager model on check input {i}"
                    + (" (a frozen branch)" if frozen else "")
                ),
                stacklevel=2,
            )
    path = Path(path)
    write_bytes(path, archive_bytes(compiled, keep_debug))
    return TorchScriptResult(path, kind, tuple(comparisons), frozen)


def archive_bytes(module: Any, keep_debug: bool = False) -> bytes:
    """The archive torch.jit.save writes, by default made reproducible: the `.debug_pkl` records (the call
    stacks a trace or script came from, with absolute paths and line numbers of this checkout) are left out,
    and the serialization id, which covers them, is derived from what remains. torch.jit.load reads it the same;
    its errors then name no Python source lines."""
    import torch

    buf = io.BytesIO()
    torch.jit.save(module, buf)
    if keep_debug:
        return buf.getvalue()
    with zipfile.ZipFile(buf) as src:
        records = {i.filename: src.read(i) for i in src.infolist() if not i.filename.endswith(".debug_pkl")}
    ident = next((n for n in records if n.endswith(".data/serialization_id")), None)
    if ident:
        digest = hashlib.sha256(b"".join(records[n] for n in records if n != ident)).hexdigest()
        records[ident] = f"{int(digest, 16) % 10**40:040d}".encode()
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_STORED) as dst:
        for name, data in records.items():
            dst.writestr(zipfile.ZipInfo(name, date_time=EPOCH), data)
    return out.getvalue()


def trace(model: Any, example: Any, path: str | Path, check_inputs: Sequence[Any] = (), **kw: Any) -> TorchScriptResult:
    return to_torchscript(model, example, path, "trace", check_inputs, **kw)


def script(
    model: Any, example: Any, path: str | Path, check_inputs: Sequence[Any] = (), **kw: Any
) -> TorchScriptResult:
    return to_torchscript(model, example, path, "script", check_inputs, **kw)
