"""Rebuild the example artifacts: train both families on the digits, make every variant with the producers,
package each with its fp32 model as the reference. Deterministic apart from the recorded latencies."""

from __future__ import annotations

import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from model_checks.examples import FAMILIES
from model_checks.examples.data import Digits, digits
from model_checks.producers.package import Packaged, package

N_SAMPLES = 64  # rows of samples.npz: what equivalence compares on
INPUT_RANGE = (0.0, 1.0)
OPT_PASSES = ("eliminate_deadend", "fuse_add_bias_into_conv", "fuse_bn_into_conv")
FP16_TOLERANCE = {"rel_l2": 1e-2, "mae": None}
# int8 moves logits by a few percent: agreement of the predicted class is what holds, not 1e-3.
INT8_TOLERANCE = {"rel_l2": None, "mae": None, "top1_agreement": 0.95}
# skl2onnx computes in float32: probabilities to 1e-6; the label output is exact (integers always are).
SKLEARN_TOLERANCE = {"rel_l2": 1e-4, "mae": 1e-5}
LIMITS = {"max_size_mb": 1, "dynamic_axes": ["batch"], "max_accuracy_drop": 0.03}
VERSION = "1.0"
# Every example inherits CPU budgets from the root's policy.yaml: these models take 0.01-0.4 ms a call, so the
# p50 and throughput limits still catch a model made an order of magnitude slower. p99 is a scheduler figure on a
# shared machine: with two busy processes beside the gate on 2 cores (load 9.5), TorchScript and Keras p99 reached
# 14-38 ms while ONNX stayed under 5, so the p99 limit is 100 ms. calibration_us is the calibration workload's p50
# on the 2-core Xeon the limits were set on (13.6-16.2 us over the examples' packaging): a slower CPU gets
# proportionally looser limits, a faster one tighter.
POLICY = {
    "budgets": {
        "cpu": {
            "threads": 1,
            "batch_size": 32,
            "latency_ms": {"p50": 1.0, "p99": 100.0},
            "throughput_per_s": 10000,
            "calibration_us": 14.5,
        }
    },
    "runtimes": ["onnxruntime", "openvino"],
}
# Every ONNX example is gated on OpenVINO too (the policy above), under its own tolerance; measured with OpenVINO
# 2026.4.1 at f32, the int8 variants hold theirs (top-1 agreement 1.0 against onnxruntime). The scikit-learn
# family opts out, and says why in its manifest: OpenVINO has no converter for the ai.onnx.ml operators.
SKLEARN_OPT_OUT = (
    "# OpenVINO 2026.4 cannot read this model: it has no converter for the ai.onnx.ml operators "
    "(Normalizer, LinearClassifier, ZipMap)\n# that skl2onnx emits, so this artifact is gated on onnxruntime only.\n"
    "runtimes: [onnxruntime]\n"
)
# The optimized graph must not be much slower than the graph it came from, measured interleaved in one run.
OPT_BUDGETS = {"cpu": {"speedup_vs_reference": 0.8}}
# TorchScript runs on CUDA through torch where there is a GPU; elsewhere these tests skip and say why.
# The int8 variant behind a service, loaded in turn with its fp32 sibling: 2 phases of 6 s a side. The rate gate
# (99% answered) counts each phase to its last intended send plus its final fifth's median lateness, so a stall of
# the last answers cannot fail it; the latency limits sit 10-20x above what a loaded 2-core machine shows (p50
# near 3 ms, p99 near 30 ms at 50 req/s) and the speedup gate far below the measured 0.8 (each side's closed-loop
# peak is measured once, 1 s a level, one after the other), so `make check` stays steady and an int8 variant made
# four times slower than its fp32 sibling still fails.
SERVING = {
    "rate_per_s": 50,
    "arrivals": "poisson",
    "requests": 600,
    "duration_s": 15,
    "latency_ms": {"p50": 50.0, "p99": 500.0},
    "compare_with": "../digits_cnn_fp32",
    "speedup_vs": 0.3,
}
GPU_BUDGETS = {"gpu": {"batch_size": 32, "latency_ms": {"p50": 1.0, "p99": 5.0}, "throughput_per_s": 10000}}
# The CNN's fp32 export is converted back to PyTorch by the gate (onnx2torch), so test_roundtrip runs on an example.
ROUNDTRIP = ("torch",)


