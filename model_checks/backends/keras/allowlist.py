"""What a Keras config may name, checked before Keras reads it.

A `.keras` archive's `config.json` names the module and class of every object (layers, activations,
initializers, regularizers, constraints, losses, optimizers) and Keras imports what it names, safe mode or
not: `{"module": "os", "class_name": "system"}` would be imported. A `TFOpLambda` layer names a TensorFlow
function by path (`io.write_file`), and a `Lambda` layer may name a function of any imported module.
So every name is checked against allow-lists of Keras and TensorFlow layer modules first, and anything
else is refused with the name and where in the config it was found. Plain JSON only: no TensorFlow here.

Keras' own layers can read files too: a lookup or text-vectorization layer given its `vocabulary` as a path reads
that file when it is built (TensorFlow's table initializer, in native code no audit hook sees), from anywhere the
gate's user may read, and its parse error quotes the file into the report. Keras writes a vocabulary into the
config as a list, so a path there is refused, as is any layer that loads a model from a path (`TFSMLayer`).
"""

from __future__ import annotations

import re
from typing import Any, Iterator

# Keras modules objects may come from (Keras 2 as tf_keras writes them, and Keras 3's public names).
_KERAS_SUBMODULES = (
    "layers",
    "initializers",
    "regularizers",
    "constraints",
    "activations",
    "losses",
    "metrics",
    "optimizers",
    "mixed_precision",
    "models",
    "engine",
    "saving",
    "dtype_policies",
)
_ALLOWED_MODULE = re.compile(
    r"^(?:tf_)?keras(?:\.src)?(?:\.(?:%s)(?:\.[A-Za-z0-9_]+)*)?$" % "|".join(_KERAS_SUBMODULES)
)
# Serialization markers Keras writes for plain values (no import behind them); `__lambda__` is bytecode.
_VALUE_MARKERS = {"__tensor__", "__numpy__", "__bytes__", "__tuple__", "__typespec__", "__ellipsis__", "__slice__"}
# TensorFlow namespaces a TFOpLambda may call into: arithmetic on tensors, nothing that reaches a file,
# the network, a debugger, Python callbacks or a native library.
_TF_NAMESPACES = {
    "math",
    "nn",
    "linalg",
    "signal",
    "bitwise",
    "__operators__",
    "image",
    "sparse",
    "ragged",
    "strings",
    "random",
    "dtypes",
    "experimental.numpy",
}
_SIDE_EFFECTS = re.compile(
    r"(?i)write|save|print|debug|summary|file|py_?func|numpy_function|load_(?:op_)?library|"
    r"assert|variable|checkpoint|queue|profiler|callback|tpu|distribute|compat|raw_ops|^io\.|"
    r"^data\.|^config\.|^sysconfig|^autograph|^test\.|^train\.|^saved_model|^keras\.|^xla|^mlir"
)
_TF_TOP_LEVEL = re.compile(r"^[a-z][a-z0-9_]*$")
# Config keys whose text a Keras layer opens as a file when it is built (a lookup layer's vocabulary as a path).
_PATH_KEYS = ("vocabulary", "vocabulary_file", "vocab_file", "filepath", "file_path", "filename", "path")
_LOADS_A_MODEL = frozenset({"TFSMLayer"})  # a layer that loads a SavedModel from a path: its functions run


def _objects(node: Any, where: str = "config.json") -> Iterator[tuple[str, dict]]:
    """Every serialized object (a mapping with `class_name`) and where it sits, depth first, without recursion."""
    stack = [(where, node)]
    while stack:
        at, cur = stack.pop()
        if isinstance(cur, dict):
            if isinstance(cur.get("class_name"), str):
                label = cur.get("config", {}).get("name") if isinstance(cur.get("config"), dict) else None
                at = f"{at} > {cur['class_name']}" + (f" '{label}'" if isinstance(label, str) else "")
                yield at, cur
            stack.extend((at, v) for v in reversed(list(cur.values())))
        elif isinstance(cur, list):
            stack.extend((at, v) for v in reversed(cur))


def tf_op_problem(name: Any) -> str | None:
    """Why a TFOpLambda's `function` (a path under `tf.`, such as `nn.relu`) is refused, or None."""
    if not isinstance(name, str) or not name:
        return f"names the TensorFlow function {name!r}, which is not a name"
    namespace = name.rsplit(".", 1)[0] if "." in name else ""
    if _SIDE_EFFECTS.search(name):
        return f"calls tf.{name}, an operation with side effects (files, network, debugging, Python callbacks or native code)"
    if namespace and namespace not in _TF_NAMESPACES:
        return f"calls tf.{name}, outside the TensorFlow namespaces a layer may use ({', '.join(sorted(_TF_NAMESPACES))}, and tf.* itself)"
    if not namespace and not _TF_TOP_LEVEL.match(name):
        return f"calls tf.{name}, which is not a TensorFlow function name"
    return None


def _object_problem(obj: dict) -> str | None:
    cls, module, registered = obj["class_name"], obj.get("module"), obj.get("registered_name")
    if cls == "__lambda__":
        return "holds Python bytecode (a lambda); it would run on load"
    if cls in _VALUE_MARKERS:
        return None
    if isinstance(registered, str) and ">" in registered:
        return f"is the custom object {registered!r}, registered by code outside Keras"
    if module == "builtins":
        return None if cls == "function" else f"names the Python builtin {cls!r}"
    if module is not None and (not isinstance(module, str) or not _ALLOWED_MODULE.match(module)):
        return f"names the module {module!r} (class {cls!r}), which is not a Keras layer module; only Keras' own modules are imported"
    config = obj.get("config")
    if cls in _LOADS_A_MODEL:
        return f"loads a model from a path when it is built ({cls}): the code it carries would run, and from outside the artifact"
    if isinstance(config, dict) and (key := next((k for k in _PATH_KEYS if isinstance(config.get(k), str)), None)):
        return (
            f"reads the file {config[key][:200]!r} when it is built ({key}); a model may read nothing outside "
            f"itself: keep the {key} in the model (Keras writes a vocabulary into the config as a list)"
        )
    if cls == "TFOpLambda" and isinstance(config, dict):
        return tf_op_problem(config.get("function"))
    if cls == "Lambda" and isinstance(config, dict):
        return _lambda_problem(config)
    return None


def _lambda_problem(config: dict) -> str | None:
    """A Lambda layer runs its function: bytecode is refused, and so is a named function outside Keras."""
    for key in ("function", "output_shape"):
        kind, value, module = (
            config.get(f"{key}_type"),
            config.get(key),
            config.get(f"{key}_module" if key != "function" else "module"),
        )
        if kind == "lambda" or (isinstance(value, list) and value and isinstance(value[0], str)):
            return f"holds Python bytecode as its {key} (a lambda), which would run when the model is built (refused, as Keras' safe mode does)"
        if kind == "function" and isinstance(value, str):
            if not isinstance(module, str) or not _ALLOWED_MODULE.match(module):
                return f"calls {module}.{value} as its {key}; a Lambda may only name functions of Keras' own modules"
    return None


def config_problems(config: Any, where: str = "config.json", limit: int = 10) -> list[str]:
    """What in a Keras config is refused: each with where it sits and what it names (at most `limit`)."""
    problems = []
    for at, obj in _objects(config, where):
        why = _object_problem(obj)
        if why:
            problems.append(f"{at}: {why}")
            if len(problems) >= limit:
                problems.append("(more refused objects not listed)")
                break
    return problems
