"""`tfmot: {quantize: true, tflite: true}`: the full-integer TFLite model holds the artifact's `tolerance` against
the float model, resolved as equivalence resolves it (metadata.yaml over policy.yaml over the defaults,
per_output over the rest). The worker's figures are given here (the real QAT road runs in the slow tests of
tests/backends/tflite/test_convert.py); what is tested is the judging and every line the user reads."""

from __future__ import annotations

from pathlib import Path

import pytest

pytest.importorskip("tensorflow_model_optimization")

from model_checks.checks.context import CheckContext  # noqa: E402
from model_checks.checks.tfmot_quantize import with_tflite  # noqa: E402
from model_checks.core.results import CheckResult  # noqa: E402
from model_checks.core.session import GateSession  # noqa: E402
from model_checks.tfmot.tflite import TFLiteReport  # noqa: E402

FIGURES = {
    "float": {"rel_l2": 0.0, "mae": 0.0, "max_abs": 0.0, "top1_agreement": 1.0},
    "QAT": {"rel_l2": 0.0101, "mae": 0.0312, "max_abs": 0.141, "top1_agreement": 1.0},
    "TFLite int8": {"rel_l2": 0.0129, "mae": 0.0411, "max_abs": 0.187, "top1_agreement": 0.96875},
}
TABLE = [
    "    against the float model            float           QAT   TFLite int8",
    "    rel_l2                                 0        0.0101        0.0129{}",
    "    mae                                    0        0.0312        0.0411{}",
    "    max_abs                                0         0.141         0.187{}",
    "    top1_agreement                         1             1        0.9688{}",
]
RESOLVED = "as equivalence resolves it (metadata.yaml, then policy.yaml, then model-checks' defaults)"
QAT_OK = CheckResult("tfmot_quantize", True, "tfmot_quantize: k@1: quantization-aware training applies")


@pytest.fixture(scope="module")
def keras_file(tmp_path_factory) -> Path:  # type: ignore[no-untyped-def]
    from tests.backends.tflite.models import tiny

    p = tmp_path_factory.mktemp("keras") / "model.keras"
    tiny().save(p)
    return p


def judged(root: Path, keras_file: Path, tolerance: str, policy: str | None = None) -> CheckResult:
    """The check's TFLite step on an artifact `k` declaring `tolerance`, with the worker's report given."""
    import shutil

    root = root / "arts"  # policy.yaml is named by its root: arts/policy.yaml
    d = root / "k"
    d.mkdir(parents=True)
    shutil.copyfile(keras_file, d / "model.keras")
    (d / "metadata.yaml").write_text(
        "model_name: k\nversion: '1'\nfile: model.keras\ntfmot: {quantize: true, tflite: true}\n"
        f"tolerance: {tolerance}\n"
    )
    if policy is not None:
        (root / "policy.yaml").write_text(policy)
    gs = GateSession(roots=[root])
    gs.pool.run_isolated = lambda *args: TFLiteReport(32, "samples", "logits", FIGURES)  # type: ignore[method-assign]
    return with_tflite(CheckContext(gs.artifacts[0], gs.pool), QAT_OK)


def test_figures_over_the_declared_tolerance_fail_naming_each_limit_and_where_it_came_from(tmp_path, keras_file):
    """rel_l2 from policy.yaml, mae from the artifact's per_output, max_abs from the artifact: the limits
    equivalence would apply to output 'logits'. Two are exceeded; each failure names its source."""
    r = judged(
        tmp_path,
        keras_file,
        "{max_abs: 0.5, per_output: {logits: {mae: 1.0e-5}}}",
        policy="tolerance: {rel_l2: 1.0e-4}\n",
    )
    assert not r.ok
    assert r.headline == (
        "tfmot_quantize: k@1: QAT applies, but full-integer TFLite (LiteRT) does not hold the tolerance against "
        "the float model on 32 samples: rel_l2 0.0129, mae 0.0411, max_abs 0.187"
    )
    limits = ["   limit <= 0.0001 (arts/policy.yaml)", "   limit <= 1e-05 (metadata.yaml per_output.logits)"]
    limits += ["   limit <= 0.5 (metadata.yaml)", ""]
    assert list(r.details) == [
        "  - rel_l2 0.0129 over the limit 0.0001 (arts/policy.yaml)",
        "  - mae 0.0411 over the limit 1e-05 (metadata.yaml per_output.logits)",
        *(row.format(lim) for row, lim in zip(TABLE, ["", *limits])),
        f"  tolerance: k/metadata.yaml's `tolerance` for output 'logits', {RESOLVED}: rel_l2 <= 0.0001 from "
        "arts/policy.yaml, mae <= 1e-05 from metadata.yaml per_output.logits, max_abs <= 0.5 from metadata.yaml",
        "  fit the QAT model longer, or keep its most sensitive layers in float (annotate only the others with "
        "quantize_annotate_layer). The limits are this artifact's `tolerance`, which equivalence applies against "
        "its reference too: a float model's tolerance is rarely one an int8 model holds, so gate the TFLite model "
        "as its own artifact with an int8 tolerance and set tfmot.tflite: false in k/metadata.yaml",
    ]
    assert r.figures["tfmot_tflite_rel_l2"] == 0.0129 and r.figures["tfmot_tflite_top1_agreement"] == 0.96875


