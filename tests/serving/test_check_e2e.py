"""test_serving end to end, as a user runs it: pytest --model-checks DIR over artifacts built in the test.
Each run starts real services in subprocesses on loopback, so the load phases are short."""

import json
import os

import pytest

from fixtures import artifacts as A

IFACE = {
    "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 4]}],
    "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 3]}],
}
SHORT = {"rate_per_s": 20, "requests": 40, "duration_s": 5}  # 2 s; the last answer may come 70 ms late


def run(pytester, *args):
    return pytester.runpytest(
        "--model-checks", "arts", "-p", "no:cacheprovider", "-p", "no:randomly", "-m", "serving", *args
    )


def shows(result, *lines):
    out = result.stdout.str()
    missing = [line for line in lines if line not in out]
    assert not missing, f"missing {missing} in:\n{out}"


def test_serving_passes_and_fails_with_what_by_how_much_and_where(pytester):
    root = pytester.path / "arts"
    A.onnx_artifact(root / "fast", name="fast", serving={**SHORT, "latency_ms": {"p99": 5000.0}}, **IFACE)
    A.onnx_artifact(
        root / "tight", name="tight", serving={**SHORT, "arrivals": "poisson", "latency_ms": {"p50": 0.001}}, **IFACE
    )
    A.onnx_artifact(root / "unserved", name="unserved", **IFACE)
    r = run(pytester, "-v", "--junitxml=j.xml")
    r.assert_outcomes(passed=1, failed=1)  # `unserved` declares no serving: block, so it gets no test_serving
    shows(
        r,
        "arts/fast/metadata.yaml::test_serving[fast@1.0] PASSED",
        "arts/tight/metadata.yaml::test_serving[tight@1.0] FAILED",
    )
    r.stdout.fnmatch_lines(
        [
            "*serving: tight@1.0: 1 problem*",
            "*- latency p50 * ms exceeds 0.001 ms from metadata.yaml serving.latency_ms.p50 (by * ms, measured from each "
            "request's intended send time over 40 requests)*",
            "*open loop: 40 request(s) at 20/s (poisson), stopped by requests*",
            "*throughput stops growing*",
            "*limits come from `serving:` in tight/metadata.yaml or policy.yaml*",
        ]
    )
    assert "Traceback" not in r.stdout.str()
    junit = (pytester.path / "j.xml").read_text()
    assert "serving_achieved_rate" in junit and "serving_p99_ms" in junit


def test_a_rate_the_service_cannot_sustain_fails_naming_the_shortfall_and_the_limit(pytester):
    A.onnx_artifact(
        pytester.path / "arts" / "busy",
        name="busy",
        serving={"rate_per_s": 5000, "requests": 400, "duration_s": 5},
        **IFACE,
    )
    r = run(pytester, "-v")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(
        [
            "*- achieved rate * req/s is below 99% of serving.rate_per_s 5000 from metadata.yaml serving.rate_per_s "
            "(needs 4950.0; * answered of 400 sent, counted over * s: to the last scheduled send plus the median "
            "lateness of the last fifth; stopped by requests): the service falls behind this rate*",
            "*limits come from `serving:` in busy/metadata.yaml or policy.yaml*",
        ]
    )
    assert "Traceback" not in r.stdout.str()


@pytest.mark.slow  # two services and four load phases: about 17 s
def test_compare_with_serves_both_and_gates_the_speedup(pytester):
    root = pytester.path / "arts"
    A.onnx_artifact(root / "fp32", name="fp32", **IFACE)
    A.eval_npz(root / "fp32" / "eval.npz")
    A.onnx_artifact(
        root / "int8",
        name="int8",
        eval_data="eval.npz",
        serving={**SHORT, "compare_with": "../fp32", "speedup_vs": 1000},
        **IFACE,
    )
    A.eval_npz(root / "int8" / "eval.npz")
    r = run(pytester, "-v")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(
        [
            "*- speedup over fp32@1.0 (peak closed-loop throughput ratio) * is below 1000 from metadata.yaml "
            "serving.speedup_vs (* vs * req/s); lower serving.speedup_vs only if the variant is not meant to be faster*",
            "*against fp32@1.0 (served alongside, loaded in turn A B A B):*",
            "*accuracy drop over HTTP: +0.0000*",
        ]
    )


