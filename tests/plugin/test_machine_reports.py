"""Every verdict carries its machine: the header, the junit properties of machine-dependent verdicts, summary.md
and the nightly report name the CPU, its ISA flags, the runtime and its providers; `model-checks merge` warns
when shards ran on different machines. The ISA is injected (MODEL_CHECKS_ISA), never this machine's."""

import xml.etree.ElementTree as ET

from fixtures import artifacts as A
from fixtures import int8_models as Q
from model_checks.cli import main
from model_checks.core.machine import ISA_ENV
from model_checks.safety.text import md_text

ISO = ("--model-checks-isolate", "off", "-p", "no:cacheprovider")
INPUTS = [{"name": "input", "dtype": "float32", "shape": ["batch", Q.K], "range": [0.0, 1.0]}]


def tree(root):
    A.pair(
        root,
        Q.qdq_matmul(weight_bits=7),
        Q.fp32(),
        precision="int8",
        inputs=INPUTS,
        tolerance={"rel_l2": 0.05, "mae": None},
    )
    A.onnx_artifact(root / "solo", name="solo")


def test_header_junit_summary_and_nightly_name_the_machine(pytester, monkeypatch):
    monkeypatch.setenv(ISA_ENV, "avx2,fma")
    tree(pytester.path / "arts")
    r = pytester.runpytest(
        "--model-checks",
        "arts",
        *ISO,
        "--junitxml",
        "out/junit.xml",
        "--model-checks-summary",
        "out/summary.md",
        "--model-checks-nightly-report",
        "out",
    )
    r.assert_outcomes(passed=14, skipped=8)  # a nightly run checks determinism on every artifact: 3 of the 14
    r.stdout.fnmatch_lines(
        [f"model-checks: machine: * (x86-avx2: avx2 fma, ISA from {ISA_ENV}), onnxruntime * [[]providers: CPU*]"]
    )
    cases = {
        c.get("name"): {p.get("name"): p.get("value") for p in c.iter("property")}
        for c in ET.parse(pytester.path / "out" / "junit.xml").getroot().iter("testcase")
    }
    port = cases["test_portability[variant@1.0]"]
    assert port["model_checks.machine_isa"] == "avx2 fma" and port["model_checks.machine_family"] == "x86-avx2"
    assert (
        port["model_checks.machine_runtime"].startswith("onnxruntime ")
        and "CPU" in port["model_checks.machine_providers"]
    )
    assert "model_checks.machine_cpu" not in cases["test_integrity[variant@1.0]"]  # a verdict the machine cannot change
    summary = (pytester.path / "out" / "summary.md").read_text()
    assert "\nMachine: " in summary and f"(x86-avx2: avx2 fma, ISA from {ISA_ENV}), onnxruntime " in summary
    nightly = (pytester.path / "out" / "nightly.md").read_text()
    assert f"(x86-avx2: avx2 fma, ISA from {md_text(ISA_ENV)}), onnxruntime " in nightly and "Machine: " in nightly


def test_merge_warns_when_shards_ran_on_different_machines_and_lists_the_verdicts_that_may_depend_on_it(
    pytester, monkeypatch, capsys
):
    tree(pytester.path / "arts")
    for k, isa in ((1, "avx2,fma"), (2, "avx2,avx512f,avx512_vnni")):
        monkeypatch.setenv(ISA_ENV, isa)
        pytester.runpytest(
            "--model-checks",
            "arts",
            *ISO,
            "--junitxml",
            f"s{k}/junit.xml",
            "--model-checks-summary",
            f"s{k}/summary.md",
            "--model-checks-shard",
            f"{k}/2",
        )
    assert (
        main(["merge", str(pytester.path / "s1"), str(pytester.path / "s2"), "-o", str(pytester.path / "merged")]) == 0
    )
    err = capsys.readouterr().err
    assert "model-checks merge: warning: the shards ran on different machines (shard 1/2: " in err
    assert (
        "(x86-avx2: avx2 fma, ISA from MODEL_CHECKS_ISA)" in err
        and "(x86-vnni: avx2 avx512f avx512_vnni, ISA from MODEL_CHECKS_ISA)" in err
    )
    assert "verdicts that may depend on the machine: portability of variant@1.0 (shard " in err
    assert "pin the CI jobs to one machine type" in err
    summary = (pytester.path / "merged" / "summary.md").read_text()
    assert "Machines: the shards ran on different machines; timings and int8 verdicts may depend on which:" in summary
    assert "- shard 1/2: " in summary and "- shard 2/2: " in summary


def test_merge_is_quiet_when_the_shards_agree(pytester, monkeypatch, capsys):
    monkeypatch.setenv(ISA_ENV, "neon,asimd")
    tree(pytester.path / "arts")
    for k in (1, 2):
        pytester.runpytest(
            "--model-checks",
            "arts",
            *ISO,
            "--junitxml",
            f"s{k}/junit.xml",
            "--model-checks-summary",
            f"s{k}/summary.md",
            "--model-checks-shard",
            f"{k}/2",
        )
    assert (
        main(["merge", str(pytester.path / "s1"), str(pytester.path / "s2"), "-o", str(pytester.path / "merged")]) == 0
    )
    assert "warning" not in capsys.readouterr().err
    assert "\nMachine: " in (pytester.path / "merged" / "summary.md").read_text()


def test_the_header_names_the_kernel_settings_and_the_precision_setting_left_behind(pytester, monkeypatch):
    """oneDNN's instruction-set cap changes which kernels run: the machine line names it. Its fpmath mode would have
    fp32 layers computed in bf16: the workers do not inherit it, and the header says so (in process, that it holds)."""
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("ONEDNN_DEFAULT_FPMATH_MODE", "BF16")
    A.onnx_artifact(pytester.path / "arts" / "solo", name="solo")
    r = pytester.runpytest("--model-checks", "arts", "-p", "no:cacheprovider")
    r.assert_outcomes(passed=3, skipped=3)
    r.stdout.fnmatch_lines(
        [
            "model-checks: machine: *; kernel settings: ONEDNN_MAX_CPU_ISA=AVX2",
            "model-checks: ONEDNN_DEFAULT_FPMATH_MODE=BF16 stays with the gate: the models' workers compute fp32 "
            "layers in fp32",
        ]
    )
    r = pytester.runpytest("--model-checks", "arts", *ISO)
    r.stdout.fnmatch_lines(["model-checks: ONEDNN_DEFAULT_FPMATH_MODE=BF16 is in force: models run in this process*"])
