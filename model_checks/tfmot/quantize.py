"""Quantization-aware training applied to a Keras model: BatchNormalization gets an 8-bit moving-average
output config, preprocessing layers a no-op config, every other layer the default 8-bit scheme. The
wrapped model must run, stay close to the float model before training, and save and load back with its
compile settings."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import numpy as np

from model_checks.backends.keras.loader import keras_modules
from model_checks.core.metrics import rel_l2
from model_checks.tfmot.problems import (
    OP_LAYERS,
    PREPROCESSING,
    TENSOR_RANK,
    UNSUPPORTED,
    Problem,
    from_exception,
    nested,
    non_layer_op,
)

# Rewritten by the default scheme's layout transforms (into DepthwiseConv2D and Conv2D) before its registry
# is asked, so the registry's "not supported" is not the answer. (Its SeparableConv1D transform builds Lambda
# layers that tf-keras' safe mode refuses to clone: that one fails, and is reported as a rank problem.)
TRANSFORMED = {"SeparableConv2D"}
MAX_REL_L2 = 0.1  # fake-quantized against float, before any training; 8-bit noise is far below this
COMPILE = {"loss": "mse", "metrics": ["mae"]}
LEARNING_RATE = 1e-3


def tfmot_module() -> Any:
    keras_modules()
    import tensorflow_model_optimization as tfmot

    return tfmot


@dataclass(frozen=True)
class QuantizeReport:
    """Truthy when QAT applies, runs, stays within `max_rel_l2` of the float model and round-trips."""

    problems: tuple[Problem, ...] = ()
    configs: Mapping[str, str] = field(default_factory=dict)  # layer -> which config it got
    rel_l2: float | None = None
    max_rel_l2: float = MAX_REL_L2
    roundtrip: str | None = None  # what failed on save/load, None when it held

    @property
    def applied(self) -> bool:
        return not self.problems

    def __bool__(self) -> bool:
        return self.applied and self.rel_l2 is not None and self.rel_l2 <= self.max_rel_l2 and self.roundtrip is None

    def lines(self) -> list[str]:
        out = [str(p) for p in self.problems]
        if self.rel_l2 is not None and self.rel_l2 > self.max_rel_l2:
            out.append(
                f"the quantized model differs from the float model before training: rel_l2 {self.rel_l2:.3g} over {self.max_rel_l2}"
            )
        if self.roundtrip:
            out.append(f"save and load under quantize_scope: {self.roundtrip}")
        return out

    def __str__(self) -> str:
        if self:
            kinds = sorted(set(self.configs.values()))
            return f"quantization-aware training applies ({len(self.configs)} layers: {', '.join(kinds)}); rel_l2 {self.rel_l2:.3g} before training; saves and loads back"
        return "\n".join(self.lines())


def _registry() -> Any:
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import default_8bit_quantize_registry

    return default_8bit_quantize_registry.Default8BitQuantizeRegistry()


def _rank_sibling(cls: str, registry: Any, keras: Any) -> str | None:
    """`Conv2D` for an unsupported `Conv1D`: the same layer on rank-4 tensors, which the scheme supports."""
    for n in ("1D", "3D"):
        if cls.endswith(n):
            sib = getattr(keras.layers, cls[: -len(n)] + "2D", None)
            if sib is not None and (registry._is_supported_layer(sib) or sib.__name__ in TRANSFORMED):  # noqa: SLF001 (no public lookup by class)
                return sib.__name__
    return None


def plan(model: Any) -> tuple[dict[str, str], list[Problem]]:
    """Which config each top-level layer gets (`default`, `bn-8bit-moving-average`, `no-op`), and the problems."""
    _, keras = keras_modules()
    registry = _registry()
    configs: dict[str, str] = {}
    problems: list[Problem] = []
    for layer in model.layers:
        cls = type(layer).__name__
        if isinstance(layer, keras.layers.InputLayer):
            continue
        if isinstance(layer, keras.Model):
            problems.append(nested(layer, "quantize_model does not enter a model used as a layer"))
        elif cls in OP_LAYERS:
            problems.append(non_layer_op(layer, "quantization"))
        elif isinstance(layer, keras.layers.BatchNormalization):
            configs[layer.name] = "bn-8bit-moving-average"
        elif cls in PREPROCESSING:
            configs[layer.name] = "no-op"
        elif registry.supports(layer) or cls in TRANSFORMED:
            configs[layer.name] = "default"
        elif sib := _rank_sibling(cls, registry, keras):
            problems.append(
                Problem(
                    layer.name,
                    cls,
                    TENSOR_RANK,
                    f"the default 8-bit scheme quantizes {sib} on rank-4 tensors, not {cls} on rank-{3 if '1D' in cls else 5} tensors",
                    f"reshape and use {sib}, or annotate it with your own QuantizeConfig",
                )
            )
        else:
            problems.append(
                Problem(
                    layer.name,
                    cls,
                    UNSUPPORTED,
                    "the default 8-bit scheme has no config for this layer",
                    "annotate it with a QuantizeConfig (tfmot.quantization.keras.quantize_annotate_layer) or replace it",
                )
            )
    return configs, problems


def _config_objects() -> dict[str, Any]:
    from tensorflow_model_optimization.python.core.quantization.keras.default_8bit import (
        default_8bit_quantize_configs as c,
    )

    return {
        "Default8BitOutputQuantizeConfig": c.Default8BitOutputQuantizeConfig,
        "NoOpQuantizeConfig": c.NoOpQuantizeConfig,
    }


def quantize_model(model: Any, configs: Mapping[str, str]) -> Any:
    """The QAT model: each layer annotated with the config `plan` chose, then `quantize_apply`."""
    _, keras = keras_modules()
    tfmot = tfmot_module()
    qk = tfmot.quantization.keras
    objs = _config_objects()

    def annotate(layer: Any) -> Any:
        kind = configs.get(layer.name)
        if kind is None:
            return layer.__class__.from_config(layer.get_config())
        copy = layer.__class__.from_config(layer.get_config())
        if kind == "bn-8bit-moving-average":
            return qk.quantize_annotate_layer(copy, objs["Default8BitOutputQuantizeConfig"]())
        if kind == "no-op":
            return qk.quantize_annotate_layer(copy, objs["NoOpQuantizeConfig"]())
        return qk.quantize_annotate_layer(copy)

    annotated = keras.models.clone_model(model, clone_function=annotate)
    annotated.set_weights(model.get_weights())  # clone_model builds fresh weights
    with qk.quantize_scope(objs):
        return qk.quantize_apply(annotated)


def as_list(out: Any) -> list[np.ndarray]:
    if isinstance(out, dict):
        return [np.asarray(v) for v in out.values()]
    if isinstance(out, (list, tuple)):
        return [np.asarray(v) for v in out]
    return [np.asarray(out)]


def _loss_name(loss: Any) -> str:
    _, keras = keras_modules()
    fn = keras.losses.get(loss) if isinstance(loss, str) else loss
    return getattr(fn, "__name__", None) or type(fn).__name__


def roundtrip_problem(qmodel: Any, feeds: list[np.ndarray], directory: Path) -> str | None:
    """Compile, save, load under quantize_scope: same optimizer, loss and outputs, or what differs. HDF5, since
    tf-keras' .keras format cannot restore a QuantizeLayer's variables (it expects 5 and finds 3)."""
    _, keras = keras_modules()
    qk = tfmot_module().quantization.keras
    qmodel.compile(optimizer=keras.optimizers.Adam(LEARNING_RATE), **COMPILE)
    path = directory / "quantized.h5"
    try:
        qmodel.save(path)
        with qk.quantize_scope(_config_objects()):
            loaded = keras.models.load_model(path)
    except Exception as e:
        return f"{type(e).__name__}: {str(e).strip().splitlines()[0][:300]}"
    problems = []
    if type(loaded.optimizer).__name__ != type(qmodel.optimizer).__name__:
        problems.append(f"optimizer {type(qmodel.optimizer).__name__} came back as {type(loaded.optimizer).__name__}")
    elif not np.isclose(float(loaded.optimizer.learning_rate.numpy()), LEARNING_RATE):
        problems.append(f"learning rate {LEARNING_RATE} came back as {float(loaded.optimizer.learning_rate.numpy())}")
    if _loss_name(loaded.loss) != _loss_name(qmodel.loss):
        problems.append(f"loss {qmodel.loss!r} came back as {loaded.loss!r}")
    x = feeds if len(feeds) > 1 else feeds[0]
    for a, b in zip(as_list(qmodel(x, training=False)), as_list(loaded(x, training=False))):
        if not np.allclose(a, b, atol=1e-5):
            problems.append(f"outputs differ after loading (max |diff| {float(np.max(np.abs(a - b))):.3g})")
            break
    return "; ".join(problems) or None


def calibrate(qmodel: Any, x: Any) -> None:
    """Set every moving-average range from one batch, so 'before training' means fake-quantized with
    ranges that fit the data rather than tfmot's initial ones (0..0 at the input: all zeros). One forward
    pass in training mode with the averages' decay at 0 and BatchNormalization frozen: no weight moves."""
    from tensorflow_model_optimization.python.core.quantization.keras import quant_ops

    original = quant_ops.MovingAvgQuantize

    def at_once(*args: Any, **kwargs: Any) -> Any:
        kwargs["ema_decay"] = 0.0
        return original(*args, **kwargs)

    frozen = [layer for layer in _leaves(qmodel) if "BatchNormalization" in type(layer).__name__ and layer.trainable]
    for layer in frozen:
        layer.trainable = False
    quant_ops.MovingAvgQuantize = at_once
    try:
        qmodel(x, training=True)
    finally:
        quant_ops.MovingAvgQuantize = original
        for layer in frozen:
            layer.trainable = True


