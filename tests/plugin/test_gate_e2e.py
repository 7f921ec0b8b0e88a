"""The gate end to end, as a user runs it: pytest --model-checks DIR over artifacts built in the test."""

import textwrap

import numpy as np
import pytest

from fixtures import artifacts as A
from fixtures import onnx_models as M

IFACE = {
    "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 4]}],
    "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 3]}],
}


def shows(result, *lines):
    """Every line appears in the output, as the user reads it."""
    out = result.stdout.str()
    missing = [line for line in lines if line not in out]
    assert not missing, f"missing {missing} in:\n{out}"


def run(pytester, *args):
    return pytester.runpytest("--model-checks", "arts", "-p", "no:cacheprovider", "-p", "no:randomly", *args)


@pytest.fixture
def good(pytester):
    """A reference and a variant that passes every check."""
    root = pytester.path / "arts"
    _, var = A.pair(
        root,
        opset=13,
        precision="fp32",
        runtime="onnxruntime 1.17",
        eval_data="eval.npz",
        accuracy_drop=0.0,
        limits={
            "opset": {"min": 13, "max": 18},
            "max_size_mb": 1,
            "max_size_ratio": 1.01,
            "allowed_ops": ["MatMul", "Add"],
            "dynamic_axes": ["batch"],
            "max_accuracy_drop": 0.0,
        },
        **IFACE,
    )
    A.eval_npz(var / "eval.npz")
    return root


def test_every_check_passes_on_a_true_artifact(pytester, good):
    r = run(pytester, "-v", "-rs")
    r.assert_outcomes(passed=9, skipped=3)  # ref: limits, equivalence, accuracy do not apply
    shows(r, "metadata.yaml::test_equivalence[variant@1.0] PASSED", "metadata.yaml::test_limits[variant@1.0] PASSED")
    # the skip points at the artifact it concerns, not at the gate's test function
    shows(r, "SKIPPED [1] arts/ref/metadata.yaml:1: no reference declared in ref/metadata.yaml (reference.path)")


def test_k_selects_by_artifact_id(pytester, good):
    r = run(pytester, "-k", "variant and equivalence", "-v")
    r.assert_outcomes(passed=1)
    # a check's name selects that check only, though every check is collected from a file named metadata.yaml
    r = run(pytester, "-k", "metadata", "-v")
    r.assert_outcomes(passed=2)
    shows(
        r,
        "arts/ref/metadata.yaml::test_metadata[ref@1.0] PASSED",
        "arts/variant/metadata.yaml::test_metadata[variant@1.0] PASSED",
    )


BROKEN = {
    # check -> (how to break the variant, the line a user must see)
    "integrity": (
        {"sha256": "0" * 64},
        "*sha256: declared 000*but model.onnx hashes to *update sha256 in variant/metadata.yaml*",
    ),
    "metadata": (
        {
            "opset": 12,
            "precision": "fp16",
            "runtime": "onnxruntime >=99",
            "inputs": [{"name": "input", "dtype": "float16", "shape": [1, 4]}],
            "optimization": "fuse_bn_into_cnv",
        },
        "*metadata: variant@1.0: 6 problems*",
    ),
    "limits": (
        {"limits": {"opset": {"max": 12}, "max_size_mb": 1e-4, "allowed_ops": ["MatMul"], "dynamic_axes": ["seq"]}},
        "*limits: variant@1.0: 4 problems*",
    ),
    "accuracy": (
        {"eval_data": "eval.npz", "accuracy_drop": 0.2, "limits": {"max_accuracy_drop": 0.01}},
        "*accuracy drop 0.*exceeds limits.max_accuracy_drop 0.01 from metadata.yaml*",
    ),
}


@pytest.mark.parametrize("check", sorted(BROKEN))
def test_each_check_fails_on_a_broken_artifact(pytester, check):
    root = pytester.path / "arts"
    extra, line = BROKEN[check]
    _, var = A.pair(root, variant_model=M.linear(seed=1) if check == "accuracy" else None, **extra)
    if check == "accuracy":
        A.eval_npz(var / "eval.npz")  # labelled by the reference (seed 0): the seed-1 variant disagrees
    r = run(pytester, "-k", f"variant and test_{check}")
    r.assert_outcomes(failed=1)
    shows(r, f"FAILED arts/variant/metadata.yaml::test_{check}[variant@1.0]", *[x for x in line.split("*") if x])
    assert "Traceback" not in r.stdout.str()


