"""Fuzzing the gate's loading path: random manifests, and random byte-level damage of valid ONNX models,
through discovery and every check (`GateSession.run_check`), with models in worker processes as in the
gate. The only outcomes allowed: a CheckResult (a pass, a skip, or a failure that says why). An exception
escaping `run_check` is an internal error, and a damaged file passing its sha256 is a false pass.

`make test` runs a few examples of each, derandomized when CI is set; `make fuzz` (the `fuzz` marker)
runs MODEL_CHECKS_FUZZ_EXAMPLES (default 500) of each. No example database is written (the checkout is
shared); a failure prints its reproducing example.
"""

from __future__ import annotations

import hashlib
import itertools
import os
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from hypothesis.control import currently_in_test_context

from fixtures import bad_models, onnx_models
from model_checks import checks
from model_checks.backends.registry import formats
from model_checks.core.pool import ModelPool
from model_checks.core.results import CheckResult
from model_checks.core.session import GateSession
from model_checks.isolation.limits import Limits

FAST = dict(max_examples=15, derandomize=bool(os.environ.get("CI")))
LONG = dict(max_examples=int(os.environ.get("MODEL_CHECKS_FUZZ_EXAMPLES", "500")))
COMMON = dict(
    deadline=None, database=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
LIMITS = Limits(memory_mb=2048, timeout_s=30)
BASES = {"linear": onnx_models.linear, "conv_bn": onnx_models.conv_bn, "two_outputs": bad_models.two_outputs}
_counter = itertools.count()


# -- strategies -----------------------------------------------------------------------------------
scalars = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**40), 2**40),
    st.floats(allow_nan=True, allow_infinity=True),
    st.text(max_size=20),
    st.sampled_from(["model.onnx", "../model.onnx", "/etc/passwd", "ref.onnx", "x.npz", ".", "a/../../b"]),
)
values = st.recursive(
    scalars,
    lambda inner: st.one_of(st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=8), inner, max_size=4)),
    max_leaves=12,
)
dims = st.one_of(st.integers(-2, 2**31), st.sampled_from(["batch", "n", ""]), st.just(4), st.just(1))
tensor = st.fixed_dictionaries(
    {"name": st.sampled_from(["input", "input", "logits", "x", ""])},
    optional={
        "dtype": st.sampled_from(["float32", "float32", "float16", "int64", "bool", "complex64"]),
        "shape": st.one_of(st.just(["batch", 4]), st.lists(dims, max_size=5)),
        "range": st.one_of(st.just([0.0, 1.0]), st.lists(st.floats(allow_nan=True), min_size=2, max_size=2)),
    },
)
metric = st.one_of(st.floats(0, 1), st.none(), st.floats(allow_nan=True, allow_infinity=True))
# Keys of the manifest with values the schema mostly accepts, so examples get past the manifest check and
# reach the model; one wild value (`values`) is then sometimes put anywhere.
KNOWN = {
    "format": st.sampled_from(["onnx", *formats()]),  # every declared format, ONNX twice as often
    "sha256": st.one_of(st.text("0123456789abcdef", min_size=64, max_size=64), st.text("0123456789abcdef", max_size=8)),
    "opset": st.integers(-1, 40),
    "precision": st.sampled_from(["fp32", "fp16", "int8", "mixed"]),
    "optimization": st.one_of(
        st.text(max_size=20), st.lists(st.sampled_from(["fuse_bn_into_conv", "eliminate_deadend", "nope"]))
    ),
    "runtime": st.sampled_from(["onnxruntime 1.18.0", "onnxruntime >=99", "torch 2.0", "nope", "onnxruntime ~~1"]),
    "inputs": st.lists(tensor, max_size=2),
    "outputs": st.lists(tensor, max_size=2),
    "reference": st.fixed_dictionaries(
        {
            "path": st.sampled_from(
                ["ref.onnx", "ref.onnx", "samples.npz", "testdata", "../x.onnx", "model.onnx", "ref.pt", "/ref.onnx"]
            )
        }
    ),
    "samples": st.sampled_from(["samples.npz", "ref.onnx", "/dev/zero", "missing.npz", "testdata"]),
    "eval_data": st.sampled_from(["samples.npz", "missing.npz", "model.onnx"]),
    "tolerance": st.dictionaries(st.sampled_from(["rel_l2", "mae", "max_abs", "top1_agreement"]), metric, max_size=3),
    "limits": st.fixed_dictionaries(
        {},
        optional={
            "opset": st.fixed_dictionaries({}, optional={"min": st.integers(0, 30), "max": st.integers(0, 30)}),
            "max_size_mb": st.floats(0, 100),
            "max_size_ratio": st.floats(0, 2),
            "allowed_ops": st.lists(st.sampled_from(["MatMul", "Add", "Conv"])),
            "dynamic_axes": st.lists(st.sampled_from(["batch", "n", "other"]), max_size=2),
            "max_accuracy_drop": st.floats(0, 1),
        },
    ),
}
TYPICAL = {
    "format": "onnx",
    "sha256": None,
    "opset": 13,
    "precision": "fp32",
    "optimization": [],
    "runtime": "onnxruntime 1.18.0",
    "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 4]}],
    "outputs": [{"name": "logits"}],
    "reference": {"path": "ref.onnx"},
    "samples": "samples.npz",
    "eval_data": "samples.npz",
    "tolerance": {"rel_l2": 0.01},
    "limits": {"dynamic_axes": ["batch"]},
}
KNOWN = {
    k: st.one_of(st.just(TYPICAL[k]), v) if TYPICAL[k] is not None else v for k, v in KNOWN.items()
}  # half the time typical
wild = st.lists(st.tuples(st.sampled_from([*KNOWN, "model_name", "version", "file", "bogus_key"]), values), max_size=1)


