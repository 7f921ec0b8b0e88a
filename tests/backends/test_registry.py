"""The framework registry (issue 21): every table of formats derives from the backend folders' declarations, the
shipped schema's `format` enum is pinned to them, and a toy framework added through the registry alone is gated."""

import importlib.util
import json
import textwrap
from importlib import resources

import pytest

from model_checks.backends import registry
from model_checks.core.errors import ModelChecksError

FRAMEWORKS = registry.frameworks()
FORMATS = [f for fw in FRAMEWORKS for f in fw.formats]


def test_the_schema_format_enum_is_the_registry_as_validated_and_as_printed(capsys):
    from model_checks.cli import main
    from model_checks.manifest.schema import schema, validate

    assert schema()["properties"]["format"]["enum"] == list(registry.formats())
    assert main(["schema"]) == 0
    assert json.loads(capsys.readouterr().out)["properties"]["format"]["enum"] == list(registry.formats())
    shipped = json.loads(resources.files("model_checks.schema").joinpath("metadata.schema.json").read_text("utf-8"))
    assert "enum" not in shipped["properties"]["format"], "the shipped file lists no formats: the backends declare them"
    problems = validate({"model_name": "m", "version": "1", "file": "m.bin", "format": "nosuch"})
    assert any("nosuch" in p and all(f in p for f in registry.formats()) for p in problems), problems


@pytest.mark.parametrize("fw", FRAMEWORKS, ids=[fw.name for fw in FRAMEWORKS])
def test_each_folder_has_the_same_modules_and_a_complete_declaration(fw):
    for module in ("loader", "runner", "facts", "timing"):
        assert importlib.util.find_spec(f"{fw.package}.{module}") is not None, f"{fw.package} has no {module}.py"
    assert set(fw.runtime) == set(fw.formats), f"{fw.name}: every format names the runtime package `runtime:` checks"
    assert fw.modules and fw.family


@pytest.mark.parametrize("fmt", FORMATS)
def test_every_table_answers_for_every_declared_format(fmt):
    from model_checks.backends import BACKENDS, family
    from model_checks.core.requires import extra_of
    from model_checks.manifest import guess_format

    fw = registry.framework_of(fmt)
    assert BACKENDS[fmt].package == fw.package and family(fmt) == fw.family
    assert registry.runtime_package(fmt) == fw.runtime[fmt]
    assert registry.layout_convention(fmt) == fw.layout.get(fmt)
    assert all(guess_format(f"model{s}" if s else "model/") == f for s, f in fw.suffixes.items() if f == fmt)
    if "[" in fw.extra:
        assert all(extra_of(m) == fw.extra.split("[")[1].rstrip("]") for m in fw.modules)


def test_a_listed_folder_without_a_declaration_is_a_message(tmp_path, monkeypatch):
    (tmp_path / "undeclared_fw").mkdir()
    (tmp_path / "undeclared_fw" / "__init__.py").write_text("")
    monkeypatch.syspath_prepend(str(tmp_path))
    with pytest.raises(
        ModelChecksError,
        match=r"^undeclared_fw is listed in model_checks.backends.registry.FRAMEWORKS but declares no "
        r"framework: add `FRAMEWORK = Framework\(...\)` to its __init__.py",
    ):
        registry._frameworks((*registry.FRAMEWORKS, "undeclared_fw"))
    with pytest.raises(
        ModelChecksError, match=r"^format 'onnx' is declared by two backends: model_checks.backends.onnx and "
    ):
        registry._frameworks((*registry.FRAMEWORKS, "model_checks.backends.onnx"))


TOY = {
    "__init__.py": """
        from model_checks.backends.registry import Framework

        FRAMEWORK = Framework(name="Toy", formats=("toy",), suffixes={".toy": "toy"}, family="toy", modules=("toy_runtime",),
                              runtime={"toy": "pytest"}, kind="toy", sniff=lambda head: head.startswith(b"TOY1"))
    """,
    "loader.py": """
        from model_checks.safety.sniff import sniff
        from model_checks.core.errors import ArtifactLoadError

        def load(path):
            if sniff(path) != "toy":
                raise ArtifactLoadError(f"{path.name}: not a toy model (it holds {sniff(path)} data)")
            return float(path.read_bytes()[4:].decode())
    """,
    "runner.py": """
        from model_checks.backends.base import Runner
        from model_checks.manifest.model import TensorSpec
        from toy_backend.loader import load as read

        class ToyRunner(Runner):
            format = "toy"

            def __init__(self, path, root):
                self.path, self.scale = path, read(path)
                self.inputs = (TensorSpec("x", "float32", (1, 2)),)
                self.outputs = (TensorSpec("y", "float32", (1, 2)),)

            def infer_impl(self, feeds):
                return {"y": feeds["x"] * self.scale}

        def load(path, root, threads=None, names=None):
            return ToyRunner(path, root)
    """,
    "facts.py": """
        from collections import Counter
        from model_checks.backends.base import ModelFacts
        from model_checks.manifest.model import TensorSpec
        from toy_backend.loader import load

        def model_facts(path, root, names=None):
            load(path)
            return ModelFacts("toy", "fp32", "a toy holds one float", (TensorSpec("x", "float32", (1, 2)),),
                              (TensorSpec("y", "float32", (1, 2)),), Counter({"Mul": 1}), path.stat().st_size)

        def validate(path, root):
            load(path)
            return []
    """,
    "timing.py": """
        def load_runtime():
            pass

        def open_target(path, root, device, threads):
            raise NotImplementedError
    """,
}


def test_a_toy_framework_added_through_the_registry_alone_is_gated(pytester):
    pkg = pytester.path / "toy_backend"
    pkg.mkdir()
    for name, text in TOY.items():
        (pkg / name).write_text(textwrap.dedent(text))
    pytester.makeconftest("""
        import model_checks.backends.registry as registry
        registry.FRAMEWORKS = (*registry.FRAMEWORKS, "toy_backend")
    """)
    for name, content in (("good", b"TOY12.0"), ("bad", b"\x80\x04 a pickle, named .toy")):
        d = pytester.path / "arts" / name
        d.mkdir(parents=True)
        (d / "model.toy").write_bytes(content)
        (d / "metadata.yaml").write_text(f"model_name: {name}\nversion: '1'\nfile: model.toy\nprecision: fp32\n")
    r = pytester.runpytest_subprocess(
        "--model-checks", "arts", "-p", "no:cacheprovider", "--model-checks-isolate", "off", "-v"
    )
    r.stdout.fnmatch_lines(
        [
            "*test_integrity[[]bad@1[]] FAILED*",
            "*test_integrity[[]good@1[]] PASSED*",
            "*test_metadata[[]good@1[]] PASSED*",
        ]
    )
    r.stdout.fnmatch_lines(["*model.toy: not a toy model (it holds pickle data)*"])
    r.assert_outcomes(
        passed=4, failed=1, skipped=7
    )  # manifest x2, good's integrity and metadata; bad's refusal blocks its rest
