"""The Open Inference Protocol codec: every refusal names the field and what was expected."""

import json

import numpy as np
import pytest

from model_checks.manifest.model import TensorSpec
from model_checks.serving.protocol import (
    ProtocolError,
    decode_request,
    decode_response,
    encode_request,
    encode_response,
    model_metadata,
    parse_json,
)

IFACE = [TensorSpec("image", "float32", ("batch", 3)), TensorSpec("mask", "int64", ("batch", 2))]


def good(**over):
    doc = {
        "inputs": [
            {"name": "image", "shape": [2, 3], "datatype": "FP32", "data": [0.0] * 6},
            {"name": "mask", "shape": [2, 2], "datatype": "INT64", "data": [1, 0, 1, 0]},
        ]
    }
    doc["inputs"][0].update(over)
    return doc


def refusal(doc, iface=IFACE):
    with pytest.raises(ProtocolError) as e:
        decode_request(doc, iface)
    assert 400 <= e.value.status < 500
    return str(e.value)


def test_a_good_request_round_trips():
    feeds, rid = decode_request({**good(), "id": "r1"}, IFACE)
    assert (
        rid == "r1"
        and feeds["image"].dtype == np.float32
        and feeds["image"].shape == (2, 3)
        and feeds["mask"].dtype == np.int64
    )
    again, _ = decode_request(json.loads(json.dumps(encode_request(feeds))), IFACE)
    assert all(np.array_equal(again[k], feeds[k]) for k in feeds)


@pytest.mark.parametrize(
    "doc, message",
    [
        ([1], "request body: expected a JSON object with 'inputs', got list"),
        ({"inputs": []}, "inputs: expected a non-empty list of tensors {name, shape, datatype, data}"),
        ({"inputs": [], "extra": 1}, "request body: unknown field(s) extra; expected id, parameters, inputs, outputs"),
        (
            {"inputs": [{"name": "image", "shape": [1, 3], "datatype": "FP32", "data": [0, 0, 0]}]},
            "inputs: missing mask; the model needs image, mask",
        ),
        (
            {"inputs": good()["inputs"] + [{"name": "x", "shape": [1], "datatype": "FP32", "data": [0]}]},
            "inputs[2] 'x': unexpected input; the model's inputs are image, mask",
        ),
        (good(datatype="FP16"), "inputs[0] 'image'.datatype: \"FP16\", expected FP32"),
        (
            good(shape=[2, 4], data=[0.0] * 8),
            "inputs[0] 'image'.shape[1]: 4, expected 3 (the model declares [batch, 3])",
        ),
        (
            good(shape=[6], data=[0.0] * 6),
            "inputs[0] 'image'.shape: [6] has rank 1; the model declares [batch, 3] (rank 2)",
        ),
        (
            good(shape=[3, 3], data=[0.0] * 9),
            "inputs[1] 'mask'.shape[0]: 2, but dim 'batch' is 3 in inputs[0] 'image'; every use of 'batch' must be the same size",
        ),
        (good(shape=[2, -3]), "inputs[0] 'image'.shape: expected a list of non-negative integers, got [2, -3]"),
        (good(data=[0.0] * 5), "inputs[0] 'image'.data: 5 value(s), but shape [2, 3] holds 6"),
        (good(data="abc"), "inputs[0] 'image'.data: expected a list of numbers (flattened, row-major), got str"),
        (
            good(data=[[0.0, 1.0], [2.0]]),
            "inputs[0] 'image'.data: not a regular list of numbers (ragged nesting or non-numeric values)",
        ),
        (
            good(data=[0.0] * 5 + [1e39]),
            "inputs[0] 'image'.data: values beyond the largest float32 (3.40282e+38) would become Inf",
        ),
    ],
)
def test_each_bad_request_names_its_field(doc, message):
    assert refusal(doc) == message


def test_non_finite_json_tokens_and_overflows_are_refused():
    with pytest.raises(ProtocolError, match=r"^request body: NaN is not a finite number"):
        parse_json(b'{"inputs": [NaN]}')
    assert (
        refusal(good(data=[0.0] * 5 + [float("inf")]))
        == "inputs[0] 'image'.data[5]: inf is not finite; inputs must be finite numbers"
    )
    with pytest.raises(ProtocolError, match=r"^request body is not valid JSON at line 1 column 2"):
        parse_json(b"{")


def test_integer_inputs_refuse_fractions_and_out_of_range_values():
    doc = good()
    doc["inputs"][1]["data"] = [1.5, 0, 1, 0]
    assert refusal(doc) == "inputs[1] 'mask'.data: datatype INT64 needs integers, got fractional numbers"
    iface = [TensorSpec("b", "uint8", (2,))]
    assert (
        refusal({"inputs": [{"name": "b", "shape": [2], "datatype": "UINT8", "data": [1, 300]}]}, iface)
        == "inputs[0] 'b'.data: values outside the range of uint8 [0, 255]"
    )


def test_a_non_finite_output_is_the_models_failure():
    with pytest.raises(ProtocolError) as e:
        encode_response("m", "1", {"y": np.array([1.0, np.nan], np.float32)})
    assert e.value.status == 500 and str(e.value) == "the model produced 1 non-finite value(s) in output 'y'"
    doc = encode_response("m", "1", {"y": np.array([[1.0, 2.0]], np.float32)}, "r")
    assert doc["id"] == "r" and decode_response(doc)["y"].shape == (1, 2)


def test_metadata_shows_dynamic_dims_as_minus_one():
    meta = model_metadata("m", "1.0", "onnx", IFACE, [TensorSpec("y", "float32", ("batch", 10))])
    assert meta == {
        "name": "m",
        "versions": ["1.0"],
        "platform": "onnx",
        "inputs": [
            {"name": "image", "datatype": "FP32", "shape": [-1, 3]},
            {"name": "mask", "datatype": "INT64", "shape": [-1, 2]},
        ],
        "outputs": [{"name": "y", "datatype": "FP32", "shape": [-1, 10]}],
    }


@pytest.mark.parametrize(
    "iface, entry, message",
    [
        (
            [TensorSpec("x", "float32", None)],
            {"name": "x", "shape": [0, 10**30], "datatype": "FP32", "data": []},
            "inputs[0] 'x'.shape: at most 32 dims of at most 2147483647 each, got [0, 1000000000000000000000000000000]",
        ),
        (
            [TensorSpec("x", "float32", None)],
            {"name": "x", "shape": [1] * 33, "datatype": "FP32", "data": [1.0]},
            "inputs[0] 'x'.shape: at most 32 dims of at most 2147483647 each",
        ),
        (
            IFACE[:1],
            {"name": "image", "shape": [1, 3], "datatype": "FP32", "data": [10**400, 0.0, 0.0]},
            "'image'.data: a number beyond the range of float64; inputs must be finite",
        ),
    ],
)
def test_a_request_past_what_any_tensor_holds_is_the_requests_fault_not_the_models(iface, entry, message):
    """Before, a dim of 10**30 in an empty tensor and an integer of 10**400 were answered 500 'model ...: infer failed
    in the onnx worker' (numpy's reshape and float conversion raised there), blaming the model."""
    assert message in refusal({"inputs": [entry]}, iface)
