"""test_portability: an int8 model that only holds on VNNI CPUs fails on any CPU, naming the kernels, the
simulated figures and the fix; a 7-bit one passes. The ISA is injected (MODEL_CHECKS_ISA), never this machine's."""

import numpy as np
import pytest
from onnx import helper as onnx_helper
from onnx import numpy_helper as onnx_numpy_helper

from fixtures import artifacts as A
from fixtures import int8_models as Q
from model_checks.backends.onnx import int8
from model_checks.backends.onnx.runner import OnnxRunner
from model_checks.checks import portability
from model_checks.checks.portability import PortabilityNotChecked
from model_checks.core.machine import ISA_ENV
from model_checks.core.metrics import Comparison
from model_checks.core.session import GateSession

INPUTS = [{"name": "input", "dtype": "float32", "shape": ["batch", Q.K], "range": [0.0, 1.0]}]
TOLERANCE = {"rel_l2": 0.05, "mae": None}


def check(root, name="variant"):
    gs = GateSession([root])
    return gs.run_check("portability", next(a for a in gs.artifacts if a.id.startswith(name)))


def int8_pair(root, bits=8, **manifest):
    return A.pair(
        root, Q.qdq_matmul(weight_bits=bits), Q.fp32(), precision="int8", inputs=INPUTS, tolerance=TOLERANCE, **manifest
    )


@pytest.fixture(params=["avx512f,avx512_vnni,avx2", "neon,asimd,asimddp", "avx2,fma"])
def any_cpu(request, monkeypatch):
    monkeypatch.setenv(ISA_ENV, request.param)
    return request.param


def test_full_range_int8_weights_are_predicted_to_fail_on_x86_without_vnni_on_any_cpu(tmp_path, any_cpu):
    int8_pair(tmp_path)
    r = check(tmp_path)
    text = str(r)
    assert not r
    assert "portability: variant@1.0 (1 int8 kernel(s), 1 that can saturate a 16-bit pair sum): 1 problem" in text
    assert (
        "on an x86-64 CPU without VNNI (AVX2, or AVX-512 without VNNI) this model's int8 kernels saturate: "
        "the emulated "
        "VPMADDUBSW pair sums (u8 x s8, clipped to int16) give rel_l2 "
    ) in text
    assert "against its reference ../ref/model.onnx, outside the tolerance (without saturation: rel_l2 0.0" in text
    assert " pair sums saturated, in: head/MatMul (MatMul U8S8, weights [" in text
    assert "Fix: quantize the weights to 7 bits (onnxruntime.quantization: reduce_range=True" in text
    assert "deploy with the session option session.x64quantprecision=1" in text
    assert "must hold on x86-avx2, x86-vnni, arm64 (default: every kernel family)" in text
    assert r.figures["x86_avx2_simulated_rel_l2"] > 0.05 and r.figures["saturated_pair_sums"] > 0


def test_seven_bit_weights_pass_with_the_prediction_shown(tmp_path, any_cpu):
    int8_pair(tmp_path, bits=7)
    r = check(tmp_path)
    assert r, str(r)
    assert (
        r.headline == "portability: variant@1.0 (1 int8 kernel(s), 0 that can saturate a 16-bit pair sum): "
        "holds on x86-avx2, x86-vnni, arm64"
    )
    assert "x86-avx2: none of the 1 int8 kernel(s) can saturate" in str(r)


def test_portable_to_without_x86_avx2_skips_the_prediction(tmp_path, monkeypatch):
    monkeypatch.setenv(ISA_ENV, "avx2,avx512_vnni")
    int8_pair(tmp_path, limits={"portable_to": ["x86-vnni", "arm64"]})
    r = check(tmp_path)
    assert r, str(r)
    assert "must hold on x86-vnni, arm64 (limits.portable_to from metadata.yaml)" in str(r)
    assert "x86_avx2_simulated_rel_l2" not in r.figures


