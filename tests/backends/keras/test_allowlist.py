"""A Keras config names only Keras: the allow-list refuses code by name and place, before Keras reads it (issue 11)."""

from __future__ import annotations

import json
import zipfile
from pathlib import Path

import pytest

from fixtures import bad_artifacts
from fixtures.gate_run import run_gate
from model_checks.backends.keras.allowlist import config_problems, tf_op_problem


def _layer(cls: str, module: str | None = "keras.layers", **config: object) -> dict:
    return {"module": module, "class_name": cls, "config": {"name": cls.lower(), **config}, "registered_name": None}


def _model(*layers: dict) -> dict:
    return {
        "module": "keras",
        "class_name": "Sequential",
        "config": {"name": "m", "layers": list(layers)},
        "registered_name": None,
    }


@pytest.mark.parametrize(
    "layer, message",
    [
        (
            _layer("system", module="os"),
            "Sequential 'm' > system 'system': names the module 'os' (class 'system'), which is not a Keras layer module",
        ),
        (_layer("Pwn", module="helpers"), "names the module 'helpers' (class 'Pwn')"),
        (
            _layer(
                "Dense",
                activation={
                    "module": "tensorflow.io",
                    "class_name": "function",
                    "config": "write_file",
                    "registered_name": "write_file",
                },
            ),
            "Dense 'dense' > function: names the module 'tensorflow.io' (class 'function')",
        ),
        (
            _layer("TFOpLambda", module="tf_keras.src.layers.core.tf_op_layer", function="io.write_file"),
            "calls tf.io.write_file, an operation with side effects",
        ),
        (
            _layer(
                "TFOpLambda",
                module="tf_keras.src.layers.core.tf_op_layer",
                function="debugging.experimental.enable_dump_debug_info",
            ),
            "calls tf.debugging",
        ),
        (
            _layer("TFOpLambda", module="tf_keras.src.layers.core.tf_op_layer", function="raw_ops.WriteFile"),
            "calls tf.raw_ops.WriteFile",
        ),
        (
            _layer("TFOpLambda", module="tf_keras.src.layers.core.tf_op_layer", function="load_library"),
            "calls tf.load_library",
        ),
        (
            _layer("Lambda", function=["4wEAAAAA", None, None], function_type="lambda", **{"output_shape": None})
            | {
                "config": {
                    "name": "lambda",
                    "function": ["4wEAAAAA", None, None],
                    "function_type": "lambda",
                    "module": "__main__",
                }
            },
            "holds Python bytecode as its function",
        ),
        (
            _layer("Lambda")
            | {
                "config": {
                    "name": "lambda",
                    "function": "write_file",
                    "function_type": "function",
                    "module": "tensorflow.io",
                }
            },
            "calls tensorflow.io.write_file as its function",
        ),
        (_layer("Custom", module=None) | {"registered_name": "pkg>Custom"}, "is the custom object 'pkg>Custom'"),
        (_layer("exec", module="builtins"), "names the Python builtin 'exec'"),
        ({"class_name": "__lambda__", "config": {"code": "x"}}, "holds Python bytecode (a lambda)"),
        (
            _layer("IntegerLookup", vocabulary="/home/ci/.ssh/id_rsa"),
            "IntegerLookup 'integerlookup': reads the file '/home/ci/.ssh/id_rsa' when it is built (vocabulary); a "
            "model may read nothing outside itself",
        ),
        (_layer("StringLookup", vocabulary="../../secret.txt"), "reads the file '../../secret.txt' when it is built"),
        (_layer("TextVectorization", vocabulary="/etc/passwd"), "reads the file '/etc/passwd' when it is built"),
        (_layer("TFSMLayer", filepath="/tmp/model"), "loads a model from a path when it is built (TFSMLayer)"),
    ],
)
def test_the_allow_list_refuses_by_name_and_place(layer: dict, message: str) -> None:
    problems = config_problems(_model(_layer("Dense"), layer))
    assert len(problems) == 1 and message in problems[0], problems