def _leaves(model: Any) -> list[Any]:
    out, stack = [], list(model.layers)
    while stack:
        layer = stack.pop()
        out.append(layer)
        if hasattr(layer, "layer"):
            stack.append(layer.layer)
        stack += getattr(layer, "layers", [])
    return out


def check_quantize(
    model: Any, feeds: list[np.ndarray], max_rel_l2: float = MAX_REL_L2, roundtrip: bool = True
) -> QuantizeReport:
    """Try QAT on `model` with inputs `feeds` (one array per model input)."""
    configs, problems = plan(model)
    if problems:
        return QuantizeReport(tuple(problems), configs, max_rel_l2=max_rel_l2)
    try:
        qmodel = quantize_model(model, configs)
        x = feeds if len(feeds) > 1 else feeds[0]
        calibrate(qmodel, x)
        q_out = as_list(qmodel(x, training=False))
    except Exception as e:
        return QuantizeReport((from_exception(e, "quantization"),), configs, max_rel_l2=max_rel_l2)
    f_out = as_list(model(x, training=False))
    err = max(rel_l2(q.astype(np.float64), f.astype(np.float64)) for q, f in zip(q_out, f_out))
    problem = None
    if roundtrip:
        with tempfile.TemporaryDirectory(prefix="model-checks-qat-") as d:
            problem = roundtrip_problem(qmodel, feeds, Path(d))
    return QuantizeReport((), configs, err, max_rel_l2, problem)
