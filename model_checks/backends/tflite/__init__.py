"""TFLite (LiteRT) flatbuffers: loader, runner, facts, timing. Run by `ai_edge_litert`'s interpreter, which
imports no TensorFlow; a `.tflite` file carries no Python, so loading is safe by default, except for models
whose Flex (TensorFlow) or custom ops need code from outside the runtime."""

from __future__ import annotations

from model_checks.backends.registry import Framework


def looks_like_tflite(head: bytes) -> bool:
    """A FlatBuffer's file identifier follows its root offset: `TFL3` at bytes 4-8."""
    return len(head) >= 8 and head[4:8] == b"TFL3"


FRAMEWORK = Framework(
    name="TFLite",
    formats=("tflite",),
    suffixes={".tflite": "tflite"},
    family="litert",
    extra="model-checks[tflite]",
    modules=("ai_edge_litert",),
    runtime={"tflite": "ai-edge-litert"},
    layout={"tflite": "NHWC"},
    kind="tflite",
    sniff=looks_like_tflite,
    # a flatbuffer carries no Python; only Flex and custom ops bring code from outside the runtime (read by the
    # bounds-checked reader in its loader, named here, imported when asked)
    carries_code="loader:carries_code",
)
