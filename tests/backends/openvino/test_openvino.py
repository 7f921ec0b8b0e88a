"""The OpenVINO backend: ONNX files and IR artifacts on the CPU plugin at a stated precision, loaded only after the
same safety checks as everything else, and never imported by a gate that does not ask for it."""

import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from fixtures import artifacts as A
from fixtures import onnx_models as M
from model_checks.core.errors import ArtifactLoadError, UnsafePathError
from model_checks.core.session import GateSession

pytest.importorskip("openvino")


def save_ir(onnx_path: Path, xml: Path) -> Path:
    import openvino as ov

    xml.parent.mkdir(parents=True, exist_ok=True)
    ov.save_model(ov.convert_model(str(onnx_path)), str(xml), compress_to_fp16=False)
    return xml


def test_an_onnx_model_runs_on_openvino_at_f32_and_matches_onnxruntime(tmp_path):
    from model_checks.backends.onnx.runner import load as ort_load
    from model_checks.backends.openvino.runner import load

    path = M.save(M.linear(), tmp_path / "m.onnx")
    r = load(path, tmp_path)
    assert r.description.startswith("openvino ") and r.description.endswith("CPU, INFERENCE_PRECISION_HINT=f32")
    assert [t.name for t in r.inputs] == ["input"] and r.inputs[0].shape == ("batch", 4)
    x = {"input": np.random.default_rng(0).uniform(0, 1, (5, 4)).astype(np.float32)}
    np.testing.assert_allclose(r.infer(x)["logits"], ort_load(path, tmp_path).infer(x)["logits"], rtol=1e-5, atol=1e-6)


def test_an_onnx_model_on_openvino_is_parsed_once_and_never_held_with_its_weights(tmp_path, monkeypatch):
    """OpenVINO reads the ONNX file itself: the gate parses it only for its safety checks and the interface, once
    for the checker and the runner (the shared parse, loader.graph_of), kept without the weights' bytes. An embedded
    model's weights are not held a second time beside OpenVINO's; an external-data model's weights file is never
    opened by the gate (OpenVINO reads it). It was four parses, each holding an embedded model's weights."""
    import builtins

    import onnx

    from model_checks.backends.onnx import loader
    from model_checks.backends.openvino import facts
    from model_checks.backends.openvino.runner import load

    monkeypatch.setattr(loader, "SHARED_PARSE_BYTES", 0)  # every file counts as large (shared)
    monkeypatch.setattr(loader, "_shared", {})
    parsed, opened = [], []
    real_parse, real_open = loader._parse, builtins.open

    def counting(path, size):  # type: ignore[no-untyped-def]
        parsed.append(Path(path).parent.name)
        return real_parse(path, size)

    def spy(p, *a, **k):  # type: ignore[no-untyped-def]
        opened.append(Path(p).name if isinstance(p, (str, Path)) else p)
        return real_open(p, *a, **k)

    monkeypatch.setattr(loader, "_parse", counting)
    monkeypatch.setattr(builtins, "open", spy)
    embedded = M.save(M.linear(n_in=64, n_out=64), tmp_path / "embedded" / "model.onnx")
    ext = tmp_path / "ext"
    ext.mkdir()
    onnx.save(
        M.linear(n_in=64, n_out=64),
        str(ext / "model.onnx"),
        save_as_external_data=True,
        location="weights.bin",
        size_threshold=0,
    )
    x = {"input": np.ones((2, 64), np.float32)}
    for path in (embedded, ext / "model.onnx"):
        assert facts.validate(path, tmp_path) == []
        r = load(path, tmp_path)
        assert [t.name for t in r.inputs] == ["input"] and r.inputs[0].shape == ("batch", 64)
        assert r.infer(x)["logits"].shape == (2, 64)
        assert parsed.count(path.parent.name) == 1, parsed  # once, for the checker and the runner
        held = loader._shared[str(path)][1]
        assert all(not t.raw_data and not t.float_data for t in held.graph.initializer)
    assert "weights.bin" not in opened


def test_an_ir_artifact_is_gated_against_its_onnx_reference(tmp_path):
    ref, _ = A.pair(tmp_path)
    (tmp_path / "variant").rename(tmp_path / "unused")
    save_ir(ref / "model.onnx", tmp_path / "ir" / "model.xml")
    A.write_manifest(
        tmp_path / "ir",
        {"model_name": "ir", "version": "1", "file": "model.xml", "reference": {"path": "../ref/model.onnx"}},
    )
    gs = GateSession([tmp_path])
    art = next(a for a in gs.artifacts if a.id == "ir@1")
    assert art.manifest.format == "openvino"
    for check in ("integrity", "metadata", "equivalence"):
        r = gs.run_check(check, art)
        assert r, str(r)
    facts = gs.pool.facts(art.model_path, "openvino", tmp_path)
    assert facts.precision == "fp32" and facts.format == "openvino" and "MatMul" in facts.ops


