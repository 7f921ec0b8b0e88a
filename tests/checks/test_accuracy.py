"""`accuracy` and its eval data: a bad eval_data file is the data's failure, said as such, and never stops the
artifact's other checks (issue 21: it read as "model cannot be loaded" and skipped the budgets)."""

import numpy as np
import pytest

from fixtures import artifacts as A


def run(pytester, *args):
    return pytester.runpytest(
        "--model-checks", "arts", "-p", "no:cacheprovider", "--model-checks-isolate", "off", *args
    )


@pytest.mark.parametrize(
    ("write", "message"),
    [
        (
            lambda p: np.savez(p, inputs=np.zeros((4, 4), np.float32)),
            "invalid eval_data: eval.npz needs arrays x and y (it has inputs)",
        ),
        (
            lambda p: np.savez(p, x=np.zeros((4, 4), np.float32), y=np.zeros(3, np.int64)),
            "invalid eval_data: eval.npz needs x with one sample per label of a 1-d y (x has shape [4, 4], y [3])",
        ),
        (
            lambda p: p.write_bytes(b"PK\x03\x04 not a zip at all"),
            "invalid eval_data: eval.npz is not a readable .npz (BadZipFile: ",
        ),
    ],
)
def test_a_bad_eval_npz_fails_accuracy_as_data_and_the_budgets_still_run(pytester, write, message):
    d = A.onnx_artifact(
        pytester.path / "arts" / "m",
        name="m",
        eval_data="eval.npz",
        budgets={"cpu": {"threads": 1, "latency_ms": {"p99": 10_000.0}}},
    )
    write(d / "eval.npz")
    r = run(pytester, "-v")
    r.assert_outcomes(passed=4, failed=1, skipped=2)  # manifest, integrity, metadata, latency; limits, equivalence skip
    out = r.stdout.str()
    assert f"accuracy: m@1.0: {message}" in out and "fix eval.npz or eval_data in m/metadata.yaml" in out, out
    assert "test_latency[m@1.0-cpu] PASSED" in out and "model cannot be loaded" not in out and "not run:" not in out