@pytest.mark.slow  # two gate runs, each a service and a load phase: about 20 s
def test_served_figures_are_saved_with_the_benchmark_run_and_plotted_in_the_nightly_report(pytester):
    budgets = {"cpu": {"threads": 1, "batch_size": 4, "latency_ms": {"p50": 100.0}}}
    A.onnx_artifact(
        pytester.path / "arts" / "a",
        name="a",
        serving={**SHORT, "latency_ms": {"p99": 5000.0}},
        budgets=budgets,
        **IFACE,
    )
    args = ("-m", "serving or cpu", "--benchmark-autosave", "--model-checks-nightly-report", "reports")
    for _ in range(2):  # one stored run is one dot: the plot needs two
        pytester.runpytest(
            "--model-checks", "arts", "-p", "no:cacheprovider", "-p", "no:randomly", *args
        ).assert_outcomes(passed=2)
    saved = [json.loads(p.read_text()) for p in sorted((pytester.path / ".benchmarks").rglob("*.json"))]
    assert len(saved) == 2 and all(
        set(s["model_checks_serving"]["a@1.0"]) == {"latency_ms", "achieved_rate_per_s", "target_rate_per_s"}
        for s in saved
    )
    assert saved[-1]["model_checks_serving"]["a@1.0"]["target_rate_per_s"] == 20
    md = (pytester.path / "reports" / "nightly.md").read_text()
    assert "served over HTTP: " in md and "![a@1.0 over stored runs](nightly-plots/a_1.0.png)" in md


def test_a_service_that_cannot_load_fails_with_its_reason_and_leaves_nothing_running(pytester):
    root = pytester.path / "arts"
    d = A.onnx_artifact(root / "broken", name="broken", serving=SHORT, **IFACE)
    (d / "model.onnx").write_bytes(b"\x08\x07garbage")
    r = run(pytester, "-v")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(["*serving: broken@1.0: *"])
    assert "Traceback" not in r.stdout.str()
    leftover = [p for p in os.listdir("/proc") if p.isdigit() and _is_service(p, root)]
    assert leftover == []


def _is_service(pid: str, root) -> bool:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as f:
            cmd = f.read().decode(errors="replace")
    except OSError:
        return False
    return "serve" in cmd and str(root) in cmd


def test_serving_skips_under_xdist_and_says_why(pytester, monkeypatch):
    A.onnx_artifact(pytester.path / "arts" / "a", name="a", serving=SHORT, **IFACE)
    monkeypatch.setenv("PYTEST_XDIST_WORKER", "gw0")
    r = run(pytester, "-rs")
    r.assert_outcomes(skipped=1)
    r.stdout.fnmatch_lines(["*serving is not load-tested under pytest-xdist (-n)*"])


@pytest.mark.parametrize(
    "serving, message",
    [
        ({"rate_per_s": 0}, "serving.rate_per_s: 0 is less than or equal to the minimum of 0"),
        ({"rate_per_s": 5, "arrivals": "burst"}, "serving.arrivals: 'burst' is not one of constant, poisson"),
        ({"rate_per_s": 5, "latency": {"p99": 1}}, "serving.latency: unknown key; did you mean 'latency_ms'?"),
        (
            {"requests": 5},
            "serving.rate_per_s: required (in metadata.yaml or the root's policy.yaml): the open-loop arrival rate",
        ),
    ],
)
def test_serving_keys_follow_the_schema(pytester, serving, message):
    A.onnx_artifact(pytester.path / "arts" / "a", name="a", serving=serving, **IFACE)
    r = pytester.runpytest("--model-checks", "arts", "-p", "no:cacheprovider", "-v")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines([f"*{message}*"])
