"""ONNX -> PyTorch through onnx2torch (1.5.15): a torch.fx module built from the converter's registry.

onnx2torch was chosen over onnx2pytorch because its registry answers, before converting, whether each
node has a converter (`get_converter` raises NotImplementedError naming the op, domain and version), and
its fx module scripts or traces to TorchScript. Both import torchvision on import, for NMS and RoIAlign
only (onnx2pytorch also for DeformConv, MaxRoiPool and ImageDecoder); the torchvision wheels reachable here
fail to import beside the CPU torch. So when torchvision does not import, a placeholder stands in while
onnx2torch is imported and is removed right after: models without those ops convert, and a model with
them is refused with the ops named.
"""

from __future__ import annotations

import io
import json
import sys
import types
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

import numpy as np

CONVERTER = "onnx2torch 1.5.15"
TORCHVISION_OPS = ("NonMaxSuppression", "RoiAlign", "DeformConv", "MaxRoiPool", "ImageDecoder")
NAMES_FILE = "model_checks_io.json"  # inside the TorchScript archive: the ONNX input and output names


class Unconvertible(Exception):
    """The converter cannot handle the model: the message names the ops and the converter."""


def _torchvision_problem() -> str | None:
    try:
        import torchvision  # noqa: F401
    except Exception as e:  # CUDA wheels beside the CPU torch raise RuntimeError or OSError, not only ImportError
        for name in [m for m in sys.modules if m == "torchvision" or m.startswith("torchvision.")]:
            del sys.modules[name]
        return f"{type(e).__name__}: {str(e).splitlines()[0][:160] if str(e) else 'no message'}"
    return None


def _placeholder(missing: Any) -> Any:
    def attr(name: str) -> Any:
        if name.startswith("__"):  # inspect and importlib probe __file__, __spec__ ...
            raise AttributeError(name)
        return missing

    return attr


def onnx2torch(problem: str | None = None) -> Any:
    """The onnx2torch package, imported with a torchvision placeholder when torchvision does not import."""
    if "onnx2torch" in sys.modules:
        return sys.modules["onnx2torch"]
    problem = problem or _torchvision_problem()
    added = []
    if problem is not None:

        def missing(*_: Any, **__: Any) -> Any:
            raise Unconvertible(f"this op needs a working torchvision ({problem})")

        for name in ("torchvision", "torchvision.ops", "torchvision.io"):
            mod = types.ModuleType(name)
            mod.__getattr__ = _placeholder(missing)  # type: ignore[method-assign]
            mod.__path__ = []  # a package, so `from torchvision.ops import roi_align` resolves
            sys.modules[name] = mod
            added.append(name)
        sys.modules["torchvision"].ops = sys.modules["torchvision.ops"]  # type: ignore[attr-defined]
    try:
        import onnx2torch as package
    except ModuleNotFoundError as e:
        from model_checks.core.errors import MissingDependencyError
        from model_checks.core.requires import missing

        why = missing(e, "roundtrip", "converting ONNX to PyTorch")
        raise MissingDependencyError(
            f"{why} (then pip install --no-deps onnx2torch==1.5.15 if pip wants torchvision)"
        ) from None
    finally:
        for name in added:  # the placeholder serves onnx2torch's imports only
            sys.modules.pop(name, None)
    return package


def unsupported(model: Any) -> list[str]:
    """The ops of `model` onnx2torch has no converter for, and those that need a torchvision that does not import."""
    problem = _torchvision_problem()
    onnx2torch(problem)
    from onnx2torch.node_converters.registry import get_converter

    opsets = {o.domain or "ai.onnx": o.version for o in model.opset_import}
    missing, vision = set(), set()
    for n in model.graph.node:
        domain = n.domain or "ai.onnx"
        try:
            get_converter(n.op_type, opsets.get(domain, 1), domain if n.domain else "")
        except NotImplementedError:
            missing.add(n.op_type if not n.domain else f"{n.domain}.{n.op_type}")
        if problem is not None and n.op_type in TORCHVISION_OPS:
            vision.add(n.op_type)
    reasons = [f"{CONVERTER} has no converter for {', '.join(sorted(missing))}"] if missing else []
    if vision:
        reasons.append(
            f"{', '.join(sorted(vision))} need(s) a working torchvision, which does not import here ({problem})"
        )
    return reasons


class Converted:
    """The converted module behind the gate's runner interface: feeds by ONNX input name, outputs by ONNX output name."""

    def __init__(self, module: Any, inputs: list[str], outputs: list[str]):
        self.module, self.input_names, self.output_names = module, inputs, outputs

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        import torch

        with torch.no_grad():
            out = self.module(*(torch.from_numpy(np.ascontiguousarray(feeds[n])) for n in self.input_names))
        out = out if isinstance(out, (tuple, list)) else (out,)
        return {n: o.detach().numpy() for n, o in zip(self.output_names, out)}


