"""Loading a TorchScript archive: the file checked and sniffed as a zip before torch reads it.

A TorchScript archive carries code, so the pool only gets here for trusted artifacts (`require_trust`).
Its inputs and outputs have no names: they come from the manifest beside the model when it declares
them (`inputs`/`outputs`), else `input_0`..., `output_0`...
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from model_checks.errors import ArtifactLoadError, MissingDependencyError
from model_checks.paths import check_regular_file
from model_checks.sniff import sniff


def torch_module() -> Any:
    try:
        import torch
    except ModuleNotFoundError:
        raise MissingDependencyError("checking torchscript artifacts needs torch: pip install 'model-checks[torch]'") from None
    return torch


def check_archive(path: Path, display: str | None = None) -> None:
    """The file is a regular file inside its size cap and a readable zip (what torch.jit.save writes)."""
    display = display or path.name
    check_regular_file(path, display)
    kind = sniff(path)
    if kind != "zip":
        raise ArtifactLoadError(f"{display}: the file holds {kind} data, not a TorchScript archive (a zip, judged by its first bytes)"
                                + ("; a pickled torch.save() checkpoint is not TorchScript: export with torch.jit.trace/script and torch.jit.save" if kind == "pickle" else ""))
    try:
        with zipfile.ZipFile(path) as z:
            names = z.namelist()
    except zipfile.BadZipFile as e:
        raise ArtifactLoadError(f"{display}: a damaged zip archive ({e})") from None
    if not any(n.endswith("/code/") or "/code/" in n for n in names) or not any(n.endswith("data.pkl") for n in names):
        raise ArtifactLoadError(f"{display}: a zip but not a TorchScript archive (no code/ and data.pkl inside); export with torch.jit.save")


def load_module(path: Path, display: str | None = None) -> Any:
    """The ScriptModule on the CPU, in eval mode."""
    check_archive(path, display)
    torch = torch_module()
    try:
        module = torch.jit.load(str(path), map_location="cpu")
    except Exception as e:
        raise ArtifactLoadError(f"{display or path.name}: torch.jit.load cannot read it ({type(e).__name__}: {str(e).strip()[:300]})") from None
    module.eval()
    return module


def declared_names(path: Path) -> tuple[list[str] | None, list[str] | None]:
    """Input and output names declared by the manifest beside `path` when it describes this file."""
    manifest_path = path.parent / "metadata.yaml"
    if not manifest_path.is_file():
        return None, None
    from model_checks.errors import ModelChecksError
    from model_checks.manifest import load_manifest

    try:
        m = load_manifest(manifest_path)
    except ModelChecksError:
        return None, None
    if (path.parent / m.file).resolve() != path.resolve():
        return None, None
    return ([t.name for t in m.inputs] if m.inputs else None), ([t.name for t in m.outputs] if m.outputs else None)


def names(declared: list[str] | None, n: int, stem: str) -> list[str]:
    """`declared` when it has one name per tensor, else `<stem>_0`..."""
    if declared is not None and len(declared) == n:
        return list(declared)
    return [f"{stem}_{i}" for i in range(n)]
