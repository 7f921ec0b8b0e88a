"""The `model-checks` command as a new user meets it (issue 12): --version, --help that names the gate and each
command's extra, a missing extra as one sentence, and validate failing on a tree with no artifact."""

from __future__ import annotations

import subprocess
import sys

import pytest

from fixtures import artifacts as A
from model_checks import __version__
from model_checks.cli import main


def test_version(capsys):
    with pytest.raises(SystemExit) as e:
        main(["--version"])
    assert e.value.code == 0 and capsys.readouterr().out.strip() == f"model-checks {__version__}"


def test_help_names_the_gate_and_each_commands_extra(capsys):
    with pytest.raises(SystemExit):
        main(["--help"])
    out = capsys.readouterr().out
    assert "run `pytest --model-checks DIR` (or set model_checks_roots in pytest.ini)" in out
    flat = " ".join(out.split())  # argparse wraps the help of each command
    for command, extra in (
        ("fp16", "producers"),
        ("export", "torch,producers"),
        ("trace", "torch"),
        ("convert-keras", "keras,producers"),
    ):
        entry = flat[flat.index(f" {command} ") :].split("]")[0]
        assert entry.endswith(f"[extra: {extra}"), entry


def test_a_missing_extra_is_a_sentence_not_a_traceback(tmp_path):
    """onnxconverter_common hidden from the interpreter: fp16 says which extra brings it."""
    model = A.onnx_artifact(tmp_path / "m", name="m") / "model.onnx"
    code = (
        "import sys; sys.modules['onnxconverter_common'] = None; from model_checks.cli import main; "
        f"sys.exit(main(['fp16', {str(model)!r}, '--out', {str(tmp_path / 'o.onnx')!r}]))"
    )
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 1 and "Traceback" not in r.stderr, r.stderr
    assert (
        "model-checks fp16: error: fp16 needs onnxconverter_common, which is not installed: pip install 'model-checks[producers]'"
        in r.stderr
    )


def test_validate_fails_on_zero_artifacts_and_names_a_misnamed_manifest(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "arts" / "cnn").mkdir(parents=True)
    (tmp_path / "arts" / "cnn" / "metadata.yml").write_text("model_name: cnn\n")
    assert main(["validate", "arts"]) == 1
    captured = capsys.readouterr()
    assert "0 artifact(s), 0 invalid" in captured.out
    assert (
        "model-checks validate: error: no artifact under arts/: looked for a metadata.yaml in every folder below it"
        in captured.err
    )
    assert "found arts/cnn/metadata.yml: the manifest must be named metadata.yaml exactly (rename it)" in captured.err


def test_a_path_the_machine_refuses_is_one_line_not_a_traceback(tmp_path, capsys, monkeypatch):
    """A command writing where no folder can be made (or on a full or read-only disk) says so, naming the path."""
    import importlib

    from model_checks.cli import COMMANDS

    def refused(args):  # type: ignore[no-untyped-def]
        raise FileNotFoundError(2, "No such file or directory", "/proc/nope\x1b[31m")

    monkeypatch.setattr(importlib.import_module(COMMANDS["validate"]), "run", refused)
    assert main(["validate", str(tmp_path)]) == 1
    err = capsys.readouterr().err
    assert err == "model-checks validate: error: No such file or directory: /proc/nope\\x1b[31m\n", err
