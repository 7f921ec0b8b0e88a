"""Low-magnitude pruning applied to the supported layers of a Keras model, nested models entered,
preprocessing and listed layers skipped; a short fit with the pruning callbacks must reach the target
sparsity on every pruned layer and write summaries for TensorBoard."""

from __future__ import annotations

import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from model_checks.backends.keras.loader import keras_modules
from model_checks.tfmot.problems import (
    OP_LAYERS,
    PREPROCESSING,
    UNSUPPORTED,
    Problem,
    from_exception,
    nested,
    non_layer_op,
)
from model_checks.tfmot.quantize import as_list, tfmot_module

TARGET_SPARSITY = 0.5
EPOCHS, BATCH = 2, 2


@dataclass(frozen=True)
class PruneReport:
    """Truthy when pruning applies and every pruned layer reached `target` after the fit."""

    problems: tuple[Problem, ...] = ()
    pruned: tuple[str, ...] = ()
    skipped: tuple[str, ...] = ()
    target: float = TARGET_SPARSITY
    sparsity: Mapping[str, float] = field(default_factory=dict)  # pruned layer -> reached sparsity
    summaries: int = 0  # TensorBoard event files written
    diverged: tuple[str, ...] = ()  # pruned layers whose weights the short fit left NaN or Inf

    @property
    def applied(self) -> bool:
        return not self.problems

    def short(self) -> dict[str, float]:
        """Pruned layers below the target (one value of slack per weight tensor's rounding)."""
        return {n: s for n, s in self.sparsity.items() if s < self.target - 0.01}

    def lines(self) -> list[str]:
        out = [str(p) for p in self.problems]
        if self.applied and not self.pruned:
            out.append("no layer could be pruned: the model has no prunable weights outside skipped layers")
        out += [
            f"layer '{n}' reached sparsity {s:.3f}, below the target {self.target}" for n, s in self.short().items()
        ]
        if self.applied and self.pruned and not self.summaries:
            out.append("PruningSummaries wrote no TensorBoard event file")
        return out

    def __bool__(self) -> bool:
        return not self.lines()

    def __str__(self) -> str:
        if self:
            low = min(self.sparsity.values()) if self.sparsity else 0.0
            return (
                f"pruning applies ({len(self.sparsity)} layer(s) with weights pruned, {len(self.skipped)} left as they are); after a "
                f"short fit every pruned layer reached >= {low:.3f} sparsity (target {self.target}); {self.summaries} TensorBoard event file(s)"
                + (f"; {self.divergence()}" if self.diverged else "")
            )
        return "\n".join(self.lines() + ([self.divergence()] if self.diverged else []))

    def divergence(self) -> str:
        """The fit only drives the pruning schedule; weights it sends to NaN say nothing of pruning, but a user should know."""
        first = ", ".join(f"'{n}'" for n in self.diverged[:3]) + (
            f" and {len(self.diverged) - 3} more" if len(self.diverged) > 3 else ""
        )
        return (
            f"note: the short fit on generated data diverged (NaN or Inf weights in {len(self.diverged)} pruned layer(s): {first}); "
            "sparsity is read from the pruning masks, which are unaffected"
        )


def plan(model: Any, skip: Iterable[str] = ()) -> tuple[dict[int, str], list[Problem]]:
    """Each layer (by id, nested models entered) -> `prune` or `keep`, and the layers that stop pruning."""
    _, keras = keras_modules()
    from tensorflow_model_optimization.python.core.sparsity.keras import prunable_layer, prune_registry

    skip = set(skip)
    decisions: dict[int, str] = {}
    problems: list[Problem] = []

    def walk(m: Any) -> None:
        for layer in m.layers:
            cls = type(layer).__name__
            if isinstance(layer, keras.Model):
                if not layer._is_graph_network and not isinstance(layer, keras.Sequential):  # noqa: SLF001 (Keras' own test)
                    problems.append(
                        nested(layer, "a subclassed model used as a layer cannot be cloned to wrap its layers")
                    )
                    continue
                decisions[id(layer)] = "enter"
                walk(layer)
            elif (
                isinstance(layer, keras.layers.InputLayer) or layer.name in skip or cls in skip or cls in PREPROCESSING
            ):
                decisions[id(layer)] = "keep"
            elif cls in OP_LAYERS:
                problems.append(non_layer_op(layer, "pruning"))
            elif (
                isinstance(layer, prunable_layer.PrunableLayer)
                or hasattr(layer, "get_prunable_weights")
                or prune_registry.PruneRegistry.supports(layer)
            ):
                decisions[id(layer)] = "prune"
            else:
                problems.append(
                    Problem(
                        layer.name,
                        cls,
                        UNSUPPORTED,
                        "tfmot's PruneRegistry does not know it and it has no get_prunable_weights()",
                        "list it in tfmot.skip_layers of metadata.yaml, or implement tfmot.sparsity.keras.PrunableLayer",
                    )
                )

    walk(model)
    return decisions, problems