def test_an_ir_whose_weights_reach_outside_its_bin_is_refused(tmp_path):
    from model_checks.backends.openvino.loader import read_model

    xml = save_ir(M.save(M.linear(), tmp_path / "m.onnx"), tmp_path / "ir" / "model.xml")
    text = xml.read_text()
    bin_size = xml.with_suffix(".bin").stat().st_size
    import re

    bad = re.sub(r'offset="0"', f'offset="{bin_size}"', text, count=1)
    assert bad != text
    xml.write_text(bad)
    with pytest.raises(
        UnsafePathError,
        match=rf"model.xml: Const '.*' reads bytes {bin_size}\.\.\d+ outside model.bin \({bin_size} bytes\)",
    ):
        read_model(xml, tmp_path)


def test_an_irs_weights_left_as_a_git_lfs_pointer_are_named_as_such(tmp_path):
    from model_checks.backends.openvino.loader import read_model

    xml = save_ir(M.save(M.linear(), tmp_path / "m.onnx"), tmp_path / "ir" / "model.xml")
    oid = "sha256:" + "ab" * 32
    xml.with_suffix(".bin").write_text(f"version https://git-lfs.github.com/spec/v1\noid {oid}\nsize 2048\n")
    with pytest.raises(ArtifactLoadError, match=r"model.xml: weights: model.bin is a Git LFS pointer to a file of "):
        read_model(xml, tmp_path)


def test_an_irs_weights_left_as_a_symbolic_links_text_are_named_as_such(tmp_path):
    from model_checks.backends.openvino.loader import read_model

    xml = save_ir(M.save(M.linear(), tmp_path / "m.onnx"), tmp_path / "ir" / "model.xml")
    (tmp_path / "store").mkdir()
    xml.with_suffix(".bin").rename(tmp_path / "store" / "model.bin")
    xml.with_suffix(".bin").write_text("../store/model.bin")  # git's checkout of a link where it makes none
    with pytest.raises(
        ArtifactLoadError, match=r"model.xml: weights: model.bin holds only the text '../store/model.bin'"
    ):
        read_model(xml, tmp_path)


def test_an_ir_with_a_dtd_is_refused_before_openvino_reads_it(tmp_path):
    from model_checks.backends.openvino.loader import read_model

    xml = save_ir(M.save(M.linear(), tmp_path / "m.onnx"), tmp_path / "ir" / "model.xml")
    xml.write_text('<?xml version="1.0"?>\n<!DOCTYPE net [<!ENTITY a "aaaa">]>\n' + xml.read_text().split("?>", 1)[1])
    with pytest.raises(UnsafePathError, match="model.xml: the XML declares a DTD or entities; an OpenVINO IR has none"):
        read_model(xml, tmp_path)


def test_a_pickle_named_onnx_never_reaches_openvino(tmp_path):
    import pickle

    from model_checks.backends.openvino.loader import read_model

    path = tmp_path / "m.onnx"
    path.write_bytes(pickle.dumps({"x": 1}, protocol=4))
    with pytest.raises(ArtifactLoadError, match="m.onnx: the file holds pickle data, not an ONNX model"):
        read_model(path, tmp_path)


def test_budgets_time_an_ir_on_openvino_and_say_the_precision(tmp_path):
    from model_checks.backends import open_target

    xml = save_ir(M.save(M.linear(), tmp_path / "m.onnx"), tmp_path / "model.xml")
    t = open_target(xml, "openvino", tmp_path, "cpu", 1)
    t.prepare({"input": np.zeros((2, 4), np.float32)})
    t.call()
    assert "INFERENCE_PRECISION_HINT=f32, 1 thread(s)" in t.description
    t.close()


def test_an_onnx_only_gate_never_imports_openvino(pytester):
    A.pair(pytester.path / "arts")
    pytester.makeconftest(
        textwrap.dedent("""
        import sys
        def pytest_sessionfinish(session):
            print("OPENVINO_LOADED", "openvino" in sys.modules)
    """)
    )
    r = pytester.runpytest_subprocess(
        "--model-checks", "arts", "-p", "no:cacheprovider", "-s", "-k", "equivalence or metadata"
    )
    assert r.ret == 0, r.stdout.str()
    r.stdout.fnmatch_lines(["*OPENVINO_LOADED False*"])


def test_importing_the_backend_modules_imports_no_openvino():
    code = textwrap.dedent("""
        import sys
        import model_checks.backends.openvino.runner, model_checks.backends.openvino.facts
        import model_checks.backends.openvino.timing, model_checks.core.runtimes, model_checks.checks.equivalence
        import model_checks.checks.determinism, model_checks.canary.run
        print("openvino" in sys.modules)
    """)
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