def _apply(base: dict[str, Any], changes: list[tuple[str, Any]]) -> dict[str, Any]:
    return {**base, **dict(changes)}


manifests = st.builds(
    _apply,
    st.fixed_dictionaries(
        {"model_name": st.just("fuzz"), "version": st.just("1.0"), "file": st.just("model.onnx")}, optional=KNOWN
    ),
    wild,
)
damage = st.lists(
    st.one_of(
        st.tuples(st.just("flip"), st.integers(0, 10**6), st.integers(1, 255)),
        st.tuples(st.just("truncate"), st.integers(0, 10**6)),
        st.tuples(st.just("insert"), st.integers(0, 10**6), st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("overwrite"), st.integers(0, 10**6), st.binary(min_size=1, max_size=16)),
        st.tuples(st.just("delete"), st.integers(0, 10**6), st.integers(1, 64)),
    ),
    min_size=1,
    max_size=4,
)


# Field-level mutations of a ModelProto: still a parseable model, but wrong in ways byte damage rarely reaches.
mutation = st.one_of(
    st.tuples(
        st.just("dim"),
        st.integers(0, 3),
        st.integers(0, 3),
        st.one_of(st.integers(-5, 2**62), st.sampled_from(["", "batch", "n"])),
    ),
    st.tuples(st.just("elem_type"), st.integers(0, 3), st.integers(-1, 40)),
    st.tuples(st.just("init_dims"), st.integers(0, 8), st.lists(st.integers(-3, 2**40), max_size=4)),
    st.tuples(st.just("init_type"), st.integers(0, 8), st.integers(-1, 40)),
    st.tuples(
        st.just("op_type"),
        st.integers(0, 8),
        st.sampled_from(["Conv", "Relu", "Loop", "If", "Foo", "", "MatMul", "Reshape"]),
    ),
    st.tuples(st.just("drop_node"), st.integers(0, 8)),
    st.tuples(st.just("drop_init"), st.integers(0, 8)),
    st.tuples(st.just("opset"), st.integers(-1, 1000), st.sampled_from(["", "ai.onnx", "com.microsoft", "x"])),
    st.tuples(st.just("ir_version"), st.integers(-1, 100)),
    st.tuples(st.just("rename_output"), st.sampled_from(["", "input", "W", "logits2"])),
)


def mutated(model: Any, ops: list[tuple[Any, ...]]) -> bytes:
    g = model.graph
    for op, *a in ops:
        values = [*g.input, *g.output]
        if op == "dim" and values:
            shape = values[a[0] % len(values)].type.tensor_type.shape
            if shape.dim:
                d = shape.dim[a[1] % len(shape.dim)]
                d.dim_param, d.dim_value = (a[2], 0) if isinstance(a[2], str) else ("", a[2])
                if isinstance(a[2], int):
                    d.ClearField("dim_param")
                    d.dim_value = a[2]
        elif op == "elem_type" and values:
            values[a[0] % len(values)].type.tensor_type.elem_type = a[1]
        elif op == "init_dims" and g.initializer:
            t = g.initializer[a[0] % len(g.initializer)]
            del t.dims[:]
            t.dims.extend(a[1])
        elif op == "init_type" and g.initializer:
            g.initializer[a[0] % len(g.initializer)].data_type = a[1]
        elif op == "op_type" and g.node:
            g.node[a[0] % len(g.node)].op_type = a[1]
        elif op == "drop_node" and g.node:
            del g.node[a[0] % len(g.node)]
        elif op == "drop_init" and g.initializer:
            del g.initializer[a[0] % len(g.initializer)]
        elif op == "opset":
            model.opset_import.add(domain=a[1], version=a[0])
        elif op == "ir_version":
            model.ir_version = a[0]
        elif op == "rename_output" and g.output:
            g.output[0].name = a[0]
    return model.SerializeToString()


