"""The one place that reads the CPU's ISA: parsed from /proc/cpuinfo text, injectable through MODEL_CHECKS_ISA."""

from model_checks.core import machine as M

XEON_AVX2 = "processor\t: 0\nmodel name\t: AMD EPYC 7B13\nflags\t\t: fpu sse sse2 avx avx2 fma bmi2\n\nprocessor\t: 1\n"
XEON_VNNI = "model name\t: Intel Xeon Gold 6338\nflags\t\t: avx2 fma avx512f avx512bw avx512_vnni\n"
GRAVITON = "processor\t: 0\nFeatures\t: fp asimd evtstrm aes asimddp i8mm\nCPU part\t: 0xd40\n"


def test_flags_and_family_from_cpuinfo_text():
    avx2 = M.cpu_flags(env={}, cpuinfo=XEON_AVX2)
    assert M.isa(avx2) == ("avx2", "fma") and M.kernel_family(avx2, "x86_64") == "x86-avx2"
    vnni = M.cpu_flags(env={}, cpuinfo=XEON_VNNI)
    assert M.kernel_family(vnni, "x86_64") == "x86-vnni" and "avx512_vnni" in M.isa(vnni)
    arm = M.cpu_flags(env={}, cpuinfo=GRAVITON)
    assert M.kernel_family(arm, "aarch64") == "arm64" and M.isa(arm) == ("asimd", "asimddp", "i8mm")
    assert M.cpu_model(XEON_AVX2) == "AMD EPYC 7B13"


def test_the_isa_is_injected_by_the_environment():
    flags = M.cpu_flags(env={M.ISA_ENV: "AVX2, fma"}, cpuinfo=XEON_VNNI)
    assert flags == {"avx2", "fma"} and M.kernel_family(flags, "x86_64") == "x86-avx2"


def test_the_machine_line_names_cpu_family_flags_runtime_and_where_the_flags_came_from(monkeypatch):
    monkeypatch.setenv(M.ISA_ENV, "avx2,fma")
    m = M.this_machine()
    assert m.isa == ("avx2", "fma") and m.family == "x86-avx2"
    assert f"(x86-avx2: avx2 fma, ISA from {M.ISA_ENV}), onnxruntime " in m.describe()
    assert m.properties()["machine_isa"] == "avx2 fma" and m.properties()["machine_family"] == "x86-avx2"


def test_kernel_settings_the_workers_inherit_travel_with_the_machine(monkeypatch):
    for name in M.KERNEL_SETTINGS:
        monkeypatch.delenv(name, raising=False)
    plain = M.this_machine()
    assert plain.settings == () and "kernel settings" not in plain.describe()
    assert "machine_settings" not in plain.properties()
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")
    monkeypatch.setenv("TF_ENABLE_ONEDNN_OPTS", "1\x1b[2J")  # shown as text, never acted on by a terminal
    m = M.this_machine()
    assert m.settings == ("ONEDNN_MAX_CPU_ISA=AVX2", "TF_ENABLE_ONEDNN_OPTS=1\\x1b[2J")
    assert m.describe().endswith("; kernel settings: ONEDNN_MAX_CPU_ISA=AVX2 TF_ENABLE_ONEDNN_OPTS=1\\x1b[2J")
    assert m.properties()["machine_settings"] == "ONEDNN_MAX_CPU_ISA=AVX2 TF_ENABLE_ONEDNN_OPTS=1\\x1b[2J"
    assert M.describe_record(m.record()) == m.describe()  # as summary.json keeps it, and `merge` reads it back
    assert M.describe_record({**plain.record(), "settings": None}) == plain.describe()  # a record from before


def test_the_machines_memory_is_its_containers_limit_where_that_is_lower(tmp_path):
    from model_checks.core.machine import memory_mib

    ram = memory_mib(cgroup_files=())
    assert ram is not None and ram > 0
    limit = tmp_path / "memory.max"
    limit.write_text("max\n")  # cgroup v2 without a limit
    assert memory_mib((str(limit),)) == ram
    limit.write_text(f"{512 << 20}\n")  # a container of 512 MiB
    assert memory_mib((str(limit),)) == 512
    limit.write_text(f"{(ram << 20) * 1024}\n")  # cgroup v1's "no limit" is a huge number: the RAM stands
    assert memory_mib((str(limit),)) == ram
    assert memory_mib((str(tmp_path / "gone"), str(limit))) == ram  # the first file that is there is read