def convert(model: Any) -> Converted:
    """The ONNX model as a torch module; Unconvertible (naming the ops and the converter) where it cannot be. No name
    from the model reaches the generated code (model_checks.backends.onnx.names).

    onnx2torch reads a Conv's weight only from an initializer (a Constant node's output fails with a KeyError
    naming the weight), so Constant weights are made initializers first, in a copy: the same function."""
    from model_checks.producers.onnx_graph import constant_weights, constants_to_initializers

    if constant_weights(model):
        copy = type(model)()
        copy.CopyFrom(model)
        constants_to_initializers(copy)
        model = copy
    reasons = unsupported(model)
    if reasons:
        raise Unconvertible("; ".join(reasons))
    from model_checks.backends.onnx.names import anonymised

    package = onnx2torch()
    inits = {i.name for i in model.graph.initializer}
    inputs = [i.name for i in model.graph.input if i.name not in inits]
    try:
        # torch.fx pastes node and tensor names into the Python source it compiles: the converter sees only names
        # chosen here, and the module's positional inputs and outputs are mapped back to the ONNX names.
        module = package.convert(anonymised(model))
    except Exception as e:
        raise Unconvertible(f"{CONVERTER} failed: {type(e).__name__}: {str(e)[:200]}") from None
    return Converted(module.eval(), inputs, [o.name for o in model.graph.output])


@dataclass(frozen=True)
class ToTorchResult:
    path: Path
    how: str  # "scripted" or "traced"
    comparison: Any

    def __str__(self) -> str:
        return f"wrote {self.path} ({self.how} TorchScript, {CONVERTER}); matches onnxruntime: " + ", ".join(
            f"{m} {v:.3g}" for m in ("rel_l2", "max_abs") if (v := self.comparison.worst(m)) is not None
        )


def to_torchscript(conv: Converted, example: Mapping[str, np.ndarray]) -> tuple[Any, str]:
    import torch

    try:
        return torch.jit.script(conv.module), "scripted"
    except Exception:  # an fx module with Python control flow scripting refuses: trace it on the example
        ex = tuple(torch.from_numpy(np.ascontiguousarray(example[n])) for n in conv.input_names)
        with torch.no_grad():
            return torch.jit.trace(conv.module, ex, check_trace=False), "traced"


def write(
    src: Path,
    dst: Path,
    root: Path | None = None,
    tolerance: Any = None,
    samples: Mapping[str, np.ndarray] | None = None,
) -> ToTorchResult:
    """Convert `src`, compare with onnxruntime on `samples` (default: seeded inputs at each batch size the gate
    tries) under `tolerance` (default: the gate's), and only then save a TorchScript archive that records the ONNX
    input and output names."""
    import torch

    from model_checks.backends.onnx.loader import load_proto
    from model_checks.backends.onnx.runner import OnnxRunner
    from model_checks.core.errors import InputGenerationError
    from model_checks.core.fileio import write_bytes
    from model_checks.core.inputs import Case, generated_cases, merge_interface
    from model_checks.core.metrics import compare_outputs
    from model_checks.manifest.model import Limit
    from model_checks.producers.verify import ProducerError, seeded_feeds

    root = root or src.parent
    model = load_proto(src, root)
    try:
        conv = convert(model)
    except Unconvertible as e:
        raise ProducerError(f"{src.name}: cannot convert to PyTorch: {e}; nothing was written") from None
    ort = OnnxRunner(src, root)
    if samples is not None:
        cases = [Case("samples", dict(samples))]
    else:
        try:
            cases = generated_cases(merge_interface(None, ort.inputs), src.name)
        except InputGenerationError:
            seeded_feeds(model, what=f"to-torch {src.name}")  # raises the producer's sentence: pass samples
            raise
    limits = tolerance or (
        lambda _name: {
            "rel_l2": Limit(1e-4, "default (model-checks to-torch)"),
            "max_abs": Limit(1e-3, "default (model-checks to-torch)"),
        }
    )
    try:
        scripted, how = to_torchscript(conv, cases[0].inputs)
    except Exception as e:  # tracing runs the module: an op the converter mapped wrongly fails here
        raise ProducerError(
            f"{src.name}: the converted module does not run ({type(e).__name__}: {str(e).strip()[:300]}); nothing was written"
        ) from None
    saved = Converted(scripted, conv.input_names, conv.output_names)
    for case in cases:
        try:
            got = saved.infer(case.inputs)
        except Exception as e:
            raise ProducerError(
                f"{src.name}: the converted module fails on {case.label} ({type(e).__name__}: {str(e).strip()[:300]}); "
                "nothing was written"
            ) from None
        comparison = compare_outputs(got, ort.infer(case.inputs), limits)
        if not comparison:
            raise ProducerError(
                f"{src.name}: the converted module differs from onnxruntime ({case.label}); nothing written\n"
                + "\n".join(comparison.render())
            )
    names = json.dumps(
        {"inputs": conv.input_names, "outputs": conv.output_names, "converter": CONVERTER, "source": src.name}
    )
    buf = io.BytesIO()
    torch.jit.save(scripted, buf, _extra_files={NAMES_FILE: names})
    write_bytes(dst, buf.getvalue())
    return ToTorchResult(dst, how, comparison)
