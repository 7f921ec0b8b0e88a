"""The catalogue of bad inputs, end to end: one gate session over every bad artifact of
`fixtures.bad_artifacts` plus two good ones. Each case asserts the message its user sees, that the
session went on (the good artifacts still pass every check), and that nothing was written outside the
test's directory (an audit hook records the run's writes; the files an escaping path would reach are
hashed before and after)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest

from fixtures import bad_artifacts
from fixtures.gate_run import GateRun, run_gate

# case -> (the check that must fail, what its message must say). `None` as the check: the manifest test.
# Issue 12: a file or reference the manifest names that is missing or refused fails test_manifest, once.
EXPECTED: dict[str, tuple[str, tuple[str, ...]]] = {
    # the manifest
    "alias_bomb": ("manifest", ("anchors (&a) are not allowed",)),
    "recursive_alias": ("manifest", ("anchors (&a) are not allowed",)),
    "python_tag": ("manifest", ("the tag !!python/object/apply:os.system is not allowed",)),
    "duplicate_keys": ("manifest", ("line 4: duplicate key 'file' (first at line 3)",)),
    "manifest_list": ("manifest", ("the document is a list, not a mapping",)),
    "manifest_empty": ("manifest", ("the document is empty",)),
    "manifest_binary": ("manifest", ("is binary or not UTF-8 text",)),
    "manifest_huge": ("manifest", ("larger than 256 KiB; a manifest is a small file",)),
    "manifest_symlink_out": ("manifest", ("'metadata.yaml' resolves (through a symlink) outside the artifacts root",)),
    "merge_key": ("manifest", ("line 3: merge keys (<<) are not allowed in a manifest; write the keys out",)),
    "value_key": ("manifest", ("=: unknown key",)),
    "mixed_key_types": ("manifest", ("line 4: the key 1 is int, not text; quote it ('1') if it is a name",)),
    "binary_tag": ("manifest", ("line 1: the tag !!binary is not allowed",)),
    "deep_nesting": ("manifest", ("line 4: nested more than 64 levels deep",)),
    "manifest_dangling_symlink": ("manifest", ("nowhere.yaml does not exist",)),
    "manifest_fifo": ("manifest", ("metadata.yaml is not a regular file",)),
    "control_chars_version": (
        "manifest",
        ("version: '1.0\\n| `forged@1.0` | onnx | pass |\\x1b[32m\\u202e' holds a control character",),
    ),
    "unknown_format": ("manifest", ("cannot tell the format of 'model.bin'", "set format: onnx")),
    "symlink_dir_out": (
        "manifest",
        ("symlink_dir_out is a symlink to a directory outside the artifacts root", "not followed"),
    ),
    # the model file
    "truncated": ("integrity", ("model.onnx: not a readable ONNX model (DecodeError",)),
    "bitflip_structure": ("integrity", ("onnx.checker (full check, shape inference)",)),
    "bitflip_weights": ("integrity", ("sha256: declared", "the file changed after packaging")),
    "sha256_mismatch": ("integrity", ("sha256: declared 0000", "update sha256 in sha256_mismatch/metadata.yaml")),
    "missing_model": ("manifest", ("file: model.onnx does not exist in missing_model/",)),
    "empty_model": ("integrity", ("the file holds empty data, not an ONNX model",)),
    "pickle_as_onnx": ("integrity", ("the file holds pickle data, not an ONNX model (judged by its first bytes)",)),
    "zip_as_onnx": ("integrity", ("the file holds zip data, not an ONNX model",)),
    # paths
    "absolute_file": ("manifest", ("secret.onnx' is absolute; paths in a manifest are relative to its directory",)),
    "dotdot_file": ("manifest", ("file: '../../outside/secret.onnx' climbs out of the artifacts root",)),
    "symlink_model_out": ("manifest", ("file: 'model.onnx' resolves (through a symlink) outside the artifacts root",)),
    "hardlink_model": ("integrity", ("model.onnx has 2 hard links",)),
    # ONNX external data
    "external_absolute": ("integrity", ("initializer 'W' external data:", "weights.bin' is absolute")),
    "external_dotdot": ("integrity", ("initializer 'W' external data: '../../outside/weights.bin' climbs out",)),
    "external_symlink_out": ("integrity", ("external data: 'link.bin' resolves (through a symlink) outside",)),
    "external_past_end": ("integrity", ("external data: bytes 1048576..1048624 lie outside weights.bin",)),
    "external_negative_offset": ("integrity", ("external data: bytes -16..32 lie outside weights.bin",)),
    "external_hardlink": ("integrity", ("external data: weights.bin has 2 hard links",)),
    "external_sparse_symlink_out": (
        "integrity",
        ("initializer 'W' external data: 'link.bin' resolves (through a symlink) outside",),
    ),
    "external_missing": ("integrity", ("external data: nowhere.bin does not exist",)),
    # references, samples, eval data
    "reference_broken": ("equivalence", ("reference.path ref/model.onnx: model.onnx: not a readable ONNX model",)),
    "reference_missing": ("manifest", ("reference.path: nowhere.onnx does not exist in reference_missing/",)),
    "reference_dotdot": ("manifest", ("reference.path: '../../outside/secret.onnx' climbs out",)),
    "reference_symlink_out": ("manifest", ("reference.path: 'ref.onnx' resolves (through a symlink) outside",)),
    "reference_npz_pickle": ("equivalence", ("recorded.npz holds pickled objects, which are refused",)),
    "reference_untrusted": (
        "equivalence",
        ("reference.path ref.pt: refused to load a torchscript model", "--model-checks-trust-code"),
    ),
    "testdata_dir_symlink_out": ("equivalence", ("'test_data_set_0' resolves (through a symlink) outside",)),
    "testdata_file_symlink_out": ("equivalence", ("'output_0.pb' resolves (through a symlink) outside",)),
    "testdata_broken": ("equivalence", ("output_0.pb is not a readable TensorProto",)),
    "samples_pickle": ("equivalence", ("samples: samples.npz holds pickled objects, which are refused",)),
    "samples_symlink_out": ("equivalence", ("samples: 'samples.npz' resolves (through a symlink) outside",)),
    "samples_zip_bomb": ("equivalence", ("samples: samples.npz unpacks to 1.1 GiB, over the 1024 MiB cap",)),
    "eval_shape_lie": ("accuracy", ("eval_data: eval.npz unpacks to 7450.6 GiB, over the 1024 MiB cap",)),
    "testdata_external": ("equivalence", ("output_0.pb keeps its values in an external file",)),
    "testdata_dims_lie": ("equivalence", ("output_0.pb declares dims [1, 1000000, 1000000]", "but holds")),
    "eval_pickle": ("accuracy", ("eval_data: eval.npz holds pickled objects, which are refused",)),
    "eval_symlink_out": ("accuracy", ("eval_data: 'eval.npz' resolves (through a symlink) outside",)),
    "eval_lengths_differ": (
        "accuracy",
        ("invalid eval_data: eval.npz needs x with one sample per label of a 1-d y (x has shape [4, 4], y [3])",),
    ),
    # issue 10: accuracy picks the scores or label output; none here holds one row per sample
    "eval_output_not_per_sample": (
        "accuracy",
        (
            "no output holds one row of class scores or one label per sample for a batch of 2 (outputs: 'W' float32 [4, 3]); "
            "accuracy needs one, named by accuracy.output",
        ),
    ),
    "huge_input": (
        "equivalence",
        ("would need 149.0 GiB, over the 256 MiB cap; declare smaller dims or give samples",),
    ),
    # formats that carry code
    "torchscript": (
        "integrity",
        ("refused to load a torchscript model: a TorchScript archive carries code", "--model-checks-trust-code"),
    ),
    "pickled_pt": ("integrity", ("refused to load a torchscript model", "--model-checks-trust-code")),
    "keras_h5": (
        "integrity",
        ("refused to load a keras model: a Keras .h5 file can hold Lambda layers", "--model-checks-trust-code"),
    ),
    "keras_hdf5_named_keras": (
        "integrity",
        ("refused to load a keras model: a Keras .h5 file", "--model-checks-trust-code"),
    ),
    "saved_model": (
        "integrity",
        ("refused to load a saved_model model: a SavedModel carries TensorFlow functions", "--model-checks-trust-code"),
    ),
    # never a false pass
    "nan_output": ("equivalence", ("the output has", "NaN", "a non-finite output never passes")),
    "inf_output": ("equivalence", ("the output has 0 NaN and", "Inf values", "a non-finite output never passes")),
    "nan_reference": ("equivalence", ("the reference has", "a non-finite output never passes")),
    "zero_norm_reference": (
        "equivalence",
        ("the reference is all zeros: rel_l2 is the absolute L2 norm", "<-- exceeds"),
    ),
    "empty_outputs": ("equivalence", ("output is empty (shape [1, 0]); an empty comparison proves nothing",)),
    "broadcast_shape": (
        "equivalence",
        ("shape [1, 1] differs from the reference's [1, 3]; shapes must match exactly (nothing is broadcast)",),
    ),
    "fp16_vs_fp32": (
        "equivalence",
        ("dtype float16 differs from the reference's float32", "fp16 is never compared with fp32 silently"),
    ),
    "missing_output": (
        "equivalence",
        ("outputs missing from the model: logits", "outputs the reference does not have: scores"),
    ),
    "extra_output": ("equivalence", ("outputs the reference does not have: extra",)),
    "reordered_outputs": ("equivalence", ("output 'a': FAILED", "output 'b': FAILED")),
}
GOOD = ("good_ref@1.0", "good@1.0")
_runs: dict[str, tuple[GateRun, dict[str, str], dict[str, str]]] = {}


def _digests(d: Path) -> dict[str, str]:
    return {
        str(p.relative_to(d)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(d.rglob("*"))
        if p.is_file() and not p.is_symlink()
    }


@pytest.fixture
def catalogue(pytester: pytest.Pytester) -> tuple[GateRun, dict[str, str], dict[str, str]]:
    """One gate session over the whole catalogue, run by the first test that asks and shared by the rest
    (a pytester session per case would cost a minute); with the digests of `outside` before and after."""
    if "run" not in _runs:
        root, outside = pytester.path / "artifacts", pytester.path / "outside"
        bad_artifacts.build_all(root, outside)
        bad_artifacts.good_pair(root)
        before = _digests(outside)
        run = run_gate(pytester, root, f"--model-checks-summary={pytester.path / 'summary.md'}")
        _runs["run"] = (run, before, _digests(outside))
    return _runs["run"]


def assert_went_on(run: GateRun) -> None:
    """The good pair, checked after the bad artifacts in the same session, passed every check it has."""
    for good, checks in zip(
        GOOD, (("manifest", "integrity", "metadata", "limits", "accuracy"), ("integrity", "equivalence", "accuracy"))
    ):
        outcomes = run.outcomes(good)
        assert "failed" not in outcomes.values() and all(outcomes[c] == "passed" for c in checks), outcomes


def _artifact_id(run: GateRun, case: str) -> str:
    return next(a for (_, a) in run.reports if a in (f"{case}@1.0", f"invalid:{case}"))


def test_every_builder_has_an_expectation() -> None:
    assert sorted(EXPECTED) == sorted(set(bad_artifacts.BUILDERS) - {"symlink_model_inside"})


@pytest.mark.parametrize("case", sorted(EXPECTED))
def test_bad_input(catalogue: tuple[GateRun, dict[str, str], dict[str, str]], case: str) -> None:
    run, before, after = catalogue
    check, phrases = EXPECTED[case]
    aid = _artifact_id(run, case)
    assert run.outcome(check, aid) == "failed", f"{case}: test_{check} did not fail: {run.outcomes(aid)}"
    message = run.message(check, aid)
    for phrase in phrases:
        assert phrase in message, f"{case}: {phrase!r} not in:\n{message}"
    assert "Traceback" not in message and "model_checks/" not in message, (
        f"{case}: an internal error, not a verdict:\n{message}"
    )
    assert_went_on(run)
    assert run.written_outside() == [], f"written outside {run.path}: {run.written_outside()}"
    assert before == after and not (run.path / "outside" / "pwned").exists()


def test_a_symlink_inside_the_root_is_followed(catalogue: tuple[GateRun, dict[str, str], dict[str, str]]) -> None:
    run, _, _ = catalogue
    assert run.outcome("integrity", "symlink_model_inside@1.0") == "passed"


def test_the_summary_lists_every_artifact(catalogue: tuple[GateRun, dict[str, str], dict[str, str]]) -> None:
    run, _, _ = catalogue
    summary = (run.path / "summary.md").read_text()
    for case in EXPECTED:
        assert f"`{_artifact_id(run, case)}`" in summary
    # + the directory link out of the root inside testdata_dir_symlink_out: discovery refuses every link that leads
    # out, and since issue 12 the gate reports all that discovery finds (pytest's walk never met a manifest there)
    assert "| `invalid:testdata_dir_symlink_out/testdata/test_data_set_0` |" in summary
    assert f"{len(EXPECTED) + 1} artifact(s) with a failing check." in summary
