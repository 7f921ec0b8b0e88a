from fixtures import artifacts as A
from fixtures import onnx_models as M
from model_checks.core.session import GateSession


def check(root, name, check="limits"):
    gs = GateSession([root])
    return gs.run_check(check, next(a for a in gs.artifacts if a.id.startswith(name)))


def test_a_batch_that_mixes_samples_is_not_dynamic(tmp_path):
    A.onnx_artifact(tmp_path / "mix", M.batch_mixing(), name="mix", limits={"dynamic_axes": ["batch"]})
    r = check(tmp_path, "mix")
    assert not r
    assert "dynamic_axes: sample 0 of a 'batch'=3 run differs from the same sample run alone in output 'output'" in str(
        r
    )


def test_a_batch_fixed_in_the_graph_is_refused_at_another_size(tmp_path):
    A.onnx_artifact(
        tmp_path / "fixed",
        M.linear(batch=1),
        name="fixed",
        limits={"dynamic_axes": ["batch"]},
        inputs=[{"name": "input", "dtype": "float32", "shape": ["batch", 4]}],
    )
    r = check(tmp_path, "fixed")
    assert not r and "dynamic_axes: 'batch' of size 3 is refused by the model" in str(r)


def test_a_really_dynamic_batch_passes(tmp_path):
    A.onnx_artifact(tmp_path / "lin", M.linear(), name="lin", limits={"dynamic_axes": ["batch"]})
    r = check(tmp_path, "lin")
    assert r, str(r)


def test_size_ratio_against_the_reference(tmp_path):
    A.pair(
        tmp_path,
        variant_model=M.linear(n_in=64, n_out=64),
        reference_model=M.linear(n_in=64, n_out=64, dtype="float16"),
        limits={"max_size_ratio": 1.2},
    )
    r = check(tmp_path, "variant")
    assert not r and "max_size_ratio: the model is 1.9" in str(r) and "times its reference's size" in str(r)


def test_size_ratio_needs_a_model_reference(tmp_path):
    A.onnx_artifact(tmp_path / "m", name="m", limits={"max_size_ratio": 1.0}, reference={"path": "rec.npz"})
    r = check(tmp_path, "m")
    assert not r and "max_size_ratio: needs a model as reference.path" in str(r)
