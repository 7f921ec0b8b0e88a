"""The manifest as typed values, built from a validated and policy-merged mapping."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

METRICS = ("rel_l2", "mae", "max_abs", "top1_agreement", "mismatch_fraction")
DEFAULT_TOLERANCE = {"rel_l2": 1.0e-3, "mae": 1.0e-3}


@dataclass(frozen=True)
class QuantParams:
    """How a quantized tensor maps to real values: real = (stored - zero_point) * scale, `dtype` the stored type.
    Read off a model (a full-integer TFLite model's int8 inputs and outputs), never declared in a manifest."""

    scale: float
    zero_point: int
    dtype: str

    def __str__(self) -> str:
        return f"{self.dtype}, scale {self.scale:.6g}, zero point {self.zero_point}"


@dataclass(frozen=True)
class TensorSpec:
    """A declared input or output: `shape` holds ints (fixed) and strings (named dynamic dims)."""

    name: str
    dtype: str | None = None
    shape: tuple[int | str, ...] | None = None
    layout: str | None = None
    range: tuple[float, float] | None = None
    # Set by a runner that quantizes this input (dequantizes this output) itself: `dtype` is then the float type
    # the gate feeds and compares in, and `quantization` the model's own storage.
    quantization: QuantParams | None = None

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


LIMIT_KEYS = (
    "opset",
    "max_size_mb",
    "max_size_ratio",
    "allowed_ops",
    "dynamic_axes",
    "max_accuracy_drop",
    "portable_to",
)
DEVICES = ("cpu", "gpu")
# a budget check -> the key of budgets.<device> that makes it apply
BUDGET_CHECK_KEYS = {"latency": "latency_ms", "throughput": "throughput_per_s", "speedup": "speedup_vs_reference"}


@dataclass(frozen=True)
class Limits:
    """`limits:` as typed values; each number keeps where it came from. `declared` lists the keys set, in order."""

    declared: tuple[str, ...] = ()
    opset_min: int | None = None
    opset_max: int | None = None
    max_size_mb: Limit | None = None
    max_size_ratio: Limit | None = None
    allowed_ops: tuple[str, ...] | None = None
    dynamic_axes: tuple[str, ...] = ()
    max_accuracy_drop: Limit | None = None
    sources: dict[str, str] = field(default_factory=dict)
    portable_to: tuple[str, ...] | None = (
        None  # int8: the CPU kernel families equivalence must hold on (None: all); test_portability
    )

    def source(self, key: str) -> str:
        return self.sources.get(key, "metadata.yaml")


@dataclass(frozen=True)
class DeviceBudget:
    """`budgets.<device>`: latency limits by statistic (ms), throughput (items/s), speedup against the reference."""

    device: str
    where: str
    batch_size: int = 1
    threads: int | None = None
    latency_ms: dict[str, Limit] = field(default_factory=dict)
    throughput_per_s: Limit | None = None
    speedup_vs_reference: Limit | None = None
    latency_claim_ms: Limit | None = (
        None  # the manifest's top-level `latency_ms` (cpu only): checked by the latency test
    )
    calibration_us: Limit | None = (
        None  # `budgets.<device>.calibration_us`: the budgets scale with this machine's calibration
    )
    claim_machine: dict[str, Any] | None = None  # the manifest's `machine:`, where the `latency_ms` claim was measured

    def declares(self, check: str) -> bool:
        key = BUDGET_CHECK_KEYS[check]
        value = getattr(self, key)
        if key == "latency_ms":
            return bool(value) or self.latency_claim_ms is not None
        return value is not None


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
    limits: Limits = field(default_factory=Limits)

    @property
    def id(self) -> str:
        return f"{self.model_name}@{self.version}"

    def budget(self, device: str, where: str = "metadata.yaml") -> DeviceBudget | None:
        """`budgets.<device>` as typed limits with their sources; on the cpu also the top-level `latency_ms` claim,
        which alone is enough for a latency test. None when nothing is declared for the device."""
        raw = (self.raw.get("budgets") or {}).get(device) or {}
        claim = self.raw.get("latency_ms") if device == "cpu" else None
        if not raw and claim is None:
            return None
        prefix = f"budgets.{device}"

        def limit(value: Any, key: str) -> Limit | None:
            return None if value is None else Limit(float(value), f"{self.source_of(f'{prefix}.{key}')} {prefix}.{key}")

        latency = {
            s: lim for s, v in (raw.get("latency_ms") or {}).items() if (lim := limit(v, f"latency_ms.{s}")) is not None
        }
        return DeviceBudget(
            device=device,
            where=where,
            batch_size=int(raw.get("batch_size") or 1),
            threads=raw.get("threads"),
            latency_ms=latency,
            throughput_per_s=limit(raw.get("throughput_per_s"), "throughput_per_s"),
            speedup_vs_reference=limit(raw.get("speedup_vs_reference"), "speedup_vs_reference"),
            latency_claim_ms=None if claim is None else Limit(float(claim), where),
            calibration_us=limit(raw.get("calibration_us"), "calibration_us"),
            claim_machine=self.raw.get("machine") if claim is not None else None,
        )

    @property
    def roundtrip(self) -> tuple[str, ...]:
        """The frameworks this ONNX model must convert to and match (`roundtrip: [torch]`)."""
        return tuple(self.raw.get("roundtrip") or ())

    @property
    def runtimes(self) -> tuple[str, ...]:
        """The runtimes equivalence must hold on: onnxruntime first, then the declared ones in their order. Only ONNX
        files run on more than one runtime; any other format is gated on its own."""
        if self.format != "onnx":
            return ("onnxruntime",)
        return ("onnxruntime", *(r for r in (self.raw.get("runtimes") or ()) if r != "onnxruntime"))

    @property
    def determinism(self) -> bool:
        """Whether the determinism check runs for this artifact (`determinism: true`, here or in policy.yaml)."""
        return bool(self.raw.get("determinism"))

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


_DEFAULT_LIMITS = {k: Limit(v, "default (model-checks)") for k, v in DEFAULT_TOLERANCE.items()}


def build_tolerance(merged: dict[str, Any], sources: dict[str, str]) -> Tolerance:
    tol = merged.get("tolerance") or {}
    base: dict[str, Limit] = dict(_DEFAULT_LIMITS)  # a Limit is frozen: every manifest may share the defaults'
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
            m: (
                None
                if v is None
                else Limit(
                    float(v), sources.get(f"tolerance.per_output.{out}.{m}", "metadata.yaml") + f" per_output.{out}"
                )
            )
            for m, v in over.items()
        }
    return Tolerance(base=base, per_output=per_output)


def build_limits(merged: dict[str, Any], sources: dict[str, str]) -> Limits:
    lim = merged.get("limits") or {}
    src = {k: sources.get(f"limits.{k}", sources.get("limits", "metadata.yaml")) for k in lim}

    def limit(key: str) -> Limit | None:
        return None if lim.get(key) is None else Limit(float(lim[key]), f"{src[key]} limits.{key}")

    opset = lim.get("opset") or {}
    return Limits(
        declared=tuple(k for k in LIMIT_KEYS if k in lim),
        opset_min=opset.get("min"),
        opset_max=opset.get("max"),
        max_size_mb=limit("max_size_mb"),
        max_size_ratio=limit("max_size_ratio"),
        allowed_ops=tuple(lim["allowed_ops"]) if lim.get("allowed_ops") is not None else None,
        dynamic_axes=tuple(lim.get("dynamic_axes") or ()),
        max_accuracy_drop=limit("max_accuracy_drop"),
        sources=src,
        portable_to=tuple(lim["portable_to"]) if lim.get("portable_to") is not None else None,
    )
