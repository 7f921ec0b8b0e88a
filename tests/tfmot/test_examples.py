"""The tfmot example that must fail, through the gate as a user runs it: the message names the layer and the
class. It is built here, by the example module, never under artifacts/ (make check must stay green)."""

import pytest

pytest.importorskip("tensorflow_model_optimization")

from model_checks.examples.tfmot_keras import failing_artifact  # noqa: E402


def test_the_unsupported_example_fails_both_tfmot_checks_with_the_layer_named(pytester):
    failing_artifact(pytester.path / "arts" / "tfmot_unsupported")
    r = pytester.runpytest(
        "--model-checks", "arts", "-p", "no:cacheprovider", "-k", "test_tfmot_quantize or test_tfmot_prune"
    )
    r.assert_outcomes(failed=2)
    r.stdout.fnmatch_lines(
        [
            "*tfmot_quantize: tfmot_unsupported@1.0: quantization-aware training does not apply (non-layer operation)*",
            "*layer 'tf.__operators__.add*' (TFOpLambda): non-layer operation: a bare tensor operation (a + b)*fix: write it as a layer*",
            "*tfmot_prune: tfmot_unsupported@1.0: pruning does not apply (non-layer operation)*",
        ]
    )


def test_the_example_is_otherwise_a_valid_artifact(pytester):
    failing_artifact(pytester.path / "arts" / "tfmot_unsupported")
    r = pytester.runpytest("--model-checks", "arts", "-p", "no:cacheprovider", "-k", "not test_tfmot")
    r.assert_outcomes(passed=3, skipped=3)  # manifest, integrity, metadata; no reference, limits or eval data


def test_tfmot_checks_run_in_the_keras_worker(pytester):
    """tfmot rewrites the model object, so the whole check runs where the model lives: isolated, the
    pytest process never imports TensorFlow (and a tfmot crash fails only these tests)."""
    failing_artifact(pytester.path / "arts" / "tfmot_unsupported")
    pytester.makeconftest(
        "import sys\n"
        "def pytest_sessionfinish(session):\n"
        "    print('TF_IN_PYTEST_PROCESS', 'tensorflow' in sys.modules)\n"
    )
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider", "-s", "-k", "test_tfmot")
    r.assert_outcomes(failed=2)
    r.stdout.fnmatch_lines(["*TF_IN_PYTEST_PROCESS False*", "*non-layer operation*"])
