"""Reading metadata.yaml and policy.yaml into a validated, typed Manifest."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from model_checks.core.errors import ManifestError
from model_checks.manifest.model import (
    DeviceBudget,
    Limit,
    Limits,
    Manifest,
    TensorSpec,
    Tolerance,
    build_limits,
    build_tolerance,
)
from model_checks.manifest.policy import merge
from model_checks.manifest.schema import schema, validate

# yamlsafe (PyYAML) is imported on first use: a worker imports this package for TensorSpec and never reads YAML.

__all__ = [
    "DeviceBudget",
    "Limit",
    "Limits",
    "Manifest",
    "TensorSpec",
    "Tolerance",
    "load_manifest",
    "load_policy",
    "parse_manifest",
    "schema",
    "validate",
    "load_yaml_text",
]


def __getattr__(name: str) -> Any:
    if name in ("load_yaml_file", "load_yaml_text"):
        from model_checks.manifest import yamlsafe

        return getattr(yamlsafe, name)
    raise AttributeError(f"module 'model_checks.manifest' has no attribute {name!r}")


def load_policy(path: Path, display: str) -> dict[str, Any]:
    """A root's policy.yaml, validated; an empty mapping when there is none."""
    if not os.path.lexists(path):
        return {}
    from model_checks.manifest.yamlsafe import load_yaml_file

    data = load_yaml_file(path, display)
    if data is None:
        return {}
    problems = validate(data, "policy")
    if problems:
        raise ManifestError(display, problems)
    return data


_GUESSED: dict[str, str | None] = {}  # file -> its format, for the frameworks in `_GUESSED_FOR`
_GUESSED_FOR: list[Any] = [None]


def guess_format(file: str) -> str | None:
    """The format a file's suffix implies (a folder's: the one stored as a directory), from the frameworks'
    declarations; None when no framework claims it. Remembered per file name while the declarations are the same
    (a tree names the same few: `model.onnx`)."""
    from model_checks.backends.registry import frameworks

    declared = frameworks()
    if _GUESSED_FOR[0] is not declared or len(_GUESSED) >= 4096:
        _GUESSED.clear()
        _GUESSED_FOR[0] = declared
    try:
        return _GUESSED[file]
    except KeyError:
        pass
    fmt = _GUESSED[file] = _guess_format(file)
    return fmt


def _guess_format(file: str) -> str | None:
    from model_checks.backends.registry import DIRECTORY, format_by_suffix

    by_suffix = format_by_suffix()
    p = Path(file)
    if p.suffix.lower() in by_suffix:
        return by_suffix[p.suffix.lower()]
    if p.suffix == "" or file.endswith("/"):
        return by_suffix.get(DIRECTORY)
    return None


def _semantic_problems(data: dict[str, Any]) -> list[str]:
    """What the schema cannot say: cross-key rules."""
    problems = []
    opset = (data.get("limits") or {}).get("opset") or {}
    if "min" in opset and "max" in opset and opset["min"] > opset["max"]:
        problems.append(f"limits.opset: min {opset['min']} is greater than max {opset['max']}")
    for side in ("inputs", "outputs"):
        if not data.get(side):
            continue  # (most manifests declare neither)
        names = [t["name"] for t in data.get(side) or []]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"{side}: names are not unique: {', '.join(dupes)}")
        for i, t in enumerate(data.get(side) or []):
            r = t.get("range")
            if r and r[0] > r[1]:
                problems.append(f"{side}[{i}].range: low {r[0]} is greater than high {r[1]}")
    if (
        data.get("serving") is not None and (data.get("serving") or {}).get("rate_per_s") is None
    ):  # here: policy.yaml may set it
        problems.append(
            "serving.rate_per_s: required (in metadata.yaml or the root's policy.yaml): the open-loop arrival rate"
        )
    tol = data.get("tolerance") or {}
    if (
        tol.get("rel_l2", "default") is None
        and tol.get("mae", "default") is None
        and not any(tol.get(m, "default") not in (None, "default") for m in ("max_abs", "top1_agreement"))
    ):
        problems.append("tolerance: every metric is null, so equivalence could pass anything; keep at least one")
    return problems


def parse_manifest(
    data: Any, display: str, policy: dict[str, Any] | None = None, policy_display: str = "policy.yaml"
) -> Manifest:
    """Validate a loaded metadata mapping, merge the policy under it and build the typed Manifest."""
    problems = validate(data, "metadata")
    if problems:
        raise ManifestError(display, problems)
    merged, sources = merge(policy or {}, data, policy_display, "metadata.yaml")
    problems = _semantic_problems(merged)
    fmt = merged.get("format") or guess_format(merged["file"])
    if fmt is None:
        problems.append(
            f"format: cannot tell the format of {merged['file']!r} from its name; "
            "set format: onnx | torchscript | keras | saved_model | tflite | openvino"
        )
    if problems:
        raise ManifestError(display, problems)
    return Manifest(
        model_name=merged["model_name"],
        version=str(merged["version"]),
        file=merged["file"],
        format=fmt,
        raw=merged,
        sources=sources,
        tolerance=build_tolerance(merged, sources),
        limits=build_limits(merged, sources),
        inputs=tuple(TensorSpec.parse(t) for t in merged["inputs"]) if merged.get("inputs") else None,
        outputs=tuple(TensorSpec.parse(t) for t in merged["outputs"]) if merged.get("outputs") else None,
    )


def load_manifest(
    path: Path, display: str | None = None, policy: dict[str, Any] | None = None, policy_display: str = "policy.yaml"
) -> Manifest:
    """Read, validate and type a metadata.yaml file."""
    from model_checks.manifest.yamlsafe import load_yaml_file

    display = display or str(path)
    return parse_manifest(load_yaml_file(path, display), display, policy, policy_display)
