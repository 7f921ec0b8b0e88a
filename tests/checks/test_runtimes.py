"""`runtimes:`: each declared runtime is its own equivalence item, under the artifact's tolerance, against the same
reference and cases; one runtime that differs fails that item, naming the runtime, and nothing else."""

import dataclasses
import re

import numpy as np
import pytest

from fixtures import artifacts as A
from fixtures import runtime_models as R
from model_checks.backends.base import Runner
from model_checks.checks.context import CheckContext
from model_checks.core.session import GateSession

pytest.importorskip("openvino")


def on(gs, art, runtime):
    from model_checks.checks import equivalence

    return gs.run_check("equivalence", art, lambda ctx: equivalence.run(dataclasses.replace(ctx, runtime=runtime)))


def exp_pair(root, **manifest):
    """A variant and its reference, the same Exp model: identical on onnxruntime; OpenVINO's exp rounds differently."""
    inputs = [{"name": "input", "dtype": "float32", "shape": ["batch", 1000], "range": [0.1, 3.0]}]
    A.onnx_artifact(root / "ref", R.exp(), name="ref", inputs=inputs)
    A.onnx_artifact(
        root / "variant",
        R.exp(),
        name="variant",
        reference={"path": "../ref/model.onnx"},
        inputs=inputs,
        tolerance={"rel_l2": None, "mae": None, "max_abs": 0.0},
        runtimes=["onnxruntime", "openvino"],
        **manifest,
    )
    return GateSession([root])


def test_each_runtime_is_its_own_item_and_the_one_that_differs_fails_naming_it(pytester):
    gs = exp_pair(pytester.path / "arts")
    art = next(a for a in gs.artifacts if a.id == "variant@1.0")
    direct = on(gs, art, "openvino")
    if direct.figures.get("vs_onnxruntime_max_abs") == 0.0:
        pytest.skip("OpenVINO's exp is bit-identical to onnxruntime's on this CPU: nothing differs to fail on")
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider", "-k", "equivalence", "-rA")
    r.stdout.fnmatch_lines(
        [
            "equivalence: variant@1.0 on openvino differs from its reference ../ref/model.onnx "
            "(* failure(s) in * case(s))",
            "  case: * (ran on openvino * CPU, INFERENCE_PRECISION_HINT=f32)",
            "*max_abs*<= 0*metadata.yaml*<-- exceeds",
            "  or, if openvino is not a runtime this artifact ships to, leave it out of 'runtimes' in "
            "variant/metadata.yaml (with a comment that says why)",
            "  openvino against onnxruntime, output by output over * case(s): worst rel_l2 *, max_abs *",
            "PASSED arts/variant/metadata.yaml::test_equivalence[[]variant@1.0[]]",
            "FAILED arts/variant/metadata.yaml::test_equivalence[[]variant@1.0-openvino[]]*",
        ]
    )
    assert r.ret == 1


class Shifted(Runner):
    """An injected OpenVINO runner (a Runner, as every backend's is): onnxruntime's outputs, one logit moved."""

    format = "openvino"
    description = "injected runner"

    def __init__(self, path, root):
        from model_checks.backends.onnx.runner import load

        self.inner = load(path, root)
        self.inputs, self.outputs = self.inner.inputs, self.inner.outputs

    def infer_impl(self, feeds):
        out = self.inner.infer(feeds)
        return {k: v + np.float32(0.5) for k, v in out.items()}

    def close(self):
        pass


def test_an_injected_runtime_that_differs_fails_and_onnxruntime_still_passes(tmp_path, monkeypatch):
    import model_checks.backends.openvino.runner as ov_runner

    monkeypatch.setattr(ov_runner, "load", lambda path, root, threads=None, names=None: Shifted(path, root))
    A.pair(tmp_path, runtimes=["openvino"])
    gs = GateSession([tmp_path])
    art = next(a for a in gs.artifacts if a.id == "variant@1.0")
    assert art.manifest.runtimes == ("onnxruntime", "openvino")
    assert gs.run_check("equivalence", art)
    r = on(gs, art, "openvino")
    assert not r
    text = str(r)
    assert r.headline.startswith("equivalence: variant@1.0 on openvino differs from its reference ../ref/model.onnx")
    assert "(ran on injected runner)" in text
    assert re.search(
        r"\n  openvino against onnxruntime, output by output over \d+ case\(s\): worst rel_l2 0\.\d+, max_abs 0\.5",
        text,
    )
    assert (
        r.figures["runtime"] == "openvino"
        and r.figures["runtime_ran"] == "injected runner"
        and r.figures["vs_onnxruntime_max_abs"] == pytest.approx(0.5)
    )
    assert gs.result("integrity", art), "a failing runtime item must not block the artifact's other checks"


