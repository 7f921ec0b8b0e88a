"""How often an ONNX model's file is parsed, and what is held of it (issue 24, point 4): integrity's checker,
the facts and the runner's interface share one parse of a large model file, kept without its weights; a file that
changed is parsed again; the safety checks run on every use all the same."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import onnx
import pytest

from fixtures import artifacts as A
from fixtures import onnx_models as M
from model_checks.backends.onnx import facts, loader, runner
from model_checks.core.errors import UnsafePathError
from model_checks.core.session import GateSession


@pytest.fixture
def parses(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """The files parsed, in order; every file counts as large (shared)."""
    monkeypatch.setattr(loader, "SHARED_PARSE_BYTES", 0)
    monkeypatch.setattr(loader, "_shared", {})
    seen: list[str] = []
    real = loader._parse

    def counting(path, size):  # type: ignore[no-untyped-def]
        seen.append(Path(path).parent.name)
        return real(path, size)

    monkeypatch.setattr(loader, "_parse", counting)
    return seen


def external(d: Path, model: onnx.ModelProto | None = None) -> Path:
    d.mkdir(parents=True, exist_ok=True)
    onnx.save(
        model or M.linear(n_in=64, n_out=64),
        str(d / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    return d / "model.onnx"


def test_checker_facts_and_runner_share_one_parse_of_a_large_model(tmp_path: Path, parses: list[str]) -> None:
    path = external(tmp_path / "big")
    assert facts.validate(path, tmp_path) == []
    got = facts.model_facts(path, tmp_path)
    r = runner.load(path, tmp_path)
    assert facts.model_files(path, tmp_path) == [path, tmp_path / "big" / "weights.bin"]
    assert parses == ["big"]  # once, for all four
    assert got.size_bytes == path.stat().st_size + (tmp_path / "big" / "weights.bin").stat().st_size
    assert [t.name for t in r.inputs] == ["input"] and [t.name for t in r.outputs] == ["logits"]
    x = np.ones((2, 64), np.float32)
    ort_out = r.infer({"input": x})["logits"]  # the weights come from the file, not from the parse (it has none)
    w = onnx.numpy_helper.to_array(onnx.load(str(path)).graph.initializer[0])
    np.testing.assert_allclose(
        ort_out, x @ w + onnx.numpy_helper.to_array(onnx.load(str(path)).graph.initializer[1]), rtol=1e-5
    )


def test_what_is_held_of_a_large_model_has_no_weights_and_the_same_facts(tmp_path: Path, parses: list[str]) -> None:
    path = M.save(M.linear(n_in=256, n_out=256, dtype=np.float16), tmp_path / "m" / "model.onnx")  # weights inside
    held = loader.graph_of(path, tmp_path)
    assert held.ByteSize() < 2000 < path.stat().st_size  # 128 KiB of fp16 weights in the file, none held
    assert [(list(t.dims), t.data_type) for t in held.graph.initializer] == [([256, 256], 10), ([256], 10)]
    full = onnx.load(str(path))
    got = facts.model_facts(path, tmp_path)
    assert got == facts.facts(full, path.stat().st_size, (path,))  # precision fp16 and all
    assert got.precision == "fp16"


def test_a_file_that_changed_is_parsed_again(tmp_path: Path, parses: list[str]) -> None:
    path = external(tmp_path / "big")
    assert [o.name for o in facts.model_facts(path, tmp_path).outputs] == ["logits"]
    external(tmp_path / "big", M.linear(n_in=64, n_out=64, out_name="scores"))  # rewritten in place
    os.utime(path, ns=(1, 1))  # even with the old times back, its change time moved
    assert [o.name for o in facts.model_facts(path, tmp_path).outputs] == ["scores"]
    assert parses == ["big", "big"]


def test_a_shared_parse_still_refuses_external_data_that_now_leads_out(tmp_path: Path, parses: list[str]) -> None:
    root = tmp_path / "root"
    path = external(root / "big")
    assert facts.validate(path, root) == []
    outside = tmp_path / "outside.bin"
    outside.write_bytes((root / "big" / "weights.bin").read_bytes())
    (root / "big" / "weights.bin").unlink()
    (root / "big" / "weights.bin").symlink_to(outside)  # after the parse: the model file itself is unchanged
    for use in (facts.model_facts, runner.load, facts.validate):
        with pytest.raises(
            UnsafePathError,
            match=r"initializer 'W' external data: 'weights.bin' resolves \(through a symlink\) outside the artifacts root",
        ):
            use(path, root)
    assert parses == ["big"]  # the same parse, judged again on every use


def test_a_sha256_mismatch_is_caught_from_the_shared_parse_with_the_same_message(
    tmp_path: Path, parses: list[str]
) -> None:
    d = tmp_path / "ext"
    path = external(d)
    digest = hashlib.sha256(path.read_bytes() + (d / "weights.bin").read_bytes()).hexdigest()
    A.write_manifest(d, {"model_name": "ext", "version": "1", "file": "model.onnx", "sha256": digest})
    gs = GateSession([tmp_path])
    assert gs.run_check("integrity", gs.artifacts[0])
    data = bytearray((d / "weights.bin").read_bytes())
    data[10] ^= 0xFF
    (d / "weights.bin").write_bytes(bytes(data))  # the weights changed, the model file did not: no new parse
    gs = GateSession([tmp_path])
    r = gs.run_check("integrity", gs.artifacts[0])
    assert not r
    actual = hashlib.sha256(path.read_bytes() + bytes(data)).hexdigest()
    assert (
        f"sha256: declared {digest} but model.onnx with 1 external data file(s) hashes to {actual}; the file changed "
        "after packaging, or update sha256 in ext/metadata.yaml"
    ) in str(r)
    assert parses == ["ext"]


def test_a_model_over_2_gb_with_external_data_is_checked_and_measured_without_reading_its_weights(
    tmp_path: Path,
) -> None:
    """2.4 GB of float32 weights in a sparse file: the checker and shape inference run on the path and the facts on
    the graph, so neither protobuf's 2 GB limit nor the weights' size is met (reading them would take seconds)."""
    n = 600_000_000
    w = onnx.TensorProto(name="W", data_type=onnx.TensorProto.FLOAT, dims=[n])
    w.data_location = onnx.TensorProto.EXTERNAL
    for key, value in (("location", "weights.bin"), ("offset", "0"), ("length", str(n * 4))):
        entry = w.external_data.add()
        entry.key, entry.value = key, value
    graph = onnx.helper.make_graph(
        [onnx.helper.make_node("Gather", ["W", "idx"], ["y"])],
        "huge",
        [onnx.helper.make_tensor_value_info("idx", onnx.TensorProto.INT64, [3])],
        [onnx.helper.make_tensor_value_info("y", onnx.TensorProto.FLOAT, [3])],
        [w],
    )
    d = tmp_path / "huge"
    path = M.save(onnx.helper.make_model(graph, opset_imports=[onnx.helper.make_opsetid("", 17)]), d / "model.onnx")
    with open(d / "weights.bin", "wb") as f:
        f.truncate(n * 4)
    if os.stat(d / "weights.bin").st_blocks * 512 > 1 << 20:
        pytest.skip("this file system does not keep a file of zeros sparse")
    assert facts.validate(path, tmp_path) == []
    got = facts.model_facts(path, tmp_path)
    assert got.size_bytes == path.stat().st_size + n * 4 and got.precision == "fp32"
    assert got.files == (path, d / "weights.bin")


@pytest.mark.parametrize("damage", ["truncated", "garbage"])
def test_a_damaged_large_file_read_through_its_mapping_is_refused_as_onnx_load_refuses_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, damage: str
) -> None:
    from model_checks.core.errors import ArtifactLoadError

    path = M.save(M.linear(n_in=64, n_out=64), tmp_path / "m" / "model.onnx")
    data = path.read_bytes()
    path.write_bytes(data[: len(data) // 2] if damage == "truncated" else data[:40] + b"\xff" * 60 + data[100:])
    said = []
    for threshold in (1 << 40, 0):  # onnx.load, then the mapping
        monkeypatch.setattr(loader, "SHARED_PARSE_BYTES", threshold)
        monkeypatch.setattr(loader, "_shared", {})
        with pytest.raises(ArtifactLoadError, match=r"^model.onnx: not a readable ONNX model \(DecodeError: ") as e:
            loader.graph_of(path, tmp_path)
        said.append(str(e.value))
    assert said[0] == said[1]