def test_on_an_avx2_cpu_both_kernel_paths_are_run_and_saturation_is_named(tmp_path, monkeypatch):
    """This machine has VNNI, so the saturating default kernels are stood in for by the emulation; the U8U8 path
    (session.x64quantprecision=1) is onnxruntime's own."""
    monkeypatch.setenv(ISA_ENV, "avx2,fma")
    real = OnnxRunner.infer_impl

    def saturating(self, feeds):
        if self.path.parent.name == "variant":
            return int8.simulate(self.path, feeds).outputs
        return real(self, feeds)

    monkeypatch.setattr(OnnxRunner, "infer_impl", saturating)
    int8_pair(tmp_path)
    r = check(tmp_path)
    text = str(r)
    assert not r and "2 problems" in r.headline
    assert "this CPU's int8 kernels saturate: " in text and "(avx2 fma) gives rel_l2 " in text
    assert (
        "with its default kernels and rel_l2 0.0" in text
        and "with session.x64quantprecision=1, which differ beyond the tolerance" in text
    )
    assert "Kernels that can saturate: head/MatMul (MatMul U8S8" in text
    assert (
        "measured here (" in text
        and r.figures["measured_x64quantprecision_rel_l2"] < 0.05 < r.figures["measured_rel_l2"]
    )


def test_an_fp32_onnx_model_is_skipped_and_the_check_is_not_collected_for_fp32(tmp_path):
    A.onnx_artifact(tmp_path / "m", name="m", precision="int8")
    r = check(tmp_path, "m")
    assert r.skipped == "m@1.0 has no integer Conv, MatMul or Gemm kernels"
    from model_checks.checks import applicable

    A.onnx_artifact(tmp_path / "f", name="f", precision="fp32")
    gs = GateSession([tmp_path])
    assert "portability" not in applicable(next(a for a in gs.artifacts if a.id == "f@1.0"))


def test_the_example_emulation_is_deterministic(tmp_path):
    int8_pair(tmp_path)
    feeds = {"input": np.full((2, Q.K), 1.0, np.float32)}
    a, b = (
        int8.simulate(tmp_path / "variant" / "model.onnx", feeds),
        int8.simulate(tmp_path / "variant" / "model.onnx", feeds),
    )
    assert (a.outputs["logits"] == b.outputs["logits"]).all() and a.saturated == b.saturated


def metadata_of(root, name="variant"):
    gs = GateSession([root])
    return gs.run_check("metadata", next(a for a in gs.artifacts if a.id.startswith(name)))


def test_an_int8_model_that_declares_no_precision_is_said_to_go_unchecked_not_passed_silently(tmp_path):
    """Collection reads the manifest, not the model: without `precision`, test_portability is not collected for an
    int8 model, so the metadata check (which reads the model) says so, as a pytest warning and in its pass line."""
    A.pair(tmp_path, Q.qdq_matmul(), Q.fp32(), inputs=INPUTS, tolerance=TOLERANCE)
    with pytest.warns(PortabilityNotChecked) as seen:
        r = metadata_of(tmp_path)
    assert r, str(r)
    said = (
        "declares no precision, so its int8 portability across CPU kernel families (x86 with and without VNNI, ARM) "
        "is not checked and its equivalence verdict may hold on this machine only; declare precision: int8 to have "
        "test_portability check it"
    )
    assert str(seen[0].message).startswith("variant@1.0: the model is int8 (") and said in str(seen[0].message)
    assert "note: the model is int8 (" in str(r) and "variant/metadata.yaml" + " " + said in str(r)


@pytest.mark.parametrize("declared", [True, False], ids=["int8 declared", "fp32 model"])
def test_no_such_warning_where_portability_is_checked_or_cannot_matter(tmp_path, recwarn, declared):
    if declared:
        int8_pair(tmp_path)
    else:
        A.pair(tmp_path, Q.fp32(seed=1), Q.fp32(), inputs=INPUTS, tolerance=TOLERANCE)
    r = metadata_of(tmp_path)
    assert r, str(r)
    assert not [w for w in recwarn if isinstance(w.message, PortabilityNotChecked)]
    assert "portability is not checked" not in str(r)