def test_metadata_failure_lists_every_claim(pytester):
    A.pair(pytester.path / "arts", **BROKEN["metadata"][0])
    r = run(pytester, "-k", "variant and test_metadata")
    shows(
        r,
        "opset: declared 12, the model imports opset 13 of the default domain",
        "precision: declared fp16, the model is fp32 (100.0% of float weight values are float32)",
        "runtime: 'onnxruntime >=99' means onnxruntime>=99, but onnxruntime ",
        " is installed",
        "input 'input': declared dtype float16, the model has float32",
        "input 'input': dim 0 declared 1, the model has 'batch' (dynamic)",
        "optimization: 'fuse_bn_into_cnv' is not an onnxoptimizer pass or producer step; did you mean 'fuse_bn_into_conv'?",
    )


def test_limits_failure_lists_every_limit_with_its_source(pytester):
    A.pair(pytester.path / "arts", **BROKEN["limits"][0])
    r = run(pytester, "-k", "variant and test_limits")
    shows(
        r,
        "opset: the model imports opset 13, outside [-, 12] [limits.opset from metadata.yaml]",
        "max_size_mb: the model is 0.000",
        " MB, over 0.0001 MB",
        "allowed_ops: the model uses ops outside the list: Add (x1)",
        "dynamic_axes: 'seq' is no dimension of any input (named dims: batch)",
    )


def test_optimizations_the_graph_can_show_must_show(pytester):
    root = pytester.path / "arts"
    A.onnx_artifact(
        root / "cnn",
        M.conv_bn(dead_node=True, bias_add=True),
        name="cnn",
        optimization=["eliminate_deadend", "fuse_add_bias_into_conv", "fuse_bn_into_conv"],
    )
    A.onnx_artifact(
        root / "ok",
        M.conv_bn(fused=True),
        name="ok",
        optimization=["eliminate_deadend", "fuse_bn_into_conv", "fuse_add_bias_into_conv"],
    )
    r = run(pytester, "-k", "test_metadata")  # plain "metadata" matches every node id (metadata.yaml::...)
    r.assert_outcomes(passed=1, failed=1)
    shows(
        r,
        "optimization: claims eliminate_deadend, but nodes whose outputs nothing uses remain: dead_neg",
        "optimization: claims fuse_add_bias_into_conv, but Add of a constant straight after a Conv remains: bias_add",
        "optimization: claims fuse_bn_into_conv, but BatchNormalization nodes remain: bn",
    )


def test_equivalence_failure_message_is_a_table(pytester):
    A.pair(
        pytester.path / "arts",
        variant_model=M.linear(scale=1.01),
        tolerance={"per_output": {"logits": {"max_abs": 1e-4}}},
    )
    r = run(pytester, "-k", "variant and equivalence")
    r.assert_outcomes(failed=1)
    shows(
        r,
        "equivalence: variant@1.0 differs from its reference ../ref/model.onnx",
        "case: generated, batch 1",
        "output 'logits': FAILED",
        "metric                 value       limit  source",
        "<= 0.001  default (model-checks)   <-- exceeds",
        "<= 0.0001  metadata.yaml per_output.logits   <-- exceeds",
        "worst elements (index: value vs reference):",
        "case: generated, batch 4",
    )


def test_equivalence_against_recorded_npz(pytester):
    root = pytester.path / "arts"
    A.onnx_artifact(root / "m", name="m", reference={"path": "recorded.npz"})
    x = np.random.default_rng(0).uniform(0, 1, (5, 4)).astype(np.float32)
    import onnxruntime as ort

    y = ort.InferenceSession(M.linear().SerializeToString(), providers=["CPUExecutionProvider"]).run(
        None, {"input": x}
    )[0]
    np.savez(root / "m" / "recorded.npz", **{"input:input": x, "output:logits": y})
    A.onnx_artifact(root / "off", name="off", reference={"path": "recorded.npz"})
    np.savez(root / "off" / "recorded.npz", **{"input:input": x, "output:logits": y + 0.1})
    r = run(pytester, "-k", "test_equivalence")
    r.assert_outcomes(passed=1, failed=1)
    shows(r, "equivalence: off@1.0 differs from its reference recorded.npz", "case: recorded (recorded.npz)")


def test_one_broken_artifact_never_stops_the_others(pytester, good):
    root = good
    A.write_manifest(root / "broken", "model_name: x\nversion: 1\nfile: m.onnx\ntolerence: {}\n")
    (root / "corrupt").mkdir()
    (root / "corrupt" / "model.onnx").write_bytes(b"\x08\x07" + b"\xff" * 50)
    A.write_manifest(
        root / "corrupt",
        {"model_name": "corrupt", "version": "1", "file": "model.onnx", "reference": {"path": "../ref/model.onnx"}},
    )
    A.write_manifest(root / "missing", {"model_name": "missing", "version": "1", "file": "nothere.onnx"})
    r = run(pytester)
    outcomes = r.parseoutcomes()
    # + corrupt's manifest; missing's fails: the file it names is not there (issue 12: said once, at test_manifest)
    assert outcomes["passed"] == 9 + 1 and outcomes["failed"] == 3 and outcomes["skipped"] >= 3
    shows(
        r,
        "test_manifest[invalid:broken]",
        "broken/metadata.yaml: tolerence: unknown key; did you mean 'tolerance'?",
        "test_integrity[corrupt@1]",
        "FAILED arts/missing/metadata.yaml::test_manifest[missing@1]",
        "  - file: nothere.onnx does not exist in missing/ (fix the path in missing/metadata.yaml or add the file)",
    )
    assert "INTERNALERROR" not in r.stdout.str()


