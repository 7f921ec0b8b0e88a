"""Tensors cross the worker's pipe as a binary frame (no pickled array), everything else pickled as before."""

from __future__ import annotations

import pickle

import numpy as np
import pytest

from model_checks.isolation import frames

ARRAYS = {
    "f32": np.arange(12, dtype=np.float32).reshape(3, 4),
    "f16": np.linspace(-1, 1, 5).astype(np.float16),
    "i64": np.array([[1, -2]], dtype=np.int64),
    "u8": np.arange(7, dtype=np.uint8),
    "bool": np.array([True, False, True]),
    "scalar": np.array(3.5, dtype=np.float64),
    "empty": np.zeros((0, 4), dtype=np.float32),
    "strided": np.arange(20, dtype=np.int32).reshape(4, 5)[:, ::2],  # not contiguous: sent as a contiguous copy
}


def _same(a: dict, b: dict) -> None:
    assert list(a) == list(b)
    for k in a:
        assert b[k].dtype == a[k].dtype and b[k].shape == a[k].shape, k
        np.testing.assert_array_equal(b[k], a[k])


def test_feeds_and_outputs_round_trip_as_a_frame_without_a_pickled_array() -> None:
    message = frames.encode_request("infer", (7, ARRAYS))
    assert message.startswith(frames.MAGIC)
    assert b"numpy" not in message  # no array was pickled (a pickled array names numpy's reconstructor)
    op, (handle, feeds) = frames.decode_request(message)
    assert (op, handle) == ("infer", 7)
    _same(ARRAYS, feeds)
    status, outs, peak = frames.decode_reply(frames.encode_reply("ok", [ARRAYS, {"y": ARRAYS["f32"]}], 123))
    assert status == "ok" and isinstance(outs, list) and len(outs) == 2 and peak == 123
    _same(ARRAYS, outs[0])
    outs[1]["y"][0, 0] = -1  # the receiver owns its arrays: a runner may write into its feeds
    assert ARRAYS["f32"][0, 0] == 0


def test_anything_else_is_pickled_as_before() -> None:
    objects = {"s": np.array(["a"], dtype=object)}
    for op, args in (("load", ("m.onnx", "onnx", None)), ("infer", (1, objects)), ("close", (3,))):
        message = frames.encode_request(op, args)
        assert not message.startswith(frames.MAGIC)
        assert pickle.loads(message)[0] == op
    status, value, peak = frames.decode_reply(frames.encode_reply("err", ValueError("x"), 5))
    assert status == "err" and isinstance(value, ValueError) and peak == 5


def test_a_frame_whose_header_does_not_account_for_its_bytes_is_refused() -> None:
    message = frames.encode_reply("ok", {"y": np.ones(4, np.float32)})
    with pytest.raises(frames.UnreadableAnswer, match="a tensor frame of 20 bytes whose header accounts for 16"):
        frames.decode_reply(message + b"\0" * 4)
    with pytest.raises(frames.UnreadableAnswer, match="ValueError"):
        frames.decode_reply(message[:-4])  # too short for the header's arrays


def test_a_frame_header_with_a_negative_dimension_is_refused() -> None:
    # A negative count would read "the rest of the buffer" in numpy: the header's shapes are checked, not trusted.
    header = pickle.dumps((("ok", 0), False, [[("y", "<f4", (-1,))]]))
    message = frames.MAGIC + frames._LEN.pack(len(header)) + header + b"\0" * 16
    with pytest.raises(frames.UnreadableAnswer, match=r"a tensor frame whose header gives 'y' the shape \(-1,\)"):
        frames.decode_reply(message)


def test_tagged_outputs_travel_as_one_frame_with_their_tags_in_its_header() -> None:
    tagged = frames.Tagged(
        [ARRAYS, {}, {"y": ARRAYS["i64"]}], [("ok", "r1", ("f32",)), ("refused", 400, "no"), ("ok", None, ())]
    )
    message = frames.encode_reply("ok", tagged, 9)
    assert message.startswith(frames.MAGIC) and b"numpy" not in message
    status, value, peak = frames.decode_reply(message)
    assert (status, peak) == ("ok", 9) and isinstance(value, frames.Tagged) and value.tags == tagged.tags
    _same(ARRAYS, value.tensors[0])
    assert value.tensors[1] == {} and list(value.tensors[2]) == ["y"]
    strings = frames.Tagged([{"s": np.array(["a"], dtype=object)}], [("ok", None, ())])
    message = frames.encode_reply("ok", strings, 9)  # arrays a frame does not carry: pickled, and read back the same
    assert not message.startswith(frames.MAGIC)
    _, value, _ = frames.decode_reply(message)
    assert isinstance(value, frames.Tagged) and value.tags == strings.tags and value.tensors[0]["s"][0] == "a"
    header = pickle.dumps((("ok", 0, [("ok", None, ())], "extra"), True, [[]]))  # a header with more than one tag list
    with pytest.raises(frames.UnreadableAnswer, match="it is not a well-formed answer"):
        frames.decode_reply(frames.MAGIC + frames._LEN.pack(len(header)) + header)
