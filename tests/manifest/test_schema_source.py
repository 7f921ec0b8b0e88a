"""One schema source: the subtrees a policy.yaml shares with metadata.yaml are defined once (the metadata
schema's `$defs`), and the typed manifest reads exactly the keys the schema allows."""

from __future__ import annotations

import dataclasses
import json

import pytest

from model_checks.core.errors import ManifestError
from model_checks.manifest import load_policy, parse_manifest
from model_checks.manifest.model import BUDGET_CHECK_KEYS, LIMIT_KEYS, METRICS, DeviceBudget, Limits
from model_checks.manifest.schema import DEFS, bundled, resolve, schema

MIN = {"model_name": "a", "version": "1", "file": "m.onnx"}


def test_the_policy_schema_defines_no_subtree_of_its_own():
    meta, policy = schema("metadata"), schema("policy")
    for key, node in policy["properties"].items():
        own = "serving_defaults" if key == "serving" else key  # a policy sets no artifact's compare_with
        assert node == {"$ref": f"{DEFS}{own}"}, (
            f"policy.{key} is written out again instead of referencing metadata's $defs"
        )
        assert meta["properties"][key] == {"$ref": f"#/$defs/{key}"}
        assert resolve(node) is meta["$defs"][own]


def test_serving_defaults_are_the_serving_keys_less_the_sibling_ones():
    defs = schema("metadata")["$defs"]
    full, defaults = defs["serving"]["properties"], defs["serving_defaults"]["properties"]
    assert set(full) - set(defaults) == {"compare_with", "speedup_vs"}
    assert all(defaults[k] == full[k] for k in defaults), "a serving key differs between the manifest and the policy"


def test_the_bundled_policy_schema_stands_alone():
    text = json.dumps(bundled("policy"))
    assert "metadata-1.json" not in text and set(bundled("policy")["$defs"]) == set(schema("metadata")["$defs"])


def test_the_typed_manifest_and_the_schema_agree():
    defs = schema("metadata")["$defs"]
    assert set(defs["tolerance"]["properties"]) == {*METRICS, "per_output"}
    assert set(defs["limits"]["properties"]) == set(LIMIT_KEYS)
    assert {f.name for f in dataclasses.fields(Limits)} >= {k for k in LIMIT_KEYS if k != "opset"} | {
        "opset_min",
        "opset_max",
    }
    budget_keys = set(defs["budgets"]["properties"]["cpu"]["properties"])
    assert (
        budget_keys <= {f.name for f in dataclasses.fields(DeviceBudget)}
        and set(BUDGET_CHECK_KEYS.values()) <= budget_keys
    )
    assert defs["budgets"]["properties"]["cpu"] == defs["budgets"]["properties"]["gpu"]


def test_typed_limits_and_budgets_keep_their_sources():
    m = parse_manifest(
        {
            **MIN,
            "limits": {"max_size_mb": 2, "dynamic_axes": ["batch"], "opset": {"min": 13}},
            "budgets": {"cpu": {"threads": 1, "latency_ms": {"p50": 2}}},
        },
        "m.yaml",
        {"limits": {"max_size_ratio": 0.5}},
        "policy.yaml",
    )
    lim = m.limits
    assert lim.declared == ("opset", "max_size_mb", "max_size_ratio", "dynamic_axes")
    assert lim.max_size_mb.value == 2.0 and "metadata.yaml" in lim.max_size_mb.source
    assert lim.max_size_ratio.value == 0.5 and "policy.yaml" in lim.max_size_ratio.source
    assert (lim.opset_min, lim.opset_max, lim.dynamic_axes) == (13, None, ("batch",))
    cpu = m.budget("cpu")
    assert (
        cpu.threads == 1
        and cpu.latency_ms["p50"].value == 2.0
        and cpu.latency_ms["p50"].source.endswith("budgets.cpu.latency_ms.p50")
    )
    assert m.budget("gpu") is None


def test_a_policy_is_checked_against_the_shared_definitions(tmp_path):
    (tmp_path / "policy.yaml").write_text("tolerance: {rel_l3: 0.1}\nlimits: {max_size_mb: -1}\n")
    with pytest.raises(ManifestError) as e:
        load_policy(tmp_path / "policy.yaml", "arts/policy.yaml")
    text = "\n".join(e.value.problems)
    assert "tolerance.rel_l3: unknown key; did you mean 'rel_l2'?" in text and "limits.max_size_mb" in text
