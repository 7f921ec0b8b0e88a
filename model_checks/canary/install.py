"""A candidate runtime in a private cached directory: `pip install --target <cache>/<package>-<version> --no-deps`
from the user's configured index, reused when present. Nothing is installed into the environment itself."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path

from model_checks.core.errors import ModelChecksError

# The runtimes a canary can try: the package pip installs, and the backend format its models run under.
PACKAGES = {"onnxruntime": "onnx", "openvino": "openvino"}
COMPLETE = ".model-checks-complete"  # written last: a directory without it is a half-finished install
CACHE_ENV = "MODEL_CHECKS_CACHE"


@dataclass(frozen=True)
class Candidate:
    package: str
    version: str

    @property
    def name(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def backend(self) -> str:
        return PACKAGES[self.package]


def parse_spec(text: str) -> Candidate:
    """`onnxruntime==1.32.0` as a Candidate; anything else is refused with what is accepted."""
    m = re.fullmatch(r"\s*([A-Za-z0-9_.-]+)\s*==\s*([0-9][0-9A-Za-z.+!-]*)\s*", text)
    if not m or m.group(1).lower() not in PACKAGES:
        raise ModelChecksError(f"candidate {text!r}: give one of {', '.join(f'{p}==VERSION' for p in PACKAGES)}")
    return Candidate(m.group(1).lower(), m.group(2))


def cache_root(given: Path | None = None) -> Path:
    if given is not None:
        return given
    env = os.environ.get(CACHE_ENV)
    return Path(env) if env else Path.home() / ".cache" / "model-checks"


def candidate_dir(c: Candidate, cache: Path) -> Path:
    return cache / "runtimes" / f"{c.package}-{c.version}"


def installed(c: Candidate, cache: Path) -> Path | None:
    d = candidate_dir(c, cache)
    return d if (d / COMPLETE).is_file() else None


def install(c: Candidate, cache: Path, offline: bool = False) -> Path:
    """The candidate's directory, installed now unless it is already in the cache."""
    have = installed(c, cache)
    if have is not None:
        return have
    if offline:
        raise ModelChecksError(
            f"{c.name} is not in the cache ({candidate_dir(c, cache)}) and --offline forbids installing it"
        )
    final = candidate_dir(c, cache)
    final.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f".{c.package}-{c.version}-", dir=final.parent))
    # the project's constraints pin the current runtime; a candidate is by definition another version
    env = {**os.environ, "PIP_CONSTRAINT": "", "PIP_DISABLE_PIP_VERSION_CHECK": "1"}
    cmd = [
        sys.executable,
        "-m",
        "pip",
        "install",
        "--quiet",
        "--no-deps",
        "--only-binary",
        ":all:",
        "--target",
        str(work),
        c.name,
    ]
    done = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=1800)
    if done.returncode != 0:
        shutil.rmtree(work, ignore_errors=True)
        tail = (done.stderr or done.stdout).strip().splitlines()[-3:]
        raise ModelChecksError(
            f"pip could not install {c.name} for Python {sys.version_info.major}.{sys.version_info.minor}: "
            + " / ".join(tail)
        )
    shutil.rmtree(work / "bin", ignore_errors=True)  # console scripts: nothing a worker imports
    (work / COMPLETE).write_text(c.name + "\n", encoding="utf-8")
    if final.exists():
        shutil.rmtree(final)
    work.rename(final)
    return final


def entries(directory: Path) -> tuple[Path, ...]:
    """What a worker links ahead of site-packages: the install's top-level packages and their metadata."""
    return tuple(sorted(p for p in directory.iterdir() if not p.name.startswith(".") and p.name != "bin"))


def releases(package: str, cache: Path | None = None) -> list[str]:
    """The releases pip sees on the configured index (`pip index versions`), with any in the cache, oldest first."""
    from packaging.version import InvalidVersion, Version

    found: set[str] = set()
    done = subprocess.run(
        [sys.executable, "-m", "pip", "index", "versions", package], capture_output=True, text=True, timeout=300
    )
    m = re.search(r"Available versions:\s*(.+)", done.stdout)
    if m:
        found.update(v.strip() for v in m.group(1).split(","))
    if cache is not None and (cache / "runtimes").is_dir():
        found.update(
            d.name.split("-", 1)[1]
            for d in (cache / "runtimes").iterdir()
            if d.name.startswith(f"{package}-") and (d / COMPLETE).is_file()
        )

    def key(v: str) -> Version:
        try:
            return Version(v)
        except InvalidVersion:
            return Version("0")

    return sorted(found, key=key)
