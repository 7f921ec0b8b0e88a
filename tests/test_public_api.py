"""The public API: every name `model_checks.__all__` lists resolves, and importing the package stays free of
any ML framework until a name is used."""

from __future__ import annotations

import subprocess
import sys

import model_checks


def test_every_public_name_resolves():
    for name in model_checks.__all__:
        assert getattr(model_checks, name) is not None, name
    assert model_checks.GateSession.__module__ == "model_checks.core.session"


def test_an_unknown_name_is_an_attribute_error():
    import pytest

    with pytest.raises(AttributeError, match="has no attribute 'nope'"):
        model_checks.nope  # noqa: B018


def test_importing_the_package_imports_no_framework():
    code = (
        "import sys, model_checks\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorflow', 'onnxruntime', 'onnx', 'numpy', 'pytest'})\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY []" in out, out


def test_loading_the_plugin_imports_neither_a_framework_nor_the_library_core():
    """pytest loads the plugin into every run in the environment: it stays as light as its hooks."""
    code = (
        "import sys, model_checks.plugin\n"
        "heavy = sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'tensorflow', 'onnxruntime', 'onnx', 'numpy'})\n"
        "core = sorted(m for m in sys.modules if m.startswith(('model_checks.core.session', 'model_checks.checks', 'model_checks.backends')))\n"
        "print('HEAVY', heavy, core)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert "HEAVY [] []" in out, out
