import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from model_checks.core.errors import ManifestError
from model_checks.manifest import load_yaml_text, parse_manifest
from model_checks.manifest.schema import key_path

MIN = {"model_name": "cnn", "version": "1.0", "file": "model.onnx"}


def problems(data, policy=None):
    with pytest.raises(ManifestError) as e:
        parse_manifest(data, "arts/cnn/metadata.yaml", policy)
    return e.value.problems


def test_minimal_manifest_defaults():
    m = parse_manifest(dict(MIN), "m")
    assert m.id == "cnn@1.0" and m.format == "onnx"
    assert {k: v.value for k, v in m.tolerance.for_output("any").items()} == {"rel_l2": 1e-3, "mae": 1e-3}


def test_yaml_number_version_is_text():
    m = parse_manifest(load_yaml_text("model_name: a\nversion: 2\nfile: m.onnx\n", "m"), "m")
    assert m.version == "2" and m.id == "a@2"


@pytest.mark.parametrize(
    "extra, expected",
    [
        ({"tolerence": {}}, "tolerence: unknown key; did you mean 'tolerance'?"),
        (
            {"budgets": {"cpu": {"latency_ms": {"p_50": 1.0}}}},
            "budgets.cpu.latency_ms.p_50: unknown key; did you mean 'p50'?",
        ),
        (
            {"budgets": {"cpu": {"latency_ms": {"p95": "fast"}}}},
            "budgets.cpu.latency_ms.p95: expected number, got str 'fast'",
        ),
        ({"precision": "int4"}, "precision: 'int4' is not one of fp32, fp16, bf16, int8, uint8, mixed"),
        ({"inputs": [{"name": "x", "dtype": "float33"}]}, "inputs[0].dtype: 'float33' is not one of"),
        ({"limits": {"opset": {"min": 18, "max": 13}}}, "limits.opset: min 18 is greater than max 13"),
        ({"tolerance": {"rel_l2": None, "mae": None}}, "tolerance: every metric is null"),
        ({"file": "model.bin"}, "format: cannot tell the format of 'model.bin'"),
        ({"zzz_unrelated": 1}, "zzz_unrelated: unknown key; known keys here:"),
    ],
)
def test_each_error_names_key_path(extra, expected):
    found = problems({**MIN, **extra})
    assert any(expected in p for p in found), found


def test_missing_required_key():
    assert problems({"model_name": "a", "version": "1"}) == ["file: required key is missing"]


def test_every_problem_is_reported_at_once():
    found = problems({**MIN, "tolerence": {}, "precision": "int4", "opset": "13"})
    assert len(found) == 3


def test_policy_merges_key_by_key_with_sources():
    policy = {"tolerance": {"rel_l2": 1e-2, "mae": 5e-3}, "limits": {"max_size_mb": 10, "opset": {"min": 11}}}
    m = parse_manifest(
        {**MIN, "tolerance": {"mae": 1e-4}, "limits": {"opset": {"max": 17}}}, "m", policy, "arts/policy.yaml"
    )
    tol = m.tolerance.for_output("logits")
    assert tol["rel_l2"].value == 1e-2 and tol["rel_l2"].source == "arts/policy.yaml"
    assert tol["mae"].value == 1e-4 and tol["mae"].source == "metadata.yaml"
    assert m.get("limits.opset") == {"min": 11, "max": 17}
    assert m.get("limits.max_size_mb") == 10 and m.source_of("limits.max_size_mb") == "arts/policy.yaml"


def test_per_output_override_and_null_disables():
    m = parse_manifest(
        {**MIN, "tolerance": {"rel_l2": None, "top1_agreement": 0.98, "per_output": {"probs": {"mae": 0.5}}}}, "m"
    )
    assert set(m.tolerance.for_output("logits")) == {"mae", "top1_agreement"}
    probs = m.tolerance.for_output("probs")
    assert probs["mae"].value == 0.5 and "per_output.probs" in probs["mae"].source


def test_key_path_rendering():
    assert key_path(["budgets", "cpu", "latency_ms", "p95"]) == "budgets.cpu.latency_ms.p95"
    assert key_path(["inputs", 0, "dtype"]) == "inputs[0].dtype"