@dataclass(frozen=True)
class Family:
    """Where a family's artifacts go and what each is packaged with."""

    out: Path
    prefix: str
    samples: np.ndarray
    eval: tuple[np.ndarray, np.ndarray]
    layout: str

    def dir(self, variant: str) -> Path:
        return self.out / f"{self.prefix}_{variant}"

    @property
    def fp32(self) -> Path:
        return self.dir("fp32") / "model.onnx"

    def package(self, variant: str, model: Path, **kw: Any) -> Packaged:
        if variant == "fp32":  # the family's reference: nothing to compare with, no drop to limit
            reference, limits = None, {k: v for k, v in LIMITS.items() if k != "max_accuracy_drop"}
        else:
            reference, limits = self.fp32, LIMITS
        return package(
            model,
            self.dir(variant),
            model_name=f"{self.prefix}_{variant}",
            version=VERSION,
            root=self.out,
            reference=reference,
            samples=self.samples,
            eval_data=self.eval,
            input_range=INPUT_RANGE,
            layout=self.layout,
            limits=limits,
            **kw,
        )


def _fresh(d: Path) -> Path:
    if d.exists():
        shutil.rmtree(d)
    d.mkdir(parents=True)
    return d


def torch_family(out: Path, data: Digits) -> list[Packaged]:
    """digits_cnn: fp32, optimized, fp16, int8 dynamic, int8 static (QDQ), traced and scripted TorchScript."""
    import torch

    from model_checks.backends.onnx.facts import model_facts
    from model_checks.examples import digits_torch
    from model_checks.producers import fp16, optimize, ort_quantize, torch_export, torchscript

    model = digits_torch.train(data.nchw(data.x_train), data.y_train)
    x_test = data.nchw(data.x_test)
    fam = Family(out, "digits_cnn", x_test[:N_SAMPLES], (x_test, data.y_test), "NCHW")
    example = torch.from_numpy(x_test[:8])
    made = []
    for variant in ("fp32", "opt", "fp16", "int8_dynamic", "int8_static", "traced", "scripted"):
        _fresh(fam.dir(variant))
    # fp32 keeps BatchNormalization (no constant folding) so the optimized variant has a fusion to show
    torch_export.export_onnx(
        model, example, fam.fp32, input_names=("input",), output_names=("logits",), fold_constants=False
    )
    made.append(fam.package("fp32", fam.fp32, roundtrip=ROUNDTRIP))
    opt = optimize.optimize(fam.fp32, fam.dir("opt") / "model.onnx", OPT_PASSES, samples={"input": fam.samples})
    made.append(fam.package("opt", opt.path, optimization=list(OPT_PASSES), budgets=OPT_BUDGETS))
    f16 = fp16.to_fp16(fam.fp32, fam.dir("fp16") / "model.onnx", keep_io_types=True, samples={"input": fam.samples})
    made.append(fam.package("fp16", f16.path, optimization=["fp16", "keep_io_types"], tolerance=FP16_TOLERANCE))
    dyn = ort_quantize.quantize_dynamic(opt.path, fam.dir("int8_dynamic") / "model.onnx", weight_type="int8")
    made.append(
        fam.package(
            "int8_dynamic", dyn.path, optimization=[*OPT_PASSES, *dyn.steps], tolerance=INT8_TOLERANCE, serving=SERVING
        )
    )
    calibration = data.nchw(data.x_train)[:512]
    qdq = ort_quantize.quantize_static(opt.path, fam.dir("int8_static") / "model.onnx", calibration, per_channel=True)
    made.append(fam.package("int8_static", qdq.path, optimization=[*OPT_PASSES, *qdq.steps], tolerance=INT8_TOLERANCE))
    facts = model_facts(fam.fp32, out)  # a TorchScript archive names no inputs: declare the ONNX model's
    for variant, kind in (("traced", "trace"), ("scripted", "script")):
        ts = torchscript.to_torchscript(model, example, fam.dir(variant) / "model.pt", kind)
        made.append(
            fam.package(
                variant, ts.path, optimization=[kind], inputs=facts.inputs, outputs=facts.outputs, budgets=GPU_BUDGETS
            )
        )
    return made


