"""ONNX models (`.onnx`): loader, runner, facts, timing. onnx and onnxruntime are imported only inside them."""

from __future__ import annotations

from model_checks.backends.registry import Framework

# ModelProto's fields and their wire types: ir_version=1 varint, producer_name=2, producer_version=3,
# domain=4 (len), model_version=5 varint, doc_string=6, graph=7, opset_import=8, metadata_props=14,
# training_info=20, functions=25 (len).
_ONNX_FIRST_TAGS = {0x08, 0x12, 0x1A, 0x22, 0x28, 0x32, 0x3A, 0x42, 0x72, 0xA2, 0xCA}


def looks_like_onnx(head: bytes) -> bool:
    """A serialized ModelProto starts with one of its fields' tags (weak: judged after every sharper magic)."""
    return bool(head) and head[0] in _ONNX_FIRST_TAGS


FRAMEWORK = Framework(
    name="ONNX",
    formats=("onnx",),
    suffixes={".onnx": "onnx"},
    family="onnx",
    extra="model-checks",
    modules=("onnx", "onnxruntime"),
    runtime={"onnx": "onnxruntime"},
    kind="onnx",
    sniff=looks_like_onnx,
    sniff_weak=True,
    checker="onnx.checker (full check, shape inference)",
)
