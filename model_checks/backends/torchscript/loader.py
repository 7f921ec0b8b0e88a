"""Loading a TorchScript archive: the file checked and sniffed as a zip before torch reads it.

A TorchScript archive carries code, so the pool only gets here for trusted artifacts (`require_trust`).
Its inputs and outputs have no names: they come from the manifest beside the model when it declares
them (`inputs`/`outputs`), else `input_0`..., `output_0`...
"""

from __future__ import annotations

import zipfile
from pathlib import Path
from typing import Any

from model_checks.core.errors import ArtifactLoadError, MissingDependencyError, runtime_error_text
from model_checks.safety.paths import check_regular_file
from model_checks.safety.sniff import sniff


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
    if not any("/code/" in n for n in names):
        what = "a pickled torch.save() checkpoint" if any(n.endswith("data.pkl") for n in names) else "a zip"
        raise ArtifactLoadError(f"{display}: {what}, not a TorchScript archive (no code/ inside); export with torch.jit.trace or torch.jit.script, then torch.jit.save")


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
        raise ArtifactLoadError(f"{display or path.name}: torch.jit.load cannot read it: {runtime_error_text(e)}") from None
    module.eval()
    return module


def _manifests_naming(path: Path, root: Path) -> list[Path]:
    """metadata.yaml files under `root` that could describe `path`: the one beside it first."""
    beside = path.parent / "metadata.yaml"
    others = sorted(p for p in root.rglob("metadata.yaml") if p != beside) if root.is_dir() else []
    return ([beside] if beside.is_file() else []) + others


def declared_names(path: Path, root: Path) -> tuple[list[str] | None, list[str] | None]:
    """Input and output names from the first manifest (the one beside the model, then the others under
    the root) whose `file` is this model and that declares them. Read here, not passed in, so a model
    loaded in an isolated worker or as another artifact's reference gets the same names."""
    from model_checks.core.errors import ModelChecksError
    from model_checks.manifest import load_manifest

    for manifest_path in _manifests_naming(path, root):
        try:
            m = load_manifest(manifest_path)
        except ModelChecksError:
            continue
        if (manifest_path.parent / m.file).resolve() == path.resolve() and (m.inputs or m.outputs):
            return ([t.name for t in m.inputs] if m.inputs else None), ([t.name for t in m.outputs] if m.outputs else None)
    return None, None


def names(declared: list[str] | None, n: int, stem: str) -> list[str]:
    """`declared` when it has one name per tensor, else `<stem>_0`..."""
    if declared is not None and len(declared) == n:
        return list(declared)
    return [f"{stem}_{i}" for i in range(n)]
