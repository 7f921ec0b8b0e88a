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

    def walk(base: Any, over: Any, prefix: str, name: str) -> Any:
        if isinstance(base, dict) and isinstance(over, dict):
            out = dict(base)
            for k, v in over.items():
                path = f"{prefix}.{k}" if prefix else str(k)
                out[k] = walk(base.get(k), v, path, name)
            return out
        record(over, prefix, name)
        return over

    def record(value: Any, prefix: str, name: str) -> None:
        sources[prefix] = name
        if isinstance(value, dict):
            for k, v in value.items():
                record(v, f"{prefix}.{k}", name)

    merged: dict[str, Any] = {}
    for key in POLICY_KEYS:
        if key in policy:
            merged[key] = walk(None, policy[key], key, policy_name)
    for key, value in manifest.items():
        merged[key] = walk(merged.get(key), value, key, manifest_name)
    return merged, sources
