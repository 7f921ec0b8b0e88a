"""Why tfmot does not apply, per layer, in the classes a user can act on."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

UNSUPPORTED = "unsupported layer"
TENSOR_RANK = "tensor rank"
NESTED_MODEL = "nested model"
NON_LAYER_OP = "non-layer operation"
TFMOT_ERROR = "tfmot error"  # raised by tfmot for a reason none of the classes above covers
CLASSES = (UNSUPPORTED, TENSOR_RANK, NESTED_MODEL, NON_LAYER_OP, TFMOT_ERROR)

# Layers that wrap a bare TensorFlow operation: `x + y`, `tf.nn.relu6(x)`, `x[:, 0]` in a functional model.
OP_LAYERS = {"TFOpLambda", "SlicingOpLambda", "TensorFlowOpLayer"}
# Layers that prepare inputs: never quantized (a no-op config), never pruned.
PREPROCESSING = {
    "Rescaling",
    "Normalization",
    "Resizing",
    "CenterCrop",
    "RandomCrop",
    "RandomFlip",
    "RandomRotation",
    "RandomZoom",
    "RandomTranslation",
    "RandomContrast",
    "RandomBrightness",
    "RandomHeight",
    "RandomWidth",
    "Multiply",
}


@dataclass(frozen=True)
class Problem:
    """One layer tfmot cannot handle: which, the reason class, what tfmot or we found, and the fix."""

    layer: str
    layer_class: str
    reason: str
    detail: str
    fix: str = ""

    def __str__(self) -> str:
        return f"layer '{self.layer}' ({self.layer_class}): {self.reason}: {self.detail}" + (
            f"; fix: {self.fix}" if self.fix else ""
        )


def op_name(layer: Any) -> str:
    """The TensorFlow function an op layer wraps, as the user wrote it (`tf.__operators__.add` is `a + b`)."""
    name = str(getattr(layer, "symbol", "") or layer.get_config().get("function", "") or "")
    short = name.removeprefix("tf.")
    return {"__operators__.add": "a + b", "math.multiply": "a * b", "__operators__.getitem": "x[...]"}.get(
        short, name
    ) or layer.name


def non_layer_op(layer: Any, transform: str) -> Problem:
    return Problem(
        layer.name,
        type(layer).__name__,
        NON_LAYER_OP,
        f"a bare tensor operation ({op_name(layer)}) written in the model's code, not a Keras layer; {transform} has no config for it",
        "write it as a layer (keras.layers.Add(), Multiply(), ReLU(6.)...)",
    )


def nested(layer: Any, detail: str) -> Problem:
    return Problem(
        layer.name,
        type(layer).__name__,
        NESTED_MODEL,
        detail,
        "build the model flat: call the inner model's layers on the outer model's tensors",
    )


_NOT_SUPPORTED = re.compile(r"Layer (\S+?):<class '([\w.]+)'> is not supported")


def from_exception(e: BaseException, transform: str) -> Problem:
    """A tfmot exception sorted into a class, naming the layer when tfmot's message does."""
    text = str(e).strip()
    if m := _NOT_SUPPORTED.search(text):
        return Problem(
            m.group(1), m.group(2).rsplit(".", 1)[-1], UNSUPPORTED, f"{transform}: tfmot has no config for it", ""
        )
    if "inside another keras Model" in text or "Subclassed models" in text:
        return Problem("?", "Model", NESTED_MODEL, text[:200])
    layer = re.search(r'layer "([^"]+)" \(type (\w+)\)', text)
    name, cls = (layer.group(1), layer.group(2)) if layer else ("?", "?")
    if cls in OP_LAYERS:
        return Problem(
            name,
            cls,
            NON_LAYER_OP,
            f"{transform} failed in a bare tensor operation: {type(e).__name__}: {text.splitlines()[0][:200]}",
        )
    if re.search(r"\brank\b|ndims", text):
        return Problem(name, cls, TENSOR_RANK, f"{type(e).__name__}: {text.splitlines()[0][:300]}")
    return Problem(name, cls, TFMOT_ERROR, f"{type(e).__name__}: {' '.join(text.splitlines()[:2])[:300]}")
