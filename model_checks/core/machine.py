"""The machine a verdict was reached on: its CPU, the instruction-set flags that change which kernels run (and so
an int8 model's numbers and every timing), its memory, the runtime and its providers. The one place that reads the ISA:
/proc/cpuinfo's flags (or `Features` on ARM), unless MODEL_CHECKS_ISA names them ("avx2,fma", "neon"), which is
how a test, or a user asking what the gate would say on another machine, injects another CPU. Imports no framework."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import lru_cache
from importlib import metadata
from typing import Any, Iterable

ISA_ENV = "MODEL_CHECKS_ISA"
# The flags that change kernels: the x86 vector widths, the int8 dot products (VNNI, AMX) and ARM's.
RELEVANT = (
    "avx2",
    "fma",
    "avx512f",
    "avx512bw",
    "avx512_vnni",
    "avx_vnni",
    "avx_vnni_int8",
    "amx_int8",
    "amx_bf16",
    "neon",
    "asimd",
    "asimddp",
    "i8mm",
    "sve",
)
VNNI = ("avx512_vnni", "avx_vnni", "avx_vnni_int8", "amx_int8")
# The CPU kernel families `limits.portable_to` names. x86-avx2: x86-64 without VNNI, whose U8S8 kernels
# (VPMADDUBSW) saturate each pair of products at 16 bits; x86-vnni: VPDPBUSD, no saturation; arm64: SDOT/UDOT.
FAMILIES = ("x86-avx2", "x86-vnni", "arm64")
RUNTIMES = ("onnxruntime", "onnxruntime-gpu", "openvino", "torch", "tensorflow-cpu", "tensorflow")
# Environment variables the models' workers inherit (isolation.workers.ENV_ALLOWED) that change which kernels a
# runtime runs: oneDNN's instruction-set cap and hints (TensorFlow's and OpenVINO's CPU kernels; a cap to AVX2 on a
# VNNI machine computes int8 as a machine without VNNI does), TensorFlow's oneDNN switch, MKL's reproducibility and
# instruction-set settings. A verdict reached under them travels with them (`Machine.settings`). The settings that
# would compute fp32 in a lower precision are not inherited at all (isolation.workers.ENV_DENIED).
KERNEL_SETTINGS = (
    "ONEDNN_MAX_CPU_ISA",
    "DNNL_MAX_CPU_ISA",
    "ONEDNN_CPU_ISA_HINTS",
    "DNNL_CPU_ISA_HINTS",
    "TF_ENABLE_ONEDNN_OPTS",
    "MKL_CBWR",
    "MKL_ENABLE_INSTRUCTIONS",
)


def parse_flags(cpuinfo: str) -> frozenset[str]:
    """The CPU flags of the first processor in /proc/cpuinfo text (`flags` on x86, `Features` on ARM)."""
    for line in cpuinfo.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("flags", "features"):
            return frozenset(value.split())
    return frozenset()


@lru_cache(maxsize=1)
def _cpuinfo() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8", errors="replace") as f:
            return f.read(1 << 20)
    except OSError:
        return ""


def cpu_flags(env: dict[str, str] | None = None, cpuinfo: str | None = None) -> frozenset[str]:
    """Every flag of this CPU, or those MODEL_CHECKS_ISA names (comma- or space-separated)."""
    env = os.environ if env is None else env
    injected = env.get(ISA_ENV)
    if injected is not None:
        return frozenset(f.strip().lower() for f in injected.replace(",", " ").split() if f.strip())
    return parse_flags(_cpuinfo() if cpuinfo is None else cpuinfo)


def isa(flags: frozenset[str] | None = None) -> tuple[str, ...]:
    """The relevant flags, in RELEVANT's order."""
    flags = cpu_flags() if flags is None else flags
    return tuple(f for f in RELEVANT if f in flags)


def kernel_family(flags: frozenset[str] | None = None, arch: str | None = None) -> str | None:
    """x86-avx2, x86-vnni or arm64 (FAMILIES) for these flags; None for a CPU none of them describes."""
    flags = cpu_flags() if flags is None else flags
    arch = (arch or platform.machine()).lower()
    if flags & {"neon", "asimd"} or (not flags and arch in ("aarch64", "arm64")):
        return "arm64"
    if flags & set(VNNI):
        return "x86-vnni"
    if "avx2" in flags:
        return "x86-avx2"
    return None


def cpu_model(cpuinfo: str | None = None) -> str:
    text = _cpuinfo() if cpuinfo is None else cpuinfo
    for line in text.splitlines():
        key, _, value = line.partition(":")
        if key.strip().lower() in ("model name", "hardware", "cpu model"):
            return value.strip()
    return platform.processor() or platform.machine() or "unknown CPU"


# Where a container's memory limit is (cgroup v2, then v1): the kernel ends a process that goes past it, whatever the
# machine's RAM.
CGROUP_MEMORY_FILES = ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes")


def memory_mib(cgroup_files: tuple[str, ...] = CGROUP_MEMORY_FILES) -> int | None:
    """The memory this machine gives its processes, in MiB: its RAM, or its container's (cgroup) limit where that
    is lower; None where neither can be read."""
    try:
        total: int | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        total = None
    for path in cgroup_files:
        try:
            with open(path, encoding="ascii") as f:
                text = f.read(64).strip()
        except (OSError, UnicodeDecodeError):
            continue
        if text.isdigit():  # "max" (v2) or a huge number (v1): no limit of its own
            total = min(total, int(text)) if total else int(text)
        break
    return total >> 20 if total else None


