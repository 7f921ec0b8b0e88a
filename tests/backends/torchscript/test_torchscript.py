"""TorchScript artifacts through every check, traced and scripted, and against an ONNX model of the same net."""

from pathlib import Path

import numpy as np
import pytest
import yaml

torch = pytest.importorskip("torch")

IFACE = {
    "inputs": [{"name": "image", "dtype": "float32", "shape": ["batch", 3, 8, 8], "layout": "NCHW"}],
    "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 5]}],
}


class Net(torch.nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = torch.nn.Conv2d(3, 4, 3)
        self.fc = torch.nn.Linear(4, 5)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).mean((2, 3)))


def net(seed: int = 0) -> Net:
    torch.manual_seed(seed)
    return Net().eval()


def save(module, path: Path, how: str = "trace") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    m = torch.jit.trace(module, torch.rand(1, 3, 8, 8)) if how == "trace" else torch.jit.script(module)
    torch.jit.save(m, str(path))
    return path


def artifact(d: Path, how: str = "trace", seed: int = 0, **manifest) -> Path:
    save(net(seed), d / "model.pt", how)
    (d / "metadata.yaml").write_text(
        yaml.safe_dump({"model_name": d.name, "version": "1", "file": "model.pt", **manifest}, sort_keys=False)
    )
    return d


def eval_data(path: Path, module, n: int = 32) -> Path:
    x = np.random.default_rng(0).uniform(0, 1, (n, 3, 8, 8)).astype(np.float32)
    with torch.no_grad():
        y = module(torch.from_numpy(x)).argmax(1).numpy()
    np.savez(path, x=x, y=y)
    return path


from model_checks.checks import registry
from model_checks.core.session import GateSession

# every check each artifact gets, bar the manifest's (the registry's, not a list of ours)
CHECKS = tuple(name for name, check in registry().items() if check.applies is None and check.blocking != "failure")


def gate(root, trust=True):
    return GateSession(roots=[root], trust_code=trust)


def results(gs, name):
    art = next(a for a in gs.artifacts if a.manifest.model_name == name)
    return {c: gs.run_check(c, art) for c in CHECKS}


@pytest.mark.parametrize("how", ["trace", "script"])
def test_every_check_passes(tmp_path, how):
    root = tmp_path / "arts"
    artifact(root / "ref", how, seed=0)
    var = artifact(
        root / "var",
        how,
        seed=0,
        precision="fp32",
        eval_data="eval.npz",
        accuracy_drop=0.0,
        limits={
            "max_size_mb": 1,
            "max_size_ratio": 1.1,
            "dynamic_axes": ["batch"],
            "max_accuracy_drop": 0.0,
            "allowed_ops": ["aten::_convolution", "aten::relu", "aten::mean", "aten::linear", "aten::conv2d"],
        },
        reference={"path": "../ref/model.pt"},
        **IFACE,
    )
    eval_data(var / "eval.npz", net(0))
    r = results(gate(root), "var")
    assert all(r.values()) and not any(x.skipped for x in r.values()), "\n".join(map(str, r.values()))
    assert r["metadata"].figures["precision"] == "fp32"
    assert r["accuracy"].figures["accuracy"] == 1.0
    assert "over 2 case(s)" in str(r["equivalence"])  # a dynamic batch is run at two sizes


def test_claims_and_a_different_model_fail(tmp_path):
    root = tmp_path / "arts"
    artifact(root / "ref", seed=0)
    artifact(
        root / "var",
        seed=1,
        precision="fp16",
        limits={"allowed_ops": ["aten::linear"]},
        reference={"path": "../ref/model.pt"},
        inputs=[{"name": "image", "shape": ["batch", 3, 8, 8]}, {"name": "mask", "shape": [1]}],
    )
    r = results(gate(root), "var")
    assert not r["metadata"]
    assert "precision: declared fp16, the model is fp32" in str(r["metadata"])
    assert "inputs: declared image, mask but the model's inputs are input_0" in str(
        r["metadata"]
    )  # 2 declared, 1 real: positional names
    assert not r["equivalence"] and "no shape declared" in str(
        r["equivalence"]
    )  # input_0 is not declared: its shape is unknown
    assert not r["limits"] and "aten::" in str(r["limits"])


def test_a_different_model_is_not_equivalent(tmp_path):
    root = tmp_path / "arts"
    artifact(root / "ref", seed=0)
    artifact(root / "var", seed=1, reference={"path": "../ref/model.pt"}, **IFACE)
    r = results(gate(root), "var")["equivalence"]
    assert not r and "differs from its reference" in str(r)


def test_unnamed_tensors_get_positional_names(tmp_path):
    from model_checks.backends.torchscript.runner import load

    d = artifact(tmp_path / "a")
    runner = load(d / "model.pt", tmp_path)
    assert [t.name for t in runner.inputs] == ["input_0"] and [t.name for t in runner.outputs] == ["output_0"]
    out = runner.infer({"input_0": np.zeros((2, 3, 8, 8), np.float32)})
    assert out["output_0"].shape == (2, 5)


def test_refused_unless_trusted_and_pickles_are_not_torchscript(tmp_path):
    root = tmp_path / "arts"
    artifact(root / "ts")
    r = gate(root, trust=False).run_check("integrity", gate(root).artifacts[0])
    assert not r and "refused to load a torchscript model" in str(r)
    torch.save(net().state_dict(), root / "ts" / "model.pt")  # a pickled checkpoint, not TorchScript
    r = gate(root).run_check("integrity", gate(root).artifacts[0])
    assert not r and "a pickled torch.save() checkpoint, not a TorchScript archive" in str(r)


def test_onnx_artifact_against_torchscript_reference_and_back(tmp_path):
    """Same layout (NCHW) on both sides; torch's unnamed outputs matched by order to ONNX's named ones."""
    root = tmp_path / "arts"
    artifact(root / "ts")
    (root / "onnx").mkdir()
    torch.onnx.export(
        net(0),
        torch.rand(1, 3, 8, 8),
        str(root / "onnx" / "model.onnx"),
        input_names=["pixels"],
        output_names=["scores"],
        dynamic_axes={"pixels": {0: "batch"}, "scores": {0: "batch"}},
        dynamo=False,
    )
    (root / "onnx" / "metadata.yaml").write_text(
        yaml.safe_dump(
            {"model_name": "onnx", "version": "1", "file": "model.onnx", "reference": {"path": "../ts/model.pt"}}
        )
    )
    (root / "back").mkdir()
    (root / "back" / "metadata.yaml").write_text(
        yaml.safe_dump(
            {
                "model_name": "back",
                "version": "1",
                "file": "../ts/model.pt",
                "reference": {"path": "../onnx/model.onnx"},
                **IFACE,
            }
        )
    )
    gs = gate(root)
    for name in ("onnx", "back"):
        r = results(gs, name)["equivalence"]
        assert r and not r.skipped, str(r)
        assert r.figures["rel_l2"] < 1e-5
