"""What a file holds, judged by its first bytes, so a pickle named `.onnx` never reaches a parser."""

from __future__ import annotations

from pathlib import Path

# ModelProto's fields and their wire types: ir_version=1 varint, producer_name=2, producer_version=3,
# domain=4 (len), model_version=5 varint, doc_string=6, graph=7, opset_import=8, metadata_props=14,
# training_info=20, functions=25 (len).
_ONNX_FIRST_TAGS = {0x08, 0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA}


def sniff_bytes(head: bytes) -> str:
    """`onnx`, `tflite`, `zip`, `pickle`, `hdf5`, `numpy`, `text`, `empty` or `unknown`."""
    if not head:
        return "empty"
    if len(head) >= 8 and head[4:8] == b"TFL3":  # a FlatBuffer's file identifier follows its root offset
        return "tflite"
    if head.startswith(b"PK\x03\x04") or head.startswith(b"PK\x05\x06"):
        return "zip"
    if head[0] == 0x80 and len(head) > 1 and 2 <= head[1] <= 5:
        return "pickle"
    if head.startswith(b"\x89HDF\r\n\x1a\n"):
        return "hdf5"
    if head.startswith(b"\x93NUMPY"):
        return "numpy"
    if head[0] in _ONNX_FIRST_TAGS:
        return "onnx"
    try:
        head.decode("utf-8")
        return "text"
    except UnicodeDecodeError:
        return "unknown"


def sniff(path: Path, n: int = 16) -> str:
    with open(path, "rb") as f:
        return sniff_bytes(f.read(n))
