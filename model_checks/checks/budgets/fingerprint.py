"""The environment a timing was taken in. Two figures are comparable only when their fingerprints are equal:
same CPU model and core count, same threads, same library versions, same GPU and driver. Read without
importing any framework (versions come from package metadata, the GPU from nvidia-smi)."""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
from functools import lru_cache
from importlib import metadata

PACKAGES = ("onnxruntime", "onnxruntime-gpu", "onnx", "numpy", "torch")


@lru_cache(maxsize=1)
def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.lower().startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


@lru_cache(maxsize=1)
def gpu() -> dict[str, str] | None:
    """Name and driver of the first NVIDIA GPU, or None without one (or without nvidia-smi)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    try:
        out = subprocess.run(
            [exe, "--query-gpu=name,driver_version", "--format=csv,noheader"],
            capture_output=True,
            text=True,
            timeout=10,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    first = out.stdout.strip().splitlines()[:1]
    if out.returncode != 0 or not first or "," not in first[0]:
        return None
    name, driver = (s.strip() for s in first[0].split(",", 1))
    return {"name": name, "driver": driver}


def versions() -> dict[str, str]:
    found = {}
    for p in PACKAGES:
        try:
            found[p] = metadata.version(p)
        except metadata.PackageNotFoundError:
            continue
    return found


MACHINE_INFO_KEY = "model_checks"  # where pytest-benchmark's saved runs carry the fingerprint


def fingerprint(device: str | None = None, threads: int | None = None) -> dict:
    """The environment of a measurement on `device` with `threads` (None: the machine as a whole)."""
    fp: dict = {
        "cpu": cpu_model(),
        "cores": os.cpu_count(),
        "machine": platform.machine(),
        "system": platform.system(),
        "python": platform.python_version(),
        "versions": versions(),
    }
    if device is not None:
        fp["device"] = device
        fp["threads"] = threads
    g = gpu()
    if g is not None:
        fp["gpu"] = g
    return fp


def differences(current: dict, stored: dict, prefix: str = "") -> list[str]:
    """Where two fingerprints differ, as `key: stored -> current` lines."""
    out = []
    for key in sorted(set(current) | set(stored)):
        a, b = stored.get(key), current.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            out += differences(b, a, f"{prefix}{key}.")
        elif a != b:
            out.append(f"{prefix}{key}: {a!r} -> {b!r}")
    return out
