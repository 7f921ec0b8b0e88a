"""`metadata`: every claim of the manifest checked against the model itself."""

from __future__ import annotations

import importlib.metadata as md
import re
import warnings
from typing import TYPE_CHECKING

from model_checks.backends.base import ModelFacts
from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check, Figure
from model_checks.core.results import CheckResult
from model_checks.manifest.model import TensorSpec

if TYPE_CHECKING:  # packaging is imported when the check runs, not when it is collected
    from packaging.specifiers import SpecifierSet

NAME = "metadata"

# Producer steps that name what was done but leave nothing the graph can show.
PRODUCER_STEPS = {
    "quantize_dynamic",
    "quantize_static",
    "quantize_qdq",
    "quant_pre_process",
    "fp16",
    "convert_float_to_float16",
    "keep_io_types",
    "per_channel",
    "torch_dynamic_quantization",
    "trace",
    "script",
    "tf2onnx",
    "skl2onnx",
    "zipmap",
    "no_zipmap",
    "torch.export",
    "ort_optimize",
    # model-checks quantize: the CPU family its settings are for, 7-bit weights, and the repairs made to its source
    "target_portable",
    "target_x86_avx2",
    "target_x86_vnni",
    "target_arm64",
    "reduce_range",
    "constants_to_initializers",
    "opset_upgrade",
    "tflite_converter",
    "float16",
    "dynamic_range",
    "full_integer",
    "qat",
    "int8_io",
    "uint8_io",
}


def runtime_specifier(text: str) -> tuple[str, SpecifierSet]:
    """`onnxruntime 1.18.0` means `>=1.18.0, <2`; a PEP 440 specifier is taken as written."""
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import Version

    parts = text.strip().split(None, 1)
    if len(parts) != 2:
        raise ValueError(f"runtime: {text!r} should be '<package> <version or specifier>', e.g. 'onnxruntime 1.18.0'")
    package, spec = parts
    spec = spec.strip()
    if re.fullmatch(r"\d+(\.\d+)*([a-z]+\d*)?", spec):
        v = Version(spec)
        return package, SpecifierSet(f">={spec},<{v.major + 1}")
    try:
        return package, SpecifierSet(spec)
    except InvalidSpecifier:
        raise ValueError(f"runtime: {spec!r} is neither a version nor a PEP 440 specifier") from None


def _runtime_problem(text: str) -> str | None:
    from packaging.version import InvalidVersion, Version

    try:
        package, spec = runtime_specifier(text)
    except (ValueError, InvalidVersion) as e:
        return str(e)
    try:
        installed = md.version(package)
    except md.PackageNotFoundError:
        return f"runtime: {package} is not installed here, so '{text}' cannot hold"
    if Version(installed).release and not spec.contains(Version(Version(installed).base_version), prereleases=True):
        return f"runtime: '{text}' means {package}{spec}, but {package} {installed} is installed"
    return None


def dims_problems(side: str, decl: TensorSpec, actual: TensorSpec) -> list[str]:
    out = []
    where = f"{side} '{decl.name}'"
    if decl.dtype and actual.dtype and decl.dtype != actual.dtype:
        out.append(f"{where}: declared dtype {decl.dtype}, the model has {actual.dtype}")
    if decl.shape is not None and actual.shape is not None:
        if len(decl.shape) != len(actual.shape):
            out.append(
                f"{where}: declared rank {len(decl.shape)} {list(decl.shape)}, the model has rank {len(actual.shape)} {list(actual.shape)}"
            )
        else:
            for i, (d, a) in enumerate(zip(decl.shape, actual.shape)):
                if isinstance(d, int) and d != a:
                    out.append(
                        f"{where}: dim {i} declared {d}, the model has {a!r}"
                        + (" (dynamic)" if isinstance(a, str) else "")
                    )
                elif isinstance(d, str) and isinstance(a, int) and a > 0:
                    out.append(f"{where}: dim {i} declared dynamic '{d}', but the model fixes it to {a}")
    return out


