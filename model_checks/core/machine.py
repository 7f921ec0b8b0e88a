"""The machine a verdict was reached on: its CPU, the instruction-set flags that change which kernels run (and so
an int8 model's numbers and every timing), the runtime and its providers. The one place that reads the ISA:
/proc/cpuinfo's flags (or `Features` on ARM), unless MODEL_CHECKS_ISA names them ("avx2,fma", "neon"), which is
how a test, or a user asking what the gate would say on another machine, injects another CPU. Imports no framework."""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass, field
from functools import lru_cache
from importlib import metadata

ISA_ENV = "MODEL_CHECKS_ISA"
# The flags that change kernels: the x86 vector widths, the int8 dot products (VNNI, AMX) and ARM's.
RELEVANT = ("avx2", "fma", "avx512f", "avx512bw", "avx512_vnni", "avx_vnni", "avx_vnni_int8", "amx_int8", "amx_bf16",
            "neon", "asimd", "asimddp", "i8mm", "sve")
VNNI = ("avx512_vnni", "avx_vnni", "avx_vnni_int8", "amx_int8")
# The CPU kernel families `limits.portable_to` names. x86-avx2: x86-64 without VNNI, whose U8S8 kernels
# (VPMADDUBSW) saturate each pair of products at 16 bits; x86-vnni: VPDPBUSD, no saturation; arm64: SDOT/UDOT.
FAMILIES = ("x86-avx2", "x86-vnni", "arm64")
RUNTIMES = ("onnxruntime", "onnxruntime-gpu", "openvino", "torch", "tensorflow-cpu", "tensorflow")


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


def runtime_versions() -> dict[str, str]:
    """Installed runtimes by package metadata (nothing imported)."""
    found = {}
    for p in RUNTIMES:
        try:
            found[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            continue
    return found


@dataclass(frozen=True)
class Machine:
    """Where a verdict was reached. `isa_source` says whether the flags are this CPU's or injected."""

    cpu: str
    isa: tuple[str, ...]
    family: str | None
    runtimes: dict[str, str] = field(default_factory=dict)
    providers: tuple[str, ...] = ()
    isa_source: str = "/proc/cpuinfo"

    @property
    def runtime(self) -> str:
        """`onnxruntime 1.31.1`, the runtime an ONNX claim is measured with (the first installed otherwise)."""
        name = next((r for r in RUNTIMES if r in self.runtimes), None)
        return f"{name} {self.runtimes[name]}" if name else "no runtime"

    def describe(self) -> str:
        """One line: `Intel Xeon ... (x86-vnni: avx2 avx512f avx512_vnni amx_int8), onnxruntime 1.31.1 [CPU]`."""
        flags = " ".join(self.isa) or "no relevant flags"
        injected = f", ISA from {ISA_ENV}" if self.isa_source != "/proc/cpuinfo" else ""
        prov = f" [{', '.join(p.removesuffix('ExecutionProvider') for p in self.providers)}]" if self.providers else ""
        return f"{self.cpu} ({self.family or 'other'}: {flags}{injected}), {self.runtime}{prov}"

    def properties(self) -> dict[str, str]:
        """As junit properties (`machine_cpu`, `machine_isa`, ...)."""
        return {"machine_cpu": self.cpu, "machine_isa": " ".join(self.isa), "machine_family": self.family or "other",
                "machine_runtime": self.runtime, "machine_providers": " ".join(self.providers)}


def _providers() -> tuple[str, ...]:
    try:
        import onnxruntime as ort
    except ImportError:
        return ()
    return tuple(ort.get_available_providers())


def this_machine(providers: bool = True) -> Machine:
    """This machine (the ISA as MODEL_CHECKS_ISA injects it, if set)."""
    flags = cpu_flags()
    return Machine(cpu=cpu_model(), isa=isa(flags), family=kernel_family(flags), runtimes=runtime_versions(),
                   providers=_providers() if providers else (), isa_source=ISA_ENV if ISA_ENV in os.environ else "/proc/cpuinfo")