def damaged(data: bytes, ops: list[tuple[Any, ...]]) -> bytes:
    b = bytearray(data)
    for op, pos, *rest in ops:
        at = pos % (len(b) + 1)
        if op == "flip" and b:
            b[at % len(b)] ^= rest[0]
        elif op == "truncate":
            del b[at:]
        elif op == "insert":
            b[at:at] = rest[0]
        elif op == "overwrite":
            b[at : at + len(rest[0])] = rest[0]
        elif op == "delete":
            del b[at : at + rest[0]]
    return bytes(b)


# -- running the gate -------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def pool():  # type: ignore[no-untyped-def]
    """One pool for all examples, so each family's worker starts once (and again only after a crash)."""
    with ModelPool(isolation=LIMITS) as p:
        yield p


def gate(root: Path, pool: ModelPool) -> dict[tuple[str, str], CheckResult]:
    """Every applicable check of every artifact under `root`, through GateSession.run_check."""
    gs = GateSession(roots=[root])
    gs.pool = pool
    results = {}
    for artifact in gs.artifacts:
        for name in checks.applicable(artifact):
            result = gs.run_check(name, artifact)  # an exception here is an internal error: the test fails
            assert isinstance(result, CheckResult)
            results[(name, artifact.id)] = result
            if currently_in_test_context():  # coverage, shown by --hypothesis-show-statistics
                event(f"{name}: {'skip' if result.skipped else 'pass' if result else 'fail'}")
        for p in gs.models_of(artifact):
            pool.release(p)
    return results


def fresh_root(tmp_path: Path) -> Path:
    root = tmp_path / f"ex{next(_counter)}"
    root.mkdir()
    (root / "testdata").mkdir()
    onnx_models.save(onnx_models.linear(), root / "ref.onnx")
    import numpy as np

    np.savez(
        root / "samples.npz", input=np.ones((2, 4), np.float32), x=np.ones((2, 4), np.float32), y=np.zeros(2, np.int64)
    )
    return root


def check_manifest(tmp_path: Path, pool: ModelPool, manifest: dict[str, Any]) -> None:
    root = fresh_root(tmp_path)
    onnx_models.save(onnx_models.linear(), root / "model.onnx")
    try:
        text = yaml.safe_dump(manifest, sort_keys=False, allow_unicode=True)
    except yaml.YAMLError:
        return
    (root / "metadata.yaml").write_text(text, encoding="utf-8", errors="surrogatepass")
    gate(root, pool)


def check_damage(tmp_path: Path, pool: ModelPool, base: str, ops: list[tuple[Any, ...]]) -> None:
    root = fresh_root(tmp_path)
    good = BASES[base]().SerializeToString()
    data = damaged(good, ops)
    (root / "model.onnx").write_bytes(data)
    onnx_models.save(BASES[base](), root / "ref.onnx")
    (root / "metadata.yaml").write_text(
        yaml.safe_dump(
            {
                "model_name": "fuzz",
                "version": "1.0",
                "file": "model.onnx",
                "sha256": hashlib.sha256(good).hexdigest(),
                "reference": {"path": "ref.onnx"},
                "limits": {"dynamic_axes": ["batch"], "opset": {"min": 13}},
            }
        )
    )
    results = gate(root, pool)
    if data != good:  # a damaged file never passes its sha256
        assert not results[("integrity", "fuzz@1.0")], f"damaged by {ops} and integrity passed"
    else:
        held = {k for k, r in results.items() if r}
        skipped = {k: r.skipped for k, r in results.items() if r.skipped}
        # a skip is not a pass: only checks that cannot apply here (accuracy, with no eval_data) may skip
        assert set(skipped) <= {("accuracy", "fuzz@1.0")}, skipped
        assert held | set(skipped) == set(results), {k: str(r) for k, r in results.items() if not r and not r.skipped}
        assert ("equivalence", "fuzz@1.0") in held and ("integrity", "fuzz@1.0") in held