def test_an_artifact_without_reference_is_compared_with_onnxruntime_on_another_runtime(tmp_path):
    A.onnx_artifact(tmp_path / "solo", name="solo", runtimes=["onnxruntime", "openvino"])
    gs = GateSession([tmp_path])
    r = on(gs, gs.artifacts[0], "openvino")
    assert r, str(r)
    assert (
        "matches onnxruntime's outputs (no reference.path: the same model on onnxruntime is the reference)"
        in r.headline
    )


def test_a_runtime_that_cannot_open_the_model_fails_that_item_only(tmp_path, monkeypatch):
    import model_checks.backends.openvino.runner as ov_runner
    from model_checks.core.errors import ArtifactLoadError

    def refuse(path, root, threads=None, names=None):
        raise ArtifactLoadError(f"{path.name}: OpenVINO cannot read the ONNX model: no converter for ai.onnx.ml.ZipMap")

    monkeypatch.setattr(ov_runner, "load", refuse)
    A.pair(tmp_path, runtimes=["openvino"])
    gs = GateSession([tmp_path])
    art = next(a for a in gs.artifacts if a.id == "variant@1.0")
    r = on(gs, art, "openvino")
    assert not r and r.headline == "equivalence: variant@1.0 on openvino: model cannot be loaded"
    assert "  model.onnx: OpenVINO cannot read the ONNX model: no converter for ai.onnx.ml.ZipMap" in r.details
    assert gs.result("integrity", art)


def test_a_gpu_provider_skips_with_the_reason_where_there_is_none(tmp_path):
    import onnxruntime as ort

    A.pair(tmp_path, runtimes=["onnxruntime", "cuda"])
    gs = GateSession([tmp_path])
    art = next(a for a in gs.artifacts if a.id == "variant@1.0")
    r = on(gs, art, "cuda")
    if "CUDAExecutionProvider" in ort.get_available_providers():
        assert r, str(r)
    else:
        assert r.skipped.startswith("runtime cuda: CUDAExecutionProvider is not available here (onnxruntime ")
        assert r.skipped.endswith("it runs where a GPU and onnxruntime-gpu are installed")


def test_policy_declares_runtimes_for_a_tree_and_an_artifact_opts_out(pytester):
    root = pytester.path / "arts"
    A.pair(root)
    A.onnx_artifact(root / "optout", name="optout", runtimes=["onnxruntime"])
    (root / "policy.yaml").write_text("runtimes: [onnxruntime, openvino]\n")
    r = pytester.runpytest_subprocess(
        "--model-checks", "arts", "-p", "no:cacheprovider", "--collect-only", "-q", "-k", "equivalence"
    )
    ids = [line for line in r.stdout.lines if "test_equivalence" in line]
    assert {i.split("::")[-1] for i in ids} == {
        "test_equivalence[optout@1.0]",
        "test_equivalence[ref@1.0]",
        "test_equivalence[ref@1.0-openvino]",
        "test_equivalence[variant@1.0]",
        "test_equivalence[variant@1.0-openvino]",
    }


def test_an_unknown_runtime_is_a_manifest_error(tmp_path):
    A.onnx_artifact(tmp_path / "m", name="m", runtimes=["onnxruntime", "tensorflow-lite"])
    gs = GateSession([tmp_path])
    r = gs.run_check("manifest", gs.artifacts[0])
    assert not r and "runtimes" in str(r) and "tensorflow-lite" in str(r)


def test_runtimes_do_not_multiply_items_of_other_formats(tmp_path):
    from model_checks.core.runtimes import declared
    from model_checks.manifest import parse_manifest

    m = parse_manifest(
        {"model_name": "k", "version": "1", "file": "m.keras", "runtimes": ["openvino"]}, "metadata.yaml"
    )
    assert declared(m) == ("onnxruntime",) and m.runtimes == ("onnxruntime",)
    assert "runtime" in {f.name for f in dataclasses.fields(CheckContext)}
