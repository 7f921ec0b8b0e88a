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


def _unnamed_batch(model):  # type: ignore[no-untyped-def]
    """The model with its batch dim left unnamed, as scikit-learn's converters and OpenVINO IRs leave it."""
    for v in (*model.graph.input, *model.graph.output):
        v.type.tensor_type.shape.dim[0].ClearField("dim_param")
    return model


def test_a_declared_batch_the_model_leaves_unnamed_is_checked_as_the_batch(tmp_path):
    """It read "'batch' is no dimension of any input (named dims: ?)": the gate takes an unnamed dynamic leading dim
    for the batch everywhere else, and so it is checked here under the declared name; one that mixes its samples
    still fails."""
    A.onnx_artifact(tmp_path / "lin", _unnamed_batch(M.linear()), name="lin", limits={"dynamic_axes": ["batch"]})
    A.onnx_artifact(tmp_path / "mix", _unnamed_batch(M.batch_mixing()), name="mix", limits={"dynamic_axes": ["batch"]})
    r = check(tmp_path, "lin")
    assert r, str(r)
    r = check(tmp_path, "mix")
    assert not r and "dynamic_axes: sample 0 of a 'batch'=3 run differs from the same sample run alone" in str(r)
    assert "the batch is '?' (the first dynamic leading dim, of input 'input'" in str(r)


def test_an_axis_that_is_no_dim_names_the_dims_left_unnamed_and_how_to_name_them(tmp_path):
    A.onnx_artifact(tmp_path / "lin", _unnamed_batch(M.linear()), name="lin", limits={"dynamic_axes": ["sequence"]})
    r = check(tmp_path, "lin")
    assert not r
    assert (
        "dynamic_axes: 'sequence' is no dimension of any input (named dims: none); the model leaves 'input' axis 0 "
        "dynamic without a name: declare it in inputs[].shape (e.g. shape: ['sequence', ...]) to have it checked as "
        "'sequence' [limits.dynamic_axes from metadata.yaml]"
    ) in str(r)


def test_a_sample_alone_is_named_as_such_not_as_a_reference(tmp_path):
    """output = (x - mean) / sum of squares over the batch: run alone, a sample divides zero by zero."""
    from onnx import TensorProto, helper

    graph = helper.make_graph(
        [
            helper.make_node("ReduceMean", ["input"], ["m"], axes=[0], keepdims=1),
            helper.make_node("Sub", ["input", "m"], ["d"]),
            helper.make_node("ReduceSumSquare", ["d"], ["v"], axes=[0], keepdims=1),
            helper.make_node("Div", ["d", "v"], ["output"]),
        ],
        "normalized_over_the_batch",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("output", TensorProto.FLOAT, ["batch", 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    A.onnx_artifact(tmp_path / "norm", model, name="norm", limits={"dynamic_axes": ["batch"]})
    r = check(tmp_path, "norm")
    assert not r and "in output 'output': the same sample run alone has 4 NaN and 0 Inf values" in str(r), str(r)
    assert "the reference" not in str(r)
