"""The manifest as typed values, built from a validated and policy-merged mapping."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

METRICS = ("rel_l2", "mae", "max_abs", "top1_agreement", "mismatch_fraction")
DEFAULT_TOLERANCE = {"rel_l2": 1.0e-3, "mae": 1.0e-3}

FORMAT_BY_SUFFIX = {".onnx": "onnx", ".pt": "torchscript", ".pth": "torchscript", ".keras": "keras", ".h5": "keras"}


@dataclass(frozen=True)
class TensorSpec:
    """A declared input or output: `shape` holds ints (fixed) and strings (named dynamic dims)."""

    name: str
    dtype: str | None = None
    shape: tuple[int | str, ...] | None = None
    layout: str | None = None
    range: tuple[float, float] | None = None

    @classmethod
    def parse(cls, d: dict[str, Any]) -> TensorSpec:
        return cls(
            name=d["name"],
            dtype=d.get("dtype"),
            shape=tuple(d["shape"]) if d.get("shape") is not None else None,
            layout=d.get("layout"),
            range=tuple(d["range"]) if d.get("range") else None,
        )


@dataclass(frozen=True)
class Limit:
    """A threshold and where it came from (`default`, `policy.yaml`, `metadata.yaml`)."""

    value: float
    source: str


@dataclass(frozen=True)
class Tolerance:
    """Equivalence thresholds with their provenance; `for_output` resolves per-output overrides."""

    base: dict[str, Limit]
    per_output: dict[str, dict[str, Limit | None]] = field(default_factory=dict)

    def for_output(self, name: str) -> dict[str, Limit]:
        limits: dict[str, Limit | None] = dict(self.base)
        limits.update(self.per_output.get(name, {}))
        return {k: v for k, v in limits.items() if v is not None}


@dataclass(frozen=True)
class Manifest:
    """A parsed metadata.yaml, with policy.yaml defaults merged under it."""

    model_name: str
    version: str
    file: str
    format: str
    raw: dict[str, Any]
    sources: dict[str, str]
    tolerance: Tolerance
    inputs: tuple[TensorSpec, ...] | None = None
    outputs: tuple[TensorSpec, ...] | None = None

    @property
    def id(self) -> str:
        return f"{self.model_name}@{self.version}"

    def get(self, dotted: str, default: Any = None) -> Any:
        node: Any = self.raw
        for part in dotted.split("."):
            if not isinstance(node, dict) or part not in node:
                return default
            node = node[part]
        return node

    def source_of(self, dotted: str) -> str:
        """Which file set the key: the nearest recorded ancestor wins."""
        parts = dotted.split(".")
        for i in range(len(parts), 0, -1):
            key = ".".join(parts[:i])
            if key in self.sources:
                return self.sources[key]
        return "default"

    @property
    def optimizations(self) -> tuple[str, ...]:
        opt = self.raw.get("optimization")
        if opt is None:
            return ()
        return (opt,) if isinstance(opt, str) else tuple(opt)


def build_tolerance(merged: dict[str, Any], sources: dict[str, str]) -> Tolerance:
    tol = merged.get("tolerance") or {}
    base: dict[str, Limit] = {k: Limit(v, "default (model-checks)") for k, v in DEFAULT_TOLERANCE.items()}
    for metric in METRICS:
        if metric in tol:
            src = sources.get(f"tolerance.{metric}", "metadata.yaml")
            if tol[metric] is None:
                base.pop(metric, None)
            else:
                base[metric] = Limit(float(tol[metric]), src)
    per_output: dict[str, dict[str, Limit | None]] = {}
    for out, over in (tol.get("per_output") or {}).items():
        per_output[out] = {
            m: (None if v is None else Limit(float(v), sources.get(f"tolerance.per_output.{out}.{m}", "metadata.yaml") + f" per_output.{out}"))
            for m, v in over.items()
        }
    return Tolerance(base=base, per_output=per_output)
