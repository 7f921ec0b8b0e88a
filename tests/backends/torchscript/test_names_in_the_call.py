"""A TorchScript archive names no tensors: the names come with the call, from the manifest the caller read.
No backend reads a manifest (it used to walk every metadata.yaml under the root on each load, and hung on a
named pipe among them)."""

from __future__ import annotations

import os

import pytest

torch = pytest.importorskip("torch")

from model_checks.backends.torchscript.runner import load  # noqa: E402
from model_checks.core.pool import ModelPool  # noqa: E402
from model_checks.core.session import GateSession  # noqa: E402


class Two(torch.nn.Module):
    def forward(self, a, b):
        return a + b, a * b


def _archive(path):
    torch.jit.save(torch.jit.script(Two()), str(path))
    return path


def test_names_are_the_callers_or_positional(tmp_path):
    path = _archive(tmp_path / "m.pt")
    named = load(path, tmp_path, names=(("x", "y"), ("sum", "prod")))
    assert [t.name for t in named.inputs] == ["x", "y"] and [t.name for t in named.outputs] == ["sum", "prod"]
    plain = load(path, tmp_path)
    assert [t.name for t in plain.inputs] == ["input_0", "input_1"]


def test_loading_never_reads_a_manifest_not_even_a_named_pipe_beside_it(tmp_path):
    path = _archive(tmp_path / "m.pt")
    os.mkfifo(tmp_path / "metadata.yaml")  # opening it for reading would block forever
    with ModelPool(trust_code=True) as pool:
        runner = pool.runner(path, "torchscript", tmp_path, names=(("x", "y"), None))
        assert [t.name for t in runner.inputs] == ["x", "y"] and [t.name for t in runner.outputs] == [
            "output_0",
            "output_1",
        ]


def test_a_reference_gets_the_names_its_own_manifest_declares(tmp_path):
    root = tmp_path / "arts"
    (root / "ts").mkdir(parents=True)
    _archive(root / "ts" / "model.pt")
    (root / "ts" / "metadata.yaml").write_text(
        "model_name: ts\nversion: '1'\nfile: model.pt\n"
        "inputs: [{name: x}, {name: y}]\noutputs: [{name: sum}, {name: prod}]\n"
    )
    gs = GateSession(roots=[root], trust_code=True)
    assert len(gs.artifacts) == 1  # discovery hands the declared names to the pool
    runner = gs.pool.runner((root / "ts" / "model.pt").resolve(), "torchscript", root)
    assert [t.name for t in runner.outputs] == ["sum", "prod"]
    gs.pool.close()