@pytest.mark.parametrize("form", ["qat", "qgemm"])
def test_other_forms_of_the_same_int8_weights_fail_as_the_stored_ones(tmp_path, any_cpu, form):
    """Quantization-aware training's export (float weights quantized in the graph) and onnxruntime's QOperator Gemm
    (com.microsoft QGemm) were skipped as having "no integer Conv, MatMul or Gemm with int8 weights"."""
    model = Q.qat_matmul() if form == "qat" else Q.qgemm()
    A.pair(tmp_path, model, Q.fp32(), precision="int8", inputs=INPUTS, tolerance=TOLERANCE)
    r = check(tmp_path)
    assert not r and r.skipped is None, str(r)
    op = "MatMul" if form == "qat" else "QGemm"
    assert f"pair sums saturated, in: head/{op if form == 'qat' else 'Gemm_quant'} ({op} U8S8, weights [" in str(r)


def test_a_model_outside_its_tolerance_without_saturation_is_not_blamed_on_the_cpu(tmp_path, any_cpu):
    """Its verdict fails on every CPU alike (equivalence's): portability does not judge it, and says why with both
    figures, rather than fail it as saturation with a fix that would not help."""
    int8_pair(tmp_path, bits=8)
    (tmp_path / "variant" / "metadata.yaml").write_text(
        (tmp_path / "variant" / "metadata.yaml").read_text().replace("rel_l2: 0.05", "rel_l2: 1.0e-09")
    )
    r = check(tmp_path)
    assert r.skipped is not None, str(r)
    assert r.skipped.startswith("not judged for variant@1.0 (1 int8 kernel(s), 1 that can saturate a 16-bit pair sum):")
    assert (
        "without saturation (the exact integer kernels) the model is already outside its tolerance on 2 of 2 case(s), "
        "rel_l2 0.0" in r.skipped
    )
    assert (
        "on every CPU kernel family alike: the verdict does not depend on the CPU, and saturation is not" in r.skipped
    )
    assert "x86-avx2 (predicted, no VNNI): rel_l2 " in r.skipped and "pair sum(s) saturated in 1 of 1" in r.skipped
    assert "Fix:" not in r.skipped


def test_the_cpu_decides_a_verdict_only_where_a_case_holds_without_saturation_and_not_with():
    held, failed = Comparison(()), Comparison((), problems=("outside the tolerance",))
    # (with saturation, without): one case failed either way beside one that saturation alone fails -> judged
    assert portability._flips([failed, failed], [failed, held])
    assert not portability._flips([failed, failed], [failed, failed])  # fails either way: not the CPU's
    assert not portability._flips([held, failed], [held, failed])
    assert not portability._flips([held], [failed])  # (saturation helping is not a failure of it)


def test_a_model_whose_int8_kernels_quantize_inside_is_skipped_naming_them(tmp_path):
    b = np.random.default_rng(0).integers(-127, 128, (Q.K, Q.N)).astype(np.int8)
    nodes = [
        onnx_helper.make_node(
            "DynamicQuantizeMatMul", ["input", "B", "b_scale", "b_zp"], ["logits"], name="dq", domain="com.microsoft"
        )
    ]
    inits = [
        onnx_numpy_helper.from_array(b, "B"),
        onnx_numpy_helper.from_array(np.array([0.01], np.float32), "b_scale"),
        onnx_numpy_helper.from_array(np.array([0], np.int8), "b_zp"),
    ]
    model = Q._model(nodes, inits, "dynamic")
    model.opset_import.append(onnx_helper.make_opsetid("com.microsoft", 1))
    A.pair(tmp_path, model, Q.fp32(), precision="int8", inputs=INPUTS, tolerance=TOLERANCE)
    r = check(tmp_path)
    assert r.skipped == (
        "variant@1.0 has quantization nodes but no integer Conv, MatMul or Gemm with int8 weights (its "
        "DynamicQuantizeMatMul quantize their activation inside the kernel: not emulated)"
    ), str(r)
