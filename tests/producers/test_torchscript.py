"""trace and script: compared with eager; a data-dependent branch is frozen by trace (and warned about),
kept by script; the gate sees the difference against eager outputs recorded on the other branch."""

from __future__ import annotations

import contextlib

import numpy as np
import pytest
import torch

from model_checks.manifest.model import TensorSpec
from model_checks.producers.package import package
from model_checks.producers.torchscript import FrozenBranchWarning, script, trace
from model_checks.producers.verify import ProducerError
from tests.producers.helpers import assert_passes, record


class Branchy(torch.nn.Module):
    """Doubles a positive-sum input, subtracts one otherwise: a branch on the data."""

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.sum() > 0:
            return x * 2
        return x - 1


POS = torch.ones(2, 3)
NEG = -2 * torch.ones(2, 3)  # x * 2 and x - 1 differ here


def test_trace_freezes_the_branch_and_warns(tmp_path):
    with pytest.warns(FrozenBranchWarning, match="froze 1 data-dependent decision"):
        result = trace(Branchy(), POS, tmp_path / "t.pt", check_inputs=[NEG])
    assert len(result.frozen_branches) == 1 and "test_torchscript.py" in result.frozen_branches[0]
    assert not result  # the negative input took the other branch in eager, not in the trace
    assert [bool(c) for _, c in result.comparisons] == [True, False]
    loaded = torch.jit.load(str(tmp_path / "t.pt"))
    assert torch.equal(loaded(NEG), NEG * 2)  # frozen: the eager model gives NEG - 1


def test_script_keeps_both_branches(tmp_path, recwarn):
    result = script(Branchy(), POS, tmp_path / "s.pt", check_inputs=[NEG])
    assert result and result.frozen_branches == ()
    assert not [w for w in recwarn if issubclass(w.category, FrozenBranchWarning)]
    loaded = torch.jit.load(str(tmp_path / "s.pt"))
    assert torch.equal(loaded(NEG), NEG - 1)


def test_the_gate_fails_the_trace_and_passes_the_script_on_the_other_branch(tmp_path, gate):
    root = tmp_path / "root"
    x = NEG.numpy()
    for kind, make in (("trace", trace), ("script", script)):
        d = root / kind
        with pytest.warns(FrozenBranchWarning) if kind == "trace" else contextlib.nullcontext():
            make(Branchy(), POS, d / "model.pt")
        record(d / "eager.npz", {"x": x}, {"y": x - 1})  # eager's output on the branch the trace did not take
        package(
            d / "model.pt",
            d,
            model_name=f"branchy_{kind}",
            reference=d / "eager.npz",
            runs=3,
            inputs=[TensorSpec("x", "float32", ("batch", 3))],
            outputs=[TensorSpec("y")],
        )
    (traced,) = gate(root, root / "trace", "equivalence")
    assert not traced and "differs from its reference" in str(traced)
    assert_passes(gate(root, root / "script", "integrity", "metadata", "equivalence"))


def test_a_model_script_cannot_compile_names_trace_as_the_way_out(tmp_path):
    class Dynamic(torch.nn.Module):
        def forward(self, *args):  # script compiles no variable argument lists
            return args[0]

    with pytest.raises(ProducerError, match="try kind='trace'"):
        script(Dynamic(), POS, tmp_path / "d.pt")
    assert not (tmp_path / "d.pt").exists()


def test_eager_and_traced_agree_on_the_example(tmp_path):
    x = torch.from_numpy(np.random.default_rng(0).uniform(-1, 1, (4, 3)).astype(np.float32))
    lin = torch.nn.Linear(3, 2).eval()
    result = trace(lin, x, tmp_path / "lin.pt")
    assert result and result.comparisons[0][1].worst("max_abs") == 0.0


def test_the_archive_names_no_local_path(tmp_path):
    """Byte-for-byte reproducibility across processes is pinned by the (slow) example rebuild: within one
    process torch numbers each new compiled class (___torch_mangle_N), so two saves here differ by that."""
    import zipfile

    lin = torch.nn.Linear(3, 2).eval()
    a = trace(lin, POS, tmp_path / "a.pt")
    data = a.path.read_bytes()
    assert not [n for n in zipfile.ZipFile(a.path).namelist() if n.endswith(".debug_pkl")]
    assert str(tmp_path).encode() not in data and torch.__file__.rsplit("/", 2)[0].encode() not in data
    assert torch.equal(torch.jit.load(str(a.path))(POS), lin(POS))