def prune_model(model: Any, decisions: Mapping[int, str], target: float) -> tuple[Any, list[str], list[str]]:
    """The model with the planned layers wrapped in PruneLowMagnitude (ConstantSparsity from step 0)."""
    _, keras = keras_modules()
    sparsity = tfmot_module().sparsity.keras
    schedule = sparsity.ConstantSparsity(target, begin_step=0, frequency=1)
    pruned: list[str] = []
    kept: list[str] = []

    def wrap(layer: Any) -> Any:
        what = decisions.get(id(layer), "keep")
        if what == "enter":
            return keras.models.clone_model(layer, clone_function=wrap)
        if what == "prune":
            pruned.append(layer.name)
            return sparsity.prune_low_magnitude(layer, pruning_schedule=schedule)
        if not isinstance(layer, keras.layers.InputLayer):
            kept.append(layer.name)
        return layer

    return keras.models.clone_model(model, clone_function=wrap), pruned, kept


def reached_sparsity(model: Any) -> tuple[dict[str, float], list[str]]:
    """Each pruned layer's sparsity, the share of its prunable weights that its masks prune and that hold no value
    (zero, or not finite), and the pruned layers whose weights are not all finite. Zeros alone would miss the target
    when the fit diverges (NaN * mask 0 is still NaN) although the masks are exactly on it; masks alone would pass
    weights that the masks never reached."""
    from tensorflow_model_optimization.python.core.sparsity.keras.pruning_wrapper import PruneLowMagnitude

    out, diverged = {}, []
    stack = list(model.layers)
    while stack:
        layer = stack.pop()
        if hasattr(layer, "layers") and not isinstance(layer, PruneLowMagnitude):
            stack += layer.layers
        elif isinstance(layer, PruneLowMagnitude):
            pairs = [(np.asarray(w), np.asarray(m)) for w, m, _t in layer.pruning_vars]
            total = sum(m.size for _w, m in pairs)
            if total:
                out[layer.layer.name] = (
                    sum(int(np.sum((m == 0) & ((w == 0) | ~np.isfinite(w)))) for w, m in pairs) / total
                )
            if not all(np.isfinite(w).all() for w, _m in pairs):
                diverged.append(layer.layer.name)
    return out, sorted(diverged)


def fit_briefly(pmodel: Any, feeds: list[np.ndarray], targets: list[np.ndarray], log_dir: Path) -> None:
    sparsity = tfmot_module().sparsity.keras
    # eagerly: tracing a train step through every PruneLowMagnitude wrapper costs ~50 s on MobileNetV2,
    # two eager steps ~2 s, and the masks update the same way
    pmodel.compile(optimizer="adam", loss="mse", run_eagerly=True)
    x = feeds if len(feeds) > 1 else feeds[0]
    y = targets if len(targets) > 1 else targets[0]
    pmodel.fit(
        x,
        y,
        epochs=EPOCHS,
        batch_size=BATCH,
        verbose=0,
        callbacks=[sparsity.UpdatePruningStep(), sparsity.PruningSummaries(log_dir=str(log_dir))],
    )


def check_prune(
    model: Any,
    feeds: list[np.ndarray],
    target: float = TARGET_SPARSITY,
    skip: Iterable[str] = (),
    log_dir: Path | None = None,
) -> PruneReport:
    """Try pruning on `model`; `feeds` (one array per input, batch >= 2) also serve as the fit's data."""
    decisions, problems = plan(model, skip)
    if problems:
        return PruneReport(tuple(problems), target=target)
    try:
        pmodel, pruned, kept = prune_model(model, decisions, target)
    except Exception as e:
        return PruneReport((from_exception(e, "pruning"),), target=target)
    if not pruned:
        return PruneReport((), (), tuple(kept), target)
    targets = as_list(model(feeds if len(feeds) > 1 else feeds[0], training=False))
    with tempfile.TemporaryDirectory(prefix="model-checks-prune-") as tmp:
        logs = log_dir or Path(tmp)
        try:
            fit_briefly(pmodel, feeds, targets, logs)
        except Exception as e:
            return PruneReport((from_exception(e, "pruning (fit)"),), tuple(pruned), tuple(kept), target)
        events = len(list(logs.rglob("events.out.tfevents*")))
    sparsity, diverged = reached_sparsity(pmodel)
    return PruneReport((), tuple(pruned), tuple(kept), target, sparsity, events, tuple(diverged))