def keras_family(out: Path, data: Digits) -> list[Packaged]:
    """digits_keras: fp32, fp16, uint8 (dynamic) and int8 (static QDQ) ONNX through tf2onnx; the Keras model;
    TFLite float32, float16, dynamic-range and full-int8 (from the QAT model) against it; the Keras model against
    the full-int8 one, asking for the tfmot TFLite step (`_qat_tflite`)."""
    from model_checks.examples import digits_keras
    from model_checks.producers.keras_convert import convert_keras

    model = digits_keras.train(data.nhwc(data.x_train), data.y_train)
    x_test = data.nhwc(data.x_test)
    fam = Family(out, "digits_keras", x_test[:N_SAMPLES], (x_test, data.y_test), "NHWC")
    calibration = data.nhwc(data.x_train)[:512]
    made = []
    for variant, tolerance in (
        ("fp32", None),
        ("fp16", FP16_TOLERANCE),
        ("uint8", INT8_TOLERANCE),
        ("int8", INT8_TOLERANCE),
    ):
        d = _fresh(fam.dir(variant))
        conv = convert_keras(
            model,
            d / "model.onnx",
            variant,
            samples=fam.samples,
            calibration=calibration if variant == "int8" else None,
        )
        made.append(fam.package(variant, conv.path, optimization=list(conv.steps), tolerance=tolerance))
    from model_checks.examples import tfmot_keras

    _fresh(fam.dir("model"))
    made += tfmot_keras.keras_artifacts(model, fam)  # the Keras model itself, with tfmot declared
    from model_checks.examples.tflite_keras import tflite_artifacts

    made += tflite_artifacts(fam.dir("model") / "model.keras", fam, calibration)  # TFLite, against that .keras source
    # the Keras model again, its QAT road to TFLite gated under an int8 tolerance (reference: the int8 TFLite)
    made.append(
        tfmot_keras.qat_tflite_artifact(fam.dir("model") / "model.keras", fam, fam.dir("tflite_int8") / "model.tflite")
    )
    return made


def sklearn_family(out: Path, data: Digits) -> list[Packaged]:
    """digits_sklearn: a StandardScaler + LogisticRegression pipeline through skl2onnx, as a [batch, 10]
    probability tensor (the family's reference) and with skl2onnx's default ZipMap (a sequence of maps)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from model_checks.producers.sklearn_convert import convert_sklearn

    flat = lambda x: x.reshape(len(x), -1)  # noqa: E731
    model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=500, random_state=0)).fit(
        flat(data.x_train), data.y_train
    )
    x_test = flat(data.x_test)
    fam = Family(out, "digits_sklearn", x_test[:N_SAMPLES], (x_test, data.y_test), "NC")
    made = []
    for variant, zipmap in (("fp32", False), ("zipmap", True)):
        conv = convert_sklearn(model, _fresh(fam.dir(variant)) / "model.onnx", fam.samples, zipmap=zipmap)
        made.append(fam.package(variant, conv.path, optimization=list(conv.steps), tolerance=SKLEARN_TOLERANCE))
        with open(fam.dir(variant) / "metadata.yaml", "a", encoding="utf-8") as f:  # a decision, with its reason
            f.write(SKLEARN_OPT_OUT)
    return made


def write_policy(out: Path) -> Path:
    import yaml

    text = "# Defaults every artifact under this root inherits (written by `make artifacts`).\n"
    path = out / "policy.yaml"
    path.write_text(text + yaml.safe_dump(POLICY, sort_keys=False, default_flow_style=None), encoding="utf-8")
    return path


def build(out: Path, families: tuple[str, ...] = FAMILIES) -> list[Packaged]:
    out.mkdir(parents=True, exist_ok=True)
    write_policy(out)
    data = digits()
    made: list[Packaged] = []
    if "torch" in families:
        made += torch_family(out, data)
    if "keras" in families:
        made += keras_family(out, data)
    if "sklearn" in families:
        made += sklearn_family(out, data)
    if "transformer" in families:
        from model_checks.examples.tokens_transformer import transformer_family

        made += transformer_family(out)
    return made