def test_the_allow_list_passes_what_keras_writes() -> None:
    ok = _model(
        _layer("InputLayer"),
        _layer(
            "Dense",
            activation="relu",
            kernel_initializer={"module": "keras.initializers", "class_name": "GlorotUniform", "config": {}},
        ),
        _layer("TFOpLambda", module="tf_keras.src.layers.core.tf_op_layer", function="nn.relu"),
        _layer("TFOpLambda", module="tf_keras.src.layers.core.tf_op_layer", function="__operators__.add"),
        _layer("Functional", module="tf_keras.src.engine.functional"),
        _layer("IntegerLookup", vocabulary=[1, 2, 3], vocabulary_dtype="int64"),  # as Keras writes one
        _layer("StringLookup", vocabulary=["a", "b"]),
        {"class_name": "__tuple__", "config": {"value": [1, 2]}},
    )
    assert config_problems(ok) == []
    assert (
        tf_op_problem("concat") is None
        and tf_op_problem("math.reduce_mean") is None
        and tf_op_problem("nn.embedding_lookup") is None
    )
    for path in Path(__file__).resolve().parents[3].glob("artifacts/*/*.keras"):  # the examples
        assert config_problems(json.loads(zipfile.ZipFile(path).read("config.json"))) == [], path


def test_a_keras_config_naming_code_fails_integrity_before_keras_reads_it(pytester: pytest.Pytester) -> None:
    root, canary = pytester.path / "artifacts", pytester.path / "canary"
    d = root / "keras_pwn"
    d.mkdir(parents=True)
    (d / "helpers.py").write_text(f"open({str(canary)!r}, 'w').write('ran')\nclass Pwn:\n    pass\n")
    config = _model(
        _layer("Pwn", module="helpers"),
        _layer("TFOpLambda", module="tf_keras.src.layers.core.tf_op_layer", function="io.write_file"),
    )
    with zipfile.ZipFile(d / "model.keras", "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", json.dumps({"keras_version": "2.19.0"}))
    bad_artifacts.manifest(d, file="model.keras")
    bad_artifacts.good_pair(root)
    run = run_gate(pytester, root)
    message = run.message("integrity", "keras_pwn@1.0")
    assert (
        "refused: model.keras: config.json > Sequential 'm' > Pwn 'pwn': names the module 'helpers' (class 'Pwn')"
        in message
    )
    assert "TFOpLambda 'tfoplambda': calls tf.io.write_file, an operation with side effects" in message
    assert "Traceback" not in message and run.ret == 1
    assert not canary.exists() and run.written_outside() == []
    assert run.outcomes("good@1.0")["accuracy"] == "passed"


def test_a_keras_layer_that_would_read_a_file_outside_is_refused_before_it_is_read(pytester: pytest.Pytester) -> None:
    """A lookup layer's vocabulary given as a path: Keras read the file when it built the layer, and TensorFlow's
    parse error quoted its first line into the report (terminal and junit)."""
    root, secret = pytester.path / "artifacts", pytester.path / "outside" / "secret.txt"
    secret.parent.mkdir()
    secret.write_text("TOPSECRET-token\n")
    d = root / "lookup"
    d.mkdir(parents=True)
    config = _model(_layer("IntegerLookup", vocabulary=str(secret)))
    with zipfile.ZipFile(d / "model.keras", "w") as z:
        z.writestr("config.json", json.dumps(config))
        z.writestr("metadata.json", json.dumps({"keras_version": "2.19.0"}))
    bad_artifacts.manifest(d, file="model.keras")
    run = run_gate(pytester, root)
    message = run.message("integrity", "lookup@1.0")
    assert f"IntegerLookup 'integerlookup': reads the file '{secret}' when it is built (vocabulary)" in message
    assert not [r for r in run.reports.values() if "TOPSECRET" in str(r.longrepr)] and run.ret == 1
