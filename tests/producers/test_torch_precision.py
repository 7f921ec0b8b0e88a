"""fp16 autocast and dynamic int8 Linear quantization, measured against fp32; the int8 model, traced,
passes the gate against fp32 outputs under a top-1 tolerance."""

from __future__ import annotations

import numpy as np
import torch

from model_checks.manifest.model import TensorSpec
from model_checks.producers.package import package
from model_checks.producers.torch_precision import autocast_supported, dynamic_int8, precision_variants, state_size
from model_checks.producers.torchscript import trace
from tests.producers.helpers import assert_passes, record


def mlp():  # type: ignore[no-untyped-def]
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(64, 128), torch.nn.ReLU(), torch.nn.Linear(128, 10)).eval()


def test_variants_are_measured_against_fp32():
    x = torch.from_numpy(np.random.default_rng(0).uniform(0, 1, (64, 64)).astype(np.float32))
    variants = {v.name: v for v in precision_variants(mlp(), x, runs=5)}
    assert {"fp32", "int8-dynamic"} <= set(variants)
    assert ("fp16-autocast" in variants) == autocast_supported("cpu")
    fp32, q = variants["fp32"], variants["int8-dynamic"]
    assert fp32.top1_agreement == 1.0 and fp32.rel_l2 == 0.0
    assert q.size_bytes < fp32.size_bytes / 2  # int8 weights: about a quarter, plus packing overhead
    assert 0.9 <= q.top1_agreement <= 1.0 and 0 < q.rel_l2 < 0.05
    assert all(v.timing.p50_ms > 0 and v.timing.runs == 5 for v in variants.values())
    if "fp16-autocast" in variants:
        assert variants["fp16-autocast"].rel_l2 < 0.01 and "MB" in str(variants["fp16-autocast"])


def test_dynamic_int8_leaves_the_original_alone():
    model = mlp()
    before = state_size(model)
    q = dynamic_int8(model)
    assert state_size(model) == before and isinstance(model[0], torch.nn.Linear)
    assert isinstance(q[0], torch.ao.nn.quantized.dynamic.Linear) and q[0].weight().dtype == torch.qint8


def test_the_int8_model_passes_the_gate_against_fp32(tmp_path, gate):
    model = mlp()
    x = np.random.default_rng(1).uniform(0, 1, (64, 64)).astype(np.float32)
    root, d = tmp_path / "root", tmp_path / "root" / "int8"
    trace(dynamic_int8(model), torch.from_numpy(x[:4]), d / "model.pt")
    with torch.no_grad():
        record(d / "fp32.npz", {"x": x}, {"logits": model(torch.from_numpy(x)).numpy()})
    package(
        d / "model.pt",
        d,
        model_name="mlp_int8",
        reference=d / "fp32.npz",
        runs=3,
        inputs=[TensorSpec("x", "float32", ("batch", 64))],
        outputs=[TensorSpec("logits")],
        tolerance={"rel_l2": 0.05, "mae": None, "top1_agreement": 0.95},
    )
    results = gate(root, d, "metadata", "equivalence")
    assert_passes(results)
    assert results[1].figures["top1_agreement"] >= 0.95
