"""What a file holds, judged by its first bytes, so a pickle named `.onnx` never reaches a parser. The container
kinds are known here; a framework's own kind (`onnx`) is its backend folder's declaration (`Framework.sniff`)."""

from __future__ import annotations

from pathlib import Path


def sniff_bytes(head: bytes) -> str:
    """A framework's kind (`tflite`, `onnx`), `zip`, `pickle`, `hdf5`, `numpy`, `text`, `empty` or `unknown`.
    A framework's magic number is tried first, a heuristic (ONNX's) after the containers."""
    from model_checks.backends.registry import sniff_kind

    if not head:
        return "empty"
    if (kind := sniff_kind(head, weak=False)) is not None:
        return kind
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if (kind := sniff_kind(head, weak=True)) is not None:
        return kind
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unknown"


def sniff(path: Path, n: int = 16) -> str:
    with open(path, "rb") as f:
        return sniff_bytes(f.read(n))