def check_mutation(tmp_path: Path, pool: ModelPool, base: str, ops: list[tuple[Any, ...]]) -> None:
    root = fresh_root(tmp_path)
    (root / "model.onnx").write_bytes(mutated(BASES[base](), ops))
    onnx_models.save(BASES[base](), root / "ref.onnx")
    (root / "metadata.yaml").write_text(
        yaml.safe_dump(
            {
                "model_name": "fuzz",
                "version": "1.0",
                "file": "model.onnx",
                "reference": {"path": "ref.onnx"},
                "opset": 13,
                "precision": "fp32",
                "limits": {"dynamic_axes": ["batch"], "max_size_ratio": 2},
                "eval_data": "samples.npz",
            }
        )
    )
    gate(root, pool)


# -- the tests: a few examples in `make test`, many under the fuzz marker -------------------------------
@settings(**FAST, **COMMON)
@given(manifest=manifests)
def test_random_manifests(tmp_path: Path, pool: ModelPool, manifest: dict[str, Any]) -> None:
    check_manifest(tmp_path, pool, manifest)


@settings(**FAST, **COMMON)
@given(base=st.sampled_from(sorted(BASES)), ops=damage)
def test_damaged_onnx(tmp_path: Path, pool: ModelPool, base: str, ops: list[tuple[Any, ...]]) -> None:
    check_damage(tmp_path, pool, base, ops)


def test_the_undamaged_model_passes(tmp_path: Path, pool: ModelPool) -> None:
    """The property above is not vacuous: with no damage every check passes."""
    for base in BASES:
        check_damage(tmp_path, pool, base, [("flip", 0, 0)])  # xor with 0: the bytes stay as they were


@pytest.mark.fuzz
@settings(**LONG, **COMMON)
@given(manifest=manifests)
def test_random_manifests_long(tmp_path: Path, pool: ModelPool, manifest: dict[str, Any]) -> None:
    check_manifest(tmp_path, pool, manifest)


@pytest.mark.fuzz
@settings(**LONG, **COMMON)
@given(base=st.sampled_from(sorted(BASES)), ops=damage)
def test_damaged_onnx_long(tmp_path: Path, pool: ModelPool, base: str, ops: list[tuple[Any, ...]]) -> None:
    check_damage(tmp_path, pool, base, ops)


@settings(**FAST, **COMMON)
@given(base=st.sampled_from(sorted(BASES)), ops=st.lists(mutation, min_size=1, max_size=3))
def test_mutated_onnx(tmp_path: Path, pool: ModelPool, base: str, ops: list[tuple[Any, ...]]) -> None:
    check_mutation(tmp_path, pool, base, ops)


@pytest.mark.fuzz
@settings(**LONG, **COMMON)
@given(base=st.sampled_from(sorted(BASES)), ops=st.lists(mutation, min_size=1, max_size=3))
def test_mutated_onnx_long(tmp_path: Path, pool: ModelPool, base: str, ops: list[tuple[Any, ...]]) -> None:
    check_mutation(tmp_path, pool, base, ops)


# -- YAML constructs a manifest must refuse or read, never crash on ---------------------------------
CONSTRUCTS = [
    "<<: {file: model.onnx}",
    "=: x",
    "? [1, 2]\n: v",
    "1: a",
    "~: b",
    "true: c",
    "1.5: d",
    "x: !!binary aGk=",
    "x: !!set {a}",
    "x: !!omap [{a: 1}]",
    "x: !!pairs [{a: 1}]",
    "x: !!timestamp 2020-01-01",
    "x: !!str 3",
    "x: !!int '3'",
    "x: !!python/name:os.system",
    "tolerance: {<<: {rel_l2: 1}}",
    "tolerance: {1: 0.5}",
    "limits: {? {a: 1} : 2}",
    "x: &a 1",
    "x: *a",
    'x: "\\e[2J\\u202e"',
    'version: "1\\n| forged |"',
]
nesting = st.tuples(st.sampled_from(["[", "{a: ", "- ", "? "]), st.integers(1, 100_000))
yaml_docs = st.tuples(
    st.lists(st.one_of(st.sampled_from(CONSTRUCTS), st.text(max_size=30)), max_size=4), st.one_of(st.none(), nesting)
)


def yaml_text(pieces: list[str], deep: tuple[str, int] | None) -> str:
    lines = ["model_name: fuzz", "version: '1.0'", "file: model.onnx", *pieces]
    if deep is not None:
        opener, n = deep
        closer = {"[": "]", "{a: ": "}"}.get(opener, "")
        lines.append("limits: " + opener * n + "1" + closer * n if closer else "limits:\n" + opener * n + "1")
    return "\n".join(lines) + "\n"


