"""What building manifests from libyaml's events (depth counted as it goes, no C recursion) costs.

    PYTHONPATH=$PWD .venv/bin/python bench/manifest_depth_scan.py
Prints the median time of load_yaml_text on the example manifests against PyYAML's own CSafeLoader (libyaml
composing, which recurses in C and crashes on deep nesting), and the time to refuse 100,000 levels."""

from __future__ import annotations

import statistics
import time
from pathlib import Path

import yaml

from model_checks.core.errors import ManifestError
from model_checks.manifest import yamlsafe


def per_load_us(texts: list[str], load, rounds: int = 200) -> float:  # type: ignore[no-untyped-def]
    samples = []
    for _ in range(rounds):
        t0 = time.perf_counter()
        for t in texts:
            load(t)
        samples.append((time.perf_counter() - t0) / len(texts) * 1e6)
    return statistics.median(samples)


def main() -> None:
    texts = [p.read_text() for p in sorted(Path("artifacts").glob("*/metadata.yaml"))]
    ours = per_load_us(texts, lambda t: yamlsafe.load_yaml_text(t, "m.yaml"))
    theirs = per_load_us(texts, lambda t: yaml.load(t, Loader=yaml.CSafeLoader))
    deep = "limits: " + "[" * 100_000 + "]" * 100_000
    t0 = time.perf_counter()
    try:
        yamlsafe.load_yaml_text(deep, "deep.yaml")
    except ManifestError:
        pass
    refused_ms = (time.perf_counter() - t0) * 1e3
    print(
        f"{len(texts)} example manifests: {ours:.0f} us a load (events, bounded depth), {theirs:.0f} us with PyYAML's "
        f"CSafeLoader; 100,000 levels refused in {refused_ms:.2f} ms"
    )


if __name__ == "__main__":
    main()
