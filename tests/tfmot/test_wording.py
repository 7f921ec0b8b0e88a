"""A tfmot failure after tfmot applied says so: never "does not apply (after applying)" (issue 10, point 6)."""

from model_checks.tfmot.artifact import verdict
from model_checks.tfmot.quantize import QuantizeReport


def test_a_model_that_applies_but_sits_too_far_says_it_applies():
    r = verdict(
        "tfmot_quantize", "k@1.0", QuantizeReport(rel_l2=0.3), "quantization-aware training does not apply", "hint", {}
    )
    assert not r
    assert r.headline == (
        "tfmot_quantize: k@1.0: applies, but the applied model fails: "
        "the quantized model differs from the float model before training: rel_l2 0.3 over 0.1"
    )