def interface_problems(side: str, declared: tuple[TensorSpec, ...] | None, actual: tuple[TensorSpec, ...]) -> list[str]:
    if declared is None:
        return []
    problems = []
    names = [t.name for t in actual]
    by_name = {t.name: t for t in actual}
    missing = [d.name for d in declared if d.name not in by_name]
    undeclared = [n for n in names if n not in {d.name for d in declared}]
    if missing:
        problems.append(f"{side}: declared {', '.join(missing)} but the model's {side} are {', '.join(names)}")
    if undeclared and not missing:
        problems.append(f"{side}: the model also has {', '.join(undeclared)}, which the manifest does not declare")
    for d in declared:
        if d.name in by_name:
            problems += dims_problems(side[:-1], d, by_name[d.name])
    return problems


def claim_problems(ctx: CheckContext, facts: ModelFacts) -> list[str]:
    m = ctx.manifest
    problems: list[str] = []
    opset = m.get("opset")
    if opset is not None:
        if facts.opset is None:
            problems.append(f"opset: declared {opset}, but a {facts.format} model has no ONNX opset")
        elif opset != facts.opset:
            problems.append(f"opset: declared {opset}, the model imports opset {facts.opset} of the default domain")
    precision = m.get("precision")
    if precision is not None and precision != facts.precision:
        problems.append(f"precision: declared {precision}, the model is {facts.precision} ({facts.precision_why})")
    runtime = m.get("runtime")
    if runtime is not None and (p := _runtime_problem(runtime)):
        problems.append(p)
    problems += interface_problems("inputs", m.inputs, facts.inputs)
    problems += interface_problems("outputs", m.outputs, facts.outputs)
    problems += optimization_problems(m.optimizations, facts)
    per_output = (m.get("tolerance") or {}).get("per_output") or {}
    unknown = [n for n in per_output if n not in {o.name for o in facts.outputs}]
    if unknown:
        problems.append(
            f"tolerance.per_output: {', '.join(unknown)} is not an output of the model ({', '.join(o.name for o in facts.outputs)})"
        )
    return problems


def optimization_problems(claimed: tuple[str, ...], facts: ModelFacts) -> list[str]:
    import difflib

    problems = []
    from model_checks.backends import backend

    # the names a format's own optimizer knows (onnxoptimizer's passes), from its backend: asked only for a claim that
    # is neither a leftover the graph shows nor a producer step (importing onnxoptimizer imports onnx: 0.1 s or more)
    passes = getattr(backend(facts.format, "facts"), "optimizer_passes", None)
    known = set(facts.optimization_leftovers) | PRODUCER_STEPS
    if passes and any(name not in known for name in claimed):
        known |= set(passes())
    for name in claimed:
        if name in facts.optimization_leftovers:
            what, nodes = facts.optimization_leftovers[name]
            if nodes:
                shown = ", ".join(nodes[:5]) + (f" and {len(nodes) - 5} more" if len(nodes) > 5 else "")
                problems.append(f"optimization: claims {name}, but {what}: {shown}")
        elif name not in known:
            near = difflib.get_close_matches(name, sorted(known), n=1)
            problems.append(
                f"optimization: {name!r} is not an onnxoptimizer pass or producer step"
                + (f"; did you mean {near[0]!r}?" if near else "")
            )
    return problems


def run(ctx: CheckContext) -> CheckResult:
    facts = ctx.facts()
    problems = claim_problems(ctx, facts)
    checked = [
        k
        for k in ("opset", "precision", "runtime", "inputs", "outputs", "optimization")
        if ctx.manifest.get(k) is not None
    ]
    from model_checks.checks.portability import PortabilityNotChecked, unchecked_int8

    unchecked = unchecked_int8(ctx.fmt, ctx.manifest.get("precision"), facts.precision, facts.precision_why, ctx.where)
    if unchecked:
        warnings.warn(PortabilityNotChecked(f"{ctx.artifact.id}: {unchecked}"), stacklevel=2)
    return CheckResult.from_problems(
        NAME,
        ctx.artifact.id,
        [f"{p}   [{ctx.where}]" for p in problems],
        passed=f"{', '.join(checked) or 'no claims'} match the model"
        + ("" if checked else " (declare opset, precision, inputs... to check them)"),
        figures={"precision": facts.precision, "opset": facts.opset, "size_mb": facts.size_bytes / 1e6},
        notes=[f"  note: {unchecked}"] if unchecked else None,
    )


CHECK = Check(
    NAME,
    run,
    figures=(Figure("precision", "precision"), Figure("opset", "opset"), Figure("size (MB)", "size_mb", ".3f")),
)
