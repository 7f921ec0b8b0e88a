"""policy.yaml: tree-wide `tolerance`, `limits`, `budgets`, `serving`, `runtimes` and `determinism` that every
artifact inherits, key by key."""

from __future__ import annotations

from typing import Any

POLICY_KEYS = ("tolerance", "limits", "budgets", "serving", "runtimes", "determinism")


def merge(
    policy: dict[str, Any], manifest: dict[str, Any], policy_name: str, manifest_name: str
) -> tuple[dict[str, Any], dict[str, str]]:
    """Deep-merge the policy under the manifest; return the result and the file that set each key path."""
    sources: dict[str, str] = {}
    merged: dict[str, Any] = {}
    for key in POLICY_KEYS:
        if key in policy:
            merged[key] = _walk(None, policy[key], key, policy_name, sources)
    for key, value in manifest.items():
        if isinstance(value, dict):
            merged[key] = _walk(merged.get(key), value, key, manifest_name, sources)
        else:  # what _walk does with a value that is no mapping, without the two calls (most of a manifest's keys)
            sources[key] = manifest_name
            merged[key] = value
    return merged, sources


def _walk(base: Any, over: Any, prefix: str, name: str, sources: dict[str, str]) -> Any:
    if isinstance(base, dict) and isinstance(over, dict):
        out = dict(base)
        for k, v in over.items():
            path = f"{prefix}.{k}" if prefix else str(k)
            out[k] = _walk(base.get(k), v, path, name, sources)
        return out
    _record(over, prefix, name, sources)
    return over


def _record(value: Any, prefix: str, name: str, sources: dict[str, str]) -> None:
    sources[prefix] = name
    if isinstance(value, dict):
        for k, v in value.items():
            if isinstance(v, dict):
                _record(v, f"{prefix}.{k}", name, sources)
            else:
                sources[f"{prefix}.{k}"] = name