def runtime() -> str:
    """`<package> <version>` of the first of RUNTIMES installed, by package metadata (nothing imported)."""
    for p in RUNTIMES:
        try:
            return f"{p} {metadata.version(p)}"
        except metadata.PackageNotFoundError:
            continue
    return "no runtime"


@dataclass(frozen=True)
class Machine:
    """Where a verdict was reached. `isa_source` says whether the flags are this CPU's or injected."""

    cpu: str
    isa: tuple[str, ...]
    family: str | None
    runtime: str = "no runtime"  # `onnxruntime 1.31.1`: the first of RUNTIMES installed
    providers: tuple[str, ...] = ()
    isa_source: str = "/proc/cpuinfo"
    settings: tuple[str, ...] = ()  # `NAME=value` of the KERNEL_SETTINGS set here

    def describe(self) -> str:
        """One line: `Intel Xeon ... (x86-vnni: avx2 avx512f avx512_vnni amx_int8), onnxruntime 1.31.1 [CPU]`, and
        the kernel settings in force, if any (`; kernel settings: ONEDNN_MAX_CPU_ISA=AVX2`)."""
        flags = " ".join(self.isa) or "no relevant flags"
        injected = f", ISA from {ISA_ENV}" if self.isa_source != "/proc/cpuinfo" else ""
        prov = f" [providers: {', '.join(self.providers)}]" if self.providers else ""
        settings = f"; kernel settings: {' '.join(self.settings)}" if self.settings else ""
        return f"{self.cpu} ({self.family or 'other'}: {flags}{injected}), {self.runtime}{prov}{settings}"

    def properties(self) -> dict[str, str]:
        """As junit properties (`machine_cpu`, `machine_isa`, ...)."""
        return {
            "machine_cpu": self.cpu,
            "machine_isa": " ".join(self.isa),
            "machine_family": self.family or "other",
            "machine_runtime": self.runtime,
            "machine_providers": " ".join(self.providers),
            **({"machine_settings": " ".join(self.settings)} if self.settings else {}),
        }

    def record(self) -> dict[str, Any]:
        """As summary.json keeps it (what `describe_record` and `model-checks merge` read back)."""
        return {
            "cpu": self.cpu,
            "isa": list(self.isa),
            "family": self.family,
            "runtime": self.runtime,
            "providers": list(self.providers),
            "isa_source": self.isa_source,
            "settings": list(self.settings),
        }


def describe_record(r: dict[str, Any]) -> str:
    """`Machine.describe()` of a recorded machine."""
    return Machine(
        str(r.get("cpu")),
        tuple(r.get("isa") or ()),
        r.get("family"),
        str(r.get("runtime") or "no runtime"),
        tuple(r.get("providers") or ()),
        r.get("isa_source") or "/proc/cpuinfo",
        tuple(str(x) for x in r.get("settings") or ()),
    ).describe()


# onnxruntime's provider libraries, read off the installed package (importing onnxruntime to ask would cost the
# plugin a second at start-up, where it must import no runtime): CPU is built in.
PROVIDER_LIBS = {
    "cuda": "CUDA",
    "tensorrt": "TensorRT",
    "openvino": "OpenVINO",
    "rocm": "ROCm",
    "migraphx": "MIGraphX",
    "dnnl": "DNNL",
    "vitisai": "VitisAI",
    "qnn": "QNN",
}


def providers() -> tuple[str, ...]:
    """onnxruntime's execution providers in this install, without importing it."""
    from importlib.util import find_spec
    from pathlib import Path

    try:
        spec = find_spec("onnxruntime")
    except (ImportError, ValueError):
        return ()
    if spec is None or not spec.origin:
        return ()
    libs = {
        p.name.split("libonnxruntime_providers_", 1)[1].split(".", 1)[0]
        for p in (Path(spec.origin).parent / "capi").glob("libonnxruntime_providers_*")
    }
    return ("CPU", *(name for lib, name in PROVIDER_LIBS.items() if lib in libs))


def kernel_settings(env: dict[str, str] | None = None, names: Iterable[str] = KERNEL_SETTINGS) -> tuple[str, ...]:
    """`NAME=value` for each of `names` set in `env` (this process's environment), its value shown as text."""
    from model_checks.safety.text import printable

    env = os.environ if env is None else env
    return tuple(f"{name}={printable(env[name][:64])}" for name in names if name in env)


@lru_cache(maxsize=4)
def _machine(injected: str | None, with_providers: bool, settings: tuple[str, ...] = ()) -> Machine:
    flags = cpu_flags()
    return Machine(
        cpu=cpu_model(),
        isa=isa(flags),
        family=kernel_family(flags),
        runtime=runtime(),
        providers=providers() if with_providers else (),
        isa_source=ISA_ENV if injected is not None else "/proc/cpuinfo",
        settings=settings,
    )


def this_machine(providers: bool = True) -> Machine:
    """This machine (the ISA as MODEL_CHECKS_ISA injects it, if set; the kernel settings set now). Imports nothing."""
    return _machine(os.environ.get(ISA_ENV), providers, kernel_settings())
