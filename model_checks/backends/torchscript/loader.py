"""Loading a TorchScript archive: the file checked and sniffed as a zip before torch reads it.

A TorchScript archive carries code, so the pool only gets here for trusted artifacts (`require_trust`).
Its inputs and outputs have no names: the caller passes the ones its manifest declares (`names`), else
they are `input_0`..., `output_0`...
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from model_checks.core.errors import ArtifactLoadError, runtime_error_text
from model_checks.safety.paths import check_regular_file
from model_checks.safety.sniff import sniff


def torch_module() -> Any:
    from model_checks.core.requires import require

    return require("torch", "torch", "checking torchscript artifacts")


def check_archive(path: Path, display: str | None = None) -> None:
    """The file is a regular file inside its size cap and a readable zip (what torch.jit.save writes)."""
    display = display or path.name
    check_regular_file(path, display)
    kind = sniff(path)
    if kind != "zip":
        raise ArtifactLoadError(
            f"{display}: the file holds {kind} data, not a TorchScript archive (a zip, judged by its first bytes)"
            + (
                "; a pickled torch.save() checkpoint is not TorchScript: export with torch.jit.trace/script and torch.jit.save"
                if kind == "pickle"
                else ""
            )
        )
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except zipfile.BadZipFile as e:
        raise ArtifactLoadError(f"{display}: a damaged zip archive ({e})") from None
    if not any("/code/" in n for n in names):
        what = "a pickled torch.save() checkpoint" if any(n.endswith("data.pkl") for n in names) else "a zip"
        raise ArtifactLoadError(
            f"{display}: {what}, not a TorchScript archive (no code/ inside); export with torch.jit.trace or torch.jit.script, then torch.jit.save"
        )


def set_threads(threads: int | None) -> int:
    """Set torch's intra-op threads when `threads` is given; the count before, to restore it."""
    torch = torch_module()
    before = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    return before


def load_module(path: Path, display: str | None = None, map_location: Any = "cpu") -> Any:
    """The ScriptModule in eval mode, on the CPU unless `map_location` says otherwise; the archive is checked
    before torch reads it."""
    check_archive(path, display)
    torch = torch_module()
    try:
        module = torch.jit.load(str(path), map_location=map_location)
    except Exception as e:
        raise ArtifactLoadError(
            f"{display or path.name}: torch.jit.load cannot read it: {runtime_error_text(e)}"
        ) from None
    module.eval()
    return module


def names(declared: list[str] | None, n: int, stem: str) -> list[str]:
    """`declared` when it has one name per tensor, else `<stem>_0`..."""
    if declared is not None and len(declared) == n:
        return list(declared)
    return [f"{stem}_{i}" for i in range(n)]