def test_the_defaults_apply_where_nothing_is_declared(tmp_path, keras_file):
    r = judged(tmp_path, keras_file, "{}")
    assert not r.ok
    assert r.details[:2] == (
        "  - rel_l2 0.0129 over the limit 0.001 (default (model-checks))",
        "  - mae 0.0411 over the limit 0.001 (default (model-checks))",
    )


def test_an_int8_tolerance_declared_by_the_artifact_holds(tmp_path, keras_file):
    r = judged(tmp_path, keras_file, "{rel_l2: 0.05, mae: null, top1_agreement: 0.95}")
    assert r.ok, "\n".join([r.headline, *r.details])
    assert r.headline == (
        "tfmot_quantize: k@1: quantization-aware training applies; full-integer TFLite (LiteRT) holds the tolerance "
        "against the float model on 32 samples: rel_l2 0.0129, top1_agreement 0.969"
    )
    assert list(r.details) == [
        TABLE[0],
        TABLE[1].format("   limit <= 0.05 (metadata.yaml)"),
        TABLE[2].format(""),
        TABLE[3].format(""),
        TABLE[4].format("   limit >= 0.95 (metadata.yaml)"),
        f"  tolerance: k/metadata.yaml's `tolerance` for output 'logits', {RESOLVED}: rel_l2 <= 0.05 from "
        "metadata.yaml, top1_agreement >= 0.95 from metadata.yaml",
    ]


def test_a_per_output_tolerance_that_nulls_every_metric_is_a_failure_not_a_pass(tmp_path, keras_file):
    r = judged(tmp_path, keras_file, "{per_output: {logits: {rel_l2: null, mae: null}}}")
    assert not r.ok
    assert r.details[0] == (
        "  - no tolerance applies to output 'logits' (every float metric is null): the TFLite step would pass anything"
    )
    assert r.details[-2] == f"  tolerance: k/metadata.yaml's `tolerance` for output 'logits', {RESOLVED}: none"


def test_a_conversion_that_fails_says_what_happened_without_a_tolerance_table(tmp_path, keras_file, monkeypatch):
    import shutil

    d = tmp_path / "k"
    d.mkdir()
    shutil.copyfile(keras_file, d / "model.keras")
    (d / "metadata.yaml").write_text(
        "model_name: k\nversion: '1'\nfile: model.keras\ntfmot: {quantize: true, tflite: true}\n"
    )
    gs = GateSession(roots=[tmp_path])
    report = TFLiteReport(32, "samples", "logits", problem="ConverterError: an op the converter lacks")
    gs.pool.run_isolated = lambda *args: report  # type: ignore[method-assign]
    r = with_tflite(CheckContext(gs.artifacts[0], gs.pool), QAT_OK)
    assert not r.ok
    assert r.headline == (
        "tfmot_quantize: k@1: QAT applies, but the QAT model does not convert to a full-integer TFLite model that "
        "runs: ConverterError: an op the converter lacks"
    )
    assert list(r.details) == [
        "  fit the QAT model longer, or keep its most sensitive layers in float (annotate only the others with "
        "quantize_annotate_layer); or set tfmot.tflite: false in k/metadata.yaml if no TFLite model is shipped"
    ]