def test_users_own_tests_get_the_model_checks_artifact_fixture(pytester, good):
    pytester.makepyfile(
        test_mine=textwrap.dedent("""
        def test_named_like_a_cnn(model_checks_artifact):
            artifact = model_checks_artifact
            assert artifact.manifest.model_name in ("ref", "variant")
            assert artifact.model_path.exists()
    """)
    )
    r = pytester.runpytest("--model-checks", "arts", "test_mine.py", "-v", "-p", "no:cacheprovider")
    shows(r, "test_named_like_a_cnn[ref@1.0] PASSED", "test_named_like_a_cnn[variant@1.0] PASSED")


def test_ini_option_points_at_roots(pytester, good):
    pytester.makeini("[pytest]\nmodel_checks_roots = arts\n")
    r = pytester.runpytest("-p", "no:cacheprovider", "-q")
    r.assert_outcomes(passed=9, skipped=3)


def test_no_roots_means_the_plugin_stays_out_of_the_way(pytester, good):
    pytester.makepyfile(test_plain="def test_ok():\n    assert True\n")
    r = pytester.runpytest("-p", "no:cacheprovider", "test_plain.py", "arts")
    r.assert_outcomes(passed=1)


def test_summary_and_junit(pytester, good):
    r = run(pytester, "--model-checks-summary=reports/summary.md", "--junitxml=reports/junit.xml")
    r.assert_outcomes(passed=9, skipped=3)
    shows(r, "model-checks: summary written to reports/summary.md")
    text = (pytester.path / "reports" / "summary.md").read_text()
    assert "| `variant@1.0` | onnx | fp32 | 13 |" in text
    row = next(line for line in text.splitlines() if "`variant@1.0`" in line)
    assert row.endswith("| pass | pass | pass | pass | pass | pass |") and "+0.0000" in row
    junit = (pytester.path / "reports" / "junit.xml").read_text()
    # issue 12: one property per fact and figure, the directory relative to the rootdir
    assert (
        '<property name="model_checks.check" value="metadata" />' in junit
        and '<property name="model_checks.opset" value="13" />' in junit
    )
    assert '<property name="model_checks.dir" value="arts/variant" />' in junit
    assert str(pytester.path) not in junit


def test_each_model_is_loaded_once_and_released(pytester, good):
    pytester.makeconftest(
        textwrap.dedent("""
        from model_checks.plugin import SESSION_KEY
        seen = {}
        def pytest_runtest_teardown(item):
            gs = item.config.stash[SESSION_KEY]
            seen[item.nodeid] = [p.parent.name for p in gs.pool.loaded()]
        def pytest_sessionfinish(session):
            gs = session.config.stash[SESSION_KEY]
            loads = {p.parent.name: n for p, n in gs.pool.loads.items()}
            print("LOADS", sorted(loads.items()))
            print("STILL_LOADED", gs.pool.loaded())
    """)
    )
    r = run(pytester, "-s")
    shows(r, "LOADS [('ref', 1), ('variant', 1)]", "STILL_LOADED []")


def test_token_inputs_without_a_range_fail_with_the_key_to_declare_never_a_traceback(pytester):
    # issue 10: 0..9 were drawn for a mask, and limits blamed the batch axis
    from fixtures import token_models as T

    A.pair(
        pytester.path / "arts",
        variant_model=T.encoder(),
        reference_model=T.encoder(),
        limits={"dynamic_axes": ["batch"]},
    )
    r = run(pytester, "-k", "variant and (limits or equivalence)")
    r.assert_outcomes(failed=2)
    shows(
        r,
        "limits: variant@1.0: no valid inputs for the model",
        "  input 'attention_mask' (int64): no range declared and none the graph proves (an index into an embedding's rows); "
        "declare inputs[].range for 'attention_mask' in metadata.yaml (inclusive: [0, 1] for a mask or token types, "
        "[0, vocab_size - 1] for token ids) or give samples",
    )
    assert "Traceback" not in r.stdout.str() and "model_checks/" not in r.stdout.str()