def check_yaml(tmp_path: Path, pool: ModelPool, pieces: list[str], deep: tuple[str, int] | None) -> None:
    root = fresh_root(tmp_path)
    onnx_models.save(onnx_models.linear(), root / "model.onnx")
    (root / "metadata.yaml").write_text(yaml_text(pieces, deep), encoding="utf-8", errors="surrogatepass")
    results = gate(root, pool)  # a crash of the interpreter, or any exception, fails the test
    if deep is not None and deep[1] > 64 and deep[0] in ("[", "{a: "):
        assert [r for (name, _), r in results.items() if name == "manifest"] and not any(
            r for (name, _), r in results.items() if name == "manifest"
        )


@settings(**FAST, **COMMON)
@given(doc=yaml_docs)
def test_yaml_constructs(tmp_path: Path, pool: ModelPool, doc: tuple[list[str], tuple[str, int] | None]) -> None:
    check_yaml(tmp_path, pool, *doc)


@pytest.mark.fuzz
@settings(**LONG, **COMMON)
@given(doc=yaml_docs)
def test_yaml_constructs_long(tmp_path: Path, pool: ModelPool, doc: tuple[list[str], tuple[str, int] | None]) -> None:
    check_yaml(tmp_path, pool, *doc)


# -- Keras config.json mutations: refused by name before Keras, never an exception ------------------
MODULES = [
    "keras",
    "keras.layers",
    "tf_keras.src.engine.functional",
    "os",
    "builtins",
    "helpers",
    "tensorflow.io",
    "subprocess",
    "keras.src.utils.io_utils",
    "tf_keras.src.layers.core.tf_op_layer",
    "",
    None,
    3,
    ["keras"],
]
NAMES = ["Dense", "system", "function", "TFOpLambda", "Lambda", "__lambda__", "__tuple__", "Pwn", "", 7, None]
FUNCTIONS = [
    "nn.relu",
    "io.write_file",
    "debugging.enable_check_numerics",
    "raw_ops.WriteFile",
    "print",
    "concat",
    "compat.v1.py_func",
    "load_op_library",
    "",
    None,
    ["4wEAAAAA", None, None],
]
keras_mutation = st.lists(
    st.tuples(
        st.integers(0, 5),
        st.sampled_from(["module", "class_name", "registered_name", "function", "function_type"]),
        st.one_of(st.sampled_from(MODULES), st.sampled_from(NAMES), st.sampled_from(FUNCTIONS), st.text(max_size=12)),
    ),
    max_size=4,
)


def keras_config() -> dict[str, Any]:
    def layer(cls: str, module: str = "keras.layers", **config: Any) -> dict[str, Any]:
        return {"module": module, "class_name": cls, "config": {"name": cls.lower(), **config}, "registered_name": None}

    layers = [
        layer("InputLayer"),
        layer("Dense", activation="relu"),
        layer("TFOpLambda", "tf_keras.src.layers.core.tf_op_layer", function="nn.relu"),
        layer("Lambda")
        | {
            "config": {"name": "lambda", "function": "relu", "function_type": "function", "module": "keras.activations"}
        },
        layer("Flatten"),
    ]
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "m", "layers": layers},
        "registered_name": None,
    }


def check_keras_config(tmp_path: Path, ops: list[tuple[int, str, Any]]) -> None:
    import json
    import zipfile

    from model_checks.backends.keras.allowlist import _ALLOWED_MODULE, config_problems
    from model_checks.backends.keras.loader import check_keras_zip

    config = keras_config()
    objects = [config, *config["config"]["layers"]]
    for i, key, value in ops:
        target = objects[i % len(objects)]
        (target["config"] if key in ("function", "function_type") else target)[key] = value
    problems = config_problems(config)
    foreign = [
        o
        for o in objects
        if isinstance(o.get("class_name"), str)
        and o.get("module") not in (None, "builtins")
        and not (isinstance(o.get("module"), str) and _ALLOWED_MODULE.match(o["module"]))
        and o["class_name"] not in ("__tuple__",)
    ]
    if foreign:
        assert problems, f"{foreign} passed the allow-list"
    path = tmp_path / f"k{next(_counter)}.keras"
    with zipfile.ZipFile(path, "w") as z:
        z.writestr("config.json", json.dumps(config))
    assert check_keras_zip(path) == [f"refused: {p}" for p in config_problems(config, f"{path.name}: config.json")]
    if not ops:
        assert problems == []  # the unmutated config passes


@settings(**FAST, **COMMON)
@given(ops=keras_mutation)
def test_keras_config_mutations(tmp_path: Path, ops: list[tuple[int, str, Any]]) -> None:
    check_keras_config(tmp_path, ops)


@pytest.mark.fuzz
@settings(**LONG, **COMMON)
@given(ops=keras_mutation)
def test_keras_config_mutations_long(tmp_path: Path, ops: list[tuple[int, str, Any]]) -> None:
    check_keras_config(tmp_path, ops)
