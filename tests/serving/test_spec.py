"""`serving:` read from the manifest with policy.yaml inheritance, each limit naming the file that set it."""

from model_checks.manifest import parse_manifest, validate
from model_checks.serving.spec import serving_spec

BASE = {"model_name": "m", "version": "1", "file": "model.onnx"}


def test_serving_inherits_from_policy_key_by_key():
    policy = {"serving": {"rate_per_s": 100, "arrivals": "poisson", "latency_ms": {"p50": 5.0, "p99": 20.0}}}
    assert validate(policy, "policy") == []
    m = parse_manifest(
        {**BASE, "serving": {"latency_ms": {"p99": 50.0}, "compare_with": "../fp32"}},
        "a/metadata.yaml",
        policy,
        "arts/policy.yaml",
    )
    s = serving_spec(m)
    assert (s.rate.value, s.rate.source, s.arrivals) == (100.0, "arts/policy.yaml serving.rate_per_s", "poisson")
    assert s.latency_ms["p50"].source == "arts/policy.yaml serving.latency_ms.p50"
    assert (s.latency_ms["p99"].value, s.latency_ms["p99"].source) == (50.0, "metadata.yaml serving.latency_ms.p99")
    assert (s.requests, s.duration_s, s.compare_with, s.speedup_vs) == (2000, 10.0, "../fp32", None)


def test_no_serving_block_means_no_serving_check():
    assert serving_spec(parse_manifest(dict(BASE), "a/metadata.yaml")) is None


def test_compare_with_belongs_to_an_artifact_not_to_a_policy():
    assert validate({"serving": {"compare_with": "../x"}}, "policy") == [
        "serving.compare_with: unknown key; known keys here: arrivals, duration_s, latency_ms, rate_per_s, requests"
    ]
