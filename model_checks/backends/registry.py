"""What a framework declares about itself, once, for every table that lists formats: the manifest's `format:`
(the schema's enum, and the format a file's suffix implies), which backend folder and worker family run it, the
extra that installs it and the runtime package `runtime:` names, the layout its image models use, what its files
look like (content sniffing), and why loading it may run code. Each backend folder's `__init__.py` declares
`FRAMEWORK = Framework(...)` and imports no framework; FRAMEWORKS names the folders. Everything here is cheap."""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Callable

from model_checks.core.errors import ModelChecksError

# The backend folders, one line a framework; the order is the order formats are listed in (schema, messages).
FRAMEWORKS: tuple[str, ...] = (
    "model_checks.backends.onnx",
    "model_checks.backends.torchscript",
    "model_checks.backends.keras",
    "model_checks.backends.openvino",
    "model_checks.backends.tflite",
)

DIRECTORY = ""  # the `suffixes` key of a format stored as a directory (a SavedModel)


@dataclass(frozen=True)
class Framework:
    """One backend folder: `loader`, `runner`, `facts` and `timing` modules, and this declaration.

    - `name`: how messages and help name it ("ONNX"); `formats`: the manifest's `format:` values it runs.
    - `suffixes`: file suffix -> format (`DIRECTORY` for a model stored as a folder).
    - `extra`: what installs its framework (`model-checks[torch]`); `modules`: the top-level modules that extra
      brings, so a missing one is a sentence naming it; `family`: its worker process (formats of one runtime
      share one); `runtime`: format -> the package the manifest's `runtime:` names (`onnxruntime 1.18.0`).
    - `layout`: format -> the layout its rank-4 inputs use when nothing is declared and the shape cannot tell.
    - `sniff(head) -> bool`: whether a file's first bytes are this framework's own kind (named after `kind`);
      `sniff_weak` when it is a heuristic that a sharper magic number of another framework must win over.
    - `carries_code(fmt, path) -> why | None`: why loading that file runs code it carries (None: pure data);
      such formats load only with --model-checks-trust-code. `"<module>:<function>"` names one in the folder,
      imported only when a file is judged (a reader too heavy for the declaration).
    - `reference_model`: whether a file of its formats may be another artifact's `reference.path`.
    - `checker`: how integrity names the format's own checker (`facts.validate`) beside the runtime's verdict."""

    name: str
    formats: tuple[str, ...]
    suffixes: dict[str, str]
    family: str
    extra: str = "model-checks"
    modules: tuple[str, ...] = ()
    runtime: dict[str, str] = field(default_factory=dict)
    layout: dict[str, str] = field(default_factory=dict)
    kind: str | None = None
    sniff: Callable[[bytes], bool] | None = None
    sniff_weak: bool = False  # a heuristic rather than a magic number: tried after every other framework's
    carries_code: Callable[[str, Path], str | None] | str | None = None
    reference_model: bool = True
    checker: str | None = None
    package: str = ""  # set from FRAMEWORKS: the folder that declares it

    def __post_init__(self) -> None:
        stray = sorted(set(self.suffixes.values()) - set(self.formats))
        if stray:
            raise ValueError(f"framework {self.name}: suffixes name formats it does not list: {', '.join(stray)}")


def declaration(package: str) -> Framework:
    """The Framework a backend folder declares; a folder without one is a message naming what to add."""
    try:
        mod = importlib.import_module(package)
    except ModuleNotFoundError as e:
        raise ModelChecksError(
            f"{package} is listed in model_checks.backends.registry.FRAMEWORKS but cannot be imported "
            f"({e.name}); a backend folder's __init__.py must import no framework"
        ) from None
    found = getattr(mod, "FRAMEWORK", None)
    if not isinstance(found, Framework):
        raise ModelChecksError(
            f"{package} is listed in model_checks.backends.registry.FRAMEWORKS but declares no framework: "
            "add `FRAMEWORK = Framework(...)` to its __init__.py (model_checks/backends/registry.py)"
        )
    return Framework(**{**found.__dict__, "package": package})


def frameworks() -> tuple[Framework, ...]:
    """Every declared framework, as FRAMEWORKS lists them now."""
    return _frameworks(FRAMEWORKS)


@cache
def _frameworks(packages: tuple[str, ...]) -> tuple[Framework, ...]:
    out: list[Framework] = []
    seen: dict[str, str] = {}
    for package in packages:
        fw = declaration(package)
        for fmt in fw.formats:
            if fmt in seen:
                raise ModelChecksError(f"format {fmt!r} is declared by two backends: {seen[fmt]} and {package}")
            seen[fmt] = package
        out.append(fw)
    return tuple(out)


def formats() -> tuple[str, ...]:
    """Every format the manifest's `format:` accepts, in declaration order."""
    return tuple(f for fw in frameworks() for f in fw.formats)


def framework_of(fmt: str) -> Framework | None:
    return next((fw for fw in frameworks() if fmt in fw.formats), None)


def format_by_suffix() -> dict[str, str]:
    """file suffix (lower case) -> format; `DIRECTORY` for a folder."""
    return {s: f for fw in frameworks() for s, f in fw.suffixes.items()}


def runtime_package(fmt: str) -> str | None:
    fw = framework_of(fmt)
    return fw.runtime.get(fmt) if fw else None


def layout_convention(fmt: str) -> str | None:
    fw = framework_of(fmt)
    return fw.layout.get(fmt) if fw else None


def extras_by_module() -> dict[str, str]:
    """top-level module -> the extra of model-checks that installs it, for the frameworks."""
    return {m: fw.extra.partition("[")[2].rstrip("]") for fw in frameworks() for m in fw.modules if "[" in fw.extra}


def sniff_kind(head: bytes, weak: bool) -> str | None:
    """The framework kind a file's first bytes show (`tflite`), or None: the magic numbers (`weak=False`), or the
    heuristics to try after every container kind (`weak=True`, ONNX's)."""
    found = (fw for fw in frameworks() if fw.sniff is not None and fw.kind and fw.sniff_weak == weak)
    return next((fw.kind for fw in found if fw.sniff(head)), None)


def code_reason(fmt: str, path: Path) -> str | None:
    """Why loading `path` as `fmt` would run code it carries, or None for a pure data format."""
    fw = framework_of(fmt)
    if fw is None or fw.carries_code is None:
        return None
    judge = fw.carries_code
    if isinstance(judge, str):
        module, _, name = judge.partition(":")
        judge = getattr(importlib.import_module(f"{fw.package}.{module}"), name)
    return judge(fmt, path)


def reference_formats() -> tuple[str, ...]:
    """The formats a `reference.path` model file may have."""
    return tuple(f for fw in frameworks() if fw.reference_model for f in fw.formats)


def titles() -> str:
    """`ONNX, TorchScript, Keras`: the frameworks as help texts name them."""
    return ", ".join(fw.name for fw in frameworks())