def test_schema_command_prints_the_shipped_schema(capsys):
    import json

    from model_checks.cli import main

    assert main(["schema"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["required"] == ["model_name", "version", "file"] and "tolerance" in s["properties"]


FINITE = "every tolerance, limit and budget is a finite number >= 0"


@pytest.mark.parametrize(
    "doc, expected",
    [
        # issue 10: .inf passed anything, .nan failed everything, an integer per_output key ended in a TypeError
        (
            "tolerance: {rel_l2: .inf}",
            f"tolerance.rel_l2: inf is not a finite number; {FINITE} (a tolerance of .inf passes anything, "
            ".nan fails everything); set a number, or null to turn it off",
        ),
        (
            "tolerance: {per_output: {logits: {mae: .nan}}}",
            "tolerance.per_output.logits.mae: nan is not a finite number; ",
        ),
        ("limits: {max_size_mb: .inf}", "limits.max_size_mb: inf is not a finite number; "),
        ("limits: {max_accuracy_drop: -0.1}", "limits.max_accuracy_drop: -0.1 is less than the minimum of 0"),
        ("tolerance: {mismatch_fraction: 1.5}", "tolerance.mismatch_fraction: 1.5 is greater than the maximum of 1"),
        ("accuracy: {outptu: probabilities}", "accuracy.outptu: unknown key; did you mean 'output'?"),
    ],
)
def test_tolerances_and_limits_must_be_finite_and_keys_output_names(doc, expected):
    data = load_yaml_text(f"model_name: a\nversion: '1'\nfile: m.onnx\n{doc}\n", "m.yaml")
    with pytest.raises(ManifestError) as e:
        parse_manifest(data, "m.yaml")
    assert any(p.startswith(expected) for p in e.value.problems), e.value.problems


def test_an_integer_per_output_key_is_refused_by_the_yaml_loader_and_by_the_schema():
    """The YAML loader refuses any key that is not text (issue 11) before the schema sees it; a mapping built
    in code still meets the schema's own rule (issue 10)."""
    with pytest.raises(ManifestError, match=r"line 4: the key 1 is int, not text; quote it \('1'\)"):
        load_yaml_text(
            "model_name: a\nversion: '1'\nfile: m.onnx\ntolerance: {per_output: {1: {rel_l2: 0.1}}}\n", "m.yaml"
        )
    with pytest.raises(ManifestError) as e:
        parse_manifest({**MIN, "tolerance": {"per_output": {1: {"rel_l2": 0.1}}}}, "m.yaml")
    assert any(
        p.startswith(
            "tolerance.per_output: key 1 is not an output name; per_output keys are the names of outputs (quote it: '1')"
        )
        for p in e.value.problems
    ), e.value.problems


def test_mismatch_fraction_and_accuracy_output_are_read():
    data = load_yaml_text(
        "model_name: a\nversion: '1'\nfile: m.onnx\ntolerance: {per_output: {label: {mismatch_fraction: 0.01}}}\n"
        "accuracy: {output: probabilities}\n",
        "m.yaml",
    )
    m = parse_manifest(data, "m.yaml")
    assert (
        m.tolerance.for_output("label")["mismatch_fraction"].value == 0.01
        and m.get("accuracy.output") == "probabilities"
    )


def test_every_number_problem_in_document_order_after_the_schema_s():
    """The finite/negative rule walks the gated sections as the document orders them (pinned as e8e4d9f prints it)."""
    from model_checks.manifest import validate

    data = load_yaml_text(
        "model_name: a\nversion: '1'\nfile: m.onnx\nlimits: {max_size_mb: .inf, opset: {min: 13}}\n"
        "tolerance: {rel_l2: .nan, per_output: {y: {mae: .inf}, x: {max_abs: -1}}}\nserving: {rate_per_s: .inf}\n"
        "budgets: {cpu: {latency_ms: {p50: .nan}}}\n",
        "m",
    )
    rest = f"is not a finite number; {FINITE} (a tolerance of .inf passes anything, .nan fails everything); set a number, or null to turn it off"
    assert validate(data) == [
        "serving.rate_per_s: inf is greater than the maximum of 100000",
        "tolerance.per_output.x.max_abs: -1 is less than the minimum of 0",
        f"limits.max_size_mb: inf {rest}",
        f"tolerance.rel_l2: nan {rest}",
        f"tolerance.per_output.y.mae: inf {rest}",
        f"serving.rate_per_s: inf {rest}",
        f"budgets.cpu.latency_ms.p50: nan {rest}",
    ]


def test_guess_format_remembers_per_file_and_forgets_when_the_frameworks_change(monkeypatch):
    import model_checks.backends.registry as registry
    from model_checks.manifest import _guess_format, guess_format

    names = ["model.onnx", "m.ONNX", "model.pt", "saved/", "model", "x.tflite", "x.xml", "x.keras", "x.zip", "a.b.onnx"]
    want = [_guess_format(n) for n in names]
    assert want[0] == "onnx" and [guess_format(n) for n in names] == want == [guess_format(n) for n in names]
    every = registry.frameworks()
    monkeypatch.setattr(registry, "frameworks", lambda: tuple(f for f in every if "onnx" not in f.formats))
    assert guess_format("model.onnx") is None


def _semantic_reference(data):
    """manifest._semantic_problems as e8e4d9f wrote it (the rules, in their order)."""
    problems = []
    opset = (data.get("limits") or {}).get("opset") or {}
    if "min" in opset and "max" in opset and opset["min"] > opset["max"]:
        problems.append(f"limits.opset: min {opset['min']} is greater than max {opset['max']}")
    for side in ("inputs", "outputs"):
        names = [t["name"] for t in data.get(side) or []]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            problems.append(f"{side}: names are not unique: {', '.join(dupes)}")
        for i, t in enumerate(data.get(side) or []):
            r = t.get("range")
            if r and r[0] > r[1]:
                problems.append(f"{side}[{i}].range: low {r[0]} is greater than high {r[1]}")
    if data.get("serving") is not None and (data.get("serving") or {}).get("rate_per_s") is None:
        problems.append(
            "serving.rate_per_s: required (in metadata.yaml or the root's policy.yaml): the open-loop arrival rate"
        )
    tol = data.get("tolerance") or {}
    effective = {m: tol.get(m, "default") for m in ("rel_l2", "mae", "max_abs", "top1_agreement")}
    effective.setdefault("rel_l2", "default")
    if all(v is None for m, v in effective.items() if m in ("rel_l2", "mae")) and not any(
        effective[m] not in (None, "default") for m in ("max_abs", "top1_agreement")
    ):
        problems.append("tolerance: every metric is null, so equivalence could pass anything; keep at least one")
    return problems


def test_the_cross_key_rules_say_what_they_said():
    """Every combination of set, null and missing tolerance metrics, and of inputs/outputs (none, empty, duplicate
    names, reversed ranges), gives the same problems in the same order as before."""
    import itertools

    from model_checks.manifest import _semantic_problems

    missing = object()
    sides = [missing, None, [], [{"name": "x"}], [{"name": "x"}, {"name": "x", "range": [2, 1]}]]
    tolerances = [missing, None, {}]
    for values in itertools.product([missing, None, 0.0, 1e-3], repeat=4):
        tolerances.append(
            {m: v for m, v in zip(("rel_l2", "mae", "max_abs", "top1_agreement"), values) if v is not missing}
        )
    for tol, inputs, outputs in itertools.product(tolerances, sides, sides):
        data = {"limits": {"opset": {"min": 14, "max": 13}}, "serving": {}}
        for key, value in (("tolerance", tol), ("inputs", inputs), ("outputs", outputs)):
            if value is not missing:
                data[key] = value
        assert _semantic_problems(data) == _semantic_reference(data), data


def _merge_before(policy, manifest, policy_name, manifest_name):
    """policy.merge as it was before its shortcuts for values that are no mapping (kept as the reference)."""

    def walk(base, over, prefix, sources):
        if isinstance(base, dict) and isinstance(over, dict):
            out = dict(base)
            for k, v in over.items():
                out[k] = walk(base.get(k), v, f"{prefix}.{k}" if prefix else str(k), sources)
            return out
        record(over, prefix, sources)
        return over

    def record(value, prefix, sources):
        sources[prefix] = name[0]
        if isinstance(value, dict):
            for k, v in value.items():
                record(v, f"{prefix}.{k}", sources)

    sources, merged, name = {}, {}, [policy_name]
    from model_checks.manifest.policy import POLICY_KEYS

    for key in POLICY_KEYS:
        if key in policy:
            merged[key] = walk(None, policy[key], key, sources)
    name[0] = manifest_name
    for key, value in manifest.items():
        merged[key] = walk(merged.get(key), value, key, sources)
    return merged, sources


class _Mapping(dict):
    """A mapping that is not a plain dict (a caller's own), merged as a mapping all the same."""


_LEAF = st.one_of(st.none(), st.booleans(), st.integers(-3, 3), st.sampled_from(["a", "fp32", "x.onnx"]))
_KEYS = st.sampled_from(["tolerance", "limits", "budgets", "runtimes", "a", "b", "rel_l2", "cpu", "opset"])
_TREE = st.recursive(
    _LEAF,
    lambda kids: st.one_of(
        st.lists(kids, max_size=2),
        st.dictionaries(_KEYS, kids, max_size=3),
        st.dictionaries(_KEYS, kids, max_size=2).map(_Mapping),
    ),
    max_leaves=8,
)


@settings(max_examples=600, deadline=None)
@given(policy=st.dictionaries(_KEYS, _TREE, max_size=4), manifest=st.dictionaries(_KEYS, _TREE, max_size=5))
def test_merge_gives_the_same_values_sources_and_order_as_before(policy, manifest):
    from model_checks.manifest.policy import merge

    got = merge(policy, manifest, "policy.yaml", "metadata.yaml")
    want = _merge_before(policy, manifest, "policy.yaml", "metadata.yaml")
    assert repr(got) == repr(want)  # values, types, and the order of keys in both
