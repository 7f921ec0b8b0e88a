"""ONNX test data read without onnx (`testdata._plain_tensor`): for every file it takes, the same name and values
as onnx's reader (numpy_helper.to_array), and for every other file None, so that onnx reads it and says what it
says. Generated tensors of every fixed-size type, then mutated: truncated, bytes flipped, fields added."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from onnx import helper, numpy_helper

from model_checks.backends.onnx import testdata
from model_checks.core.errors import DataFileError

DTYPES = [np.float32, np.uint8, np.int8, np.uint16, np.int16, np.int32, np.int64, np.bool_, np.float16]
DTYPES += [np.float64, np.uint32, np.uint64]


def _onnx_reads(buf: bytes):  # type: ignore[no-untyped-def]
    t = onnx.TensorProto()
    t.ParseFromString(buf)
    if t.data_location == onnx.TensorProto.EXTERNAL or len(t.external_data):
        raise ValueError("external")
    return t.name, numpy_helper.to_array(t)


def _same(plain, buf: bytes) -> None:  # type: ignore[no-untyped-def]
    name, values = _onnx_reads(buf)  # onnx reads whatever the plain reader takes
    assert plain[0] == name
    assert plain[1].dtype == values.dtype and plain[1].shape == values.shape
    assert plain[1].tobytes() == values.tobytes()
    assert not plain[1].flags.writeable and not values.flags.writeable


@st.composite
def tensors(draw):  # type: ignore[no-untyped-def]
    dtype = draw(st.sampled_from(DTYPES))
    shape = draw(st.lists(st.integers(0, 4), max_size=4))
    raw = draw(
        st.binary(
            min_size=int(np.prod(shape)) * np.dtype(dtype).itemsize,
            max_size=int(np.prod(shape)) * np.dtype(dtype).itemsize,
        )
    )
    a = (
        np.frombuffer(raw, dtype=dtype).reshape(shape)
        if dtype is not np.bool_
        else np.frombuffer(raw, np.uint8).astype(bool).reshape(shape)
    )
    name = draw(st.text(max_size=8))
    return numpy_helper.from_array(np.ascontiguousarray(a), name).SerializeToString()


@settings(max_examples=300, deadline=None)
@given(tensors())
def test_every_generated_tensor_reads_as_onnx_reads_it(buf: bytes) -> None:
    plain = testdata._plain_tensor(buf)
    assert plain is not None
    _same(plain, buf)


@settings(max_examples=600, deadline=None)
@given(tensors(), st.data())
def test_a_mutated_file_reads_as_onnx_reads_it_or_goes_to_onnx(buf: bytes, data: st.DataObject) -> None:
    how = data.draw(st.sampled_from(["truncate", "flip", "append", "prepend"]))
    if how == "truncate":
        buf = buf[: data.draw(st.integers(0, len(buf)))]
    elif how == "flip" and buf:
        i = data.draw(st.integers(0, len(buf) - 1))
        buf = buf[:i] + bytes([data.draw(st.integers(0, 255))]) + buf[i + 1 :]
    else:
        extra = data.draw(st.binary(max_size=12))
        buf = buf + extra if how == "append" else extra + buf
    plain = testdata._plain_tensor(buf)
    if plain is not None:
        _same(plain, buf)


@pytest.mark.parametrize(
    "tensor",
    [
        onnx.helper.make_tensor("f", onnx.TensorProto.FLOAT, [2], [1.0, 2.0]),  # float_data, not raw
        onnx.helper.make_tensor("s", onnx.TensorProto.STRING, [1], [b"x"]),
        onnx.helper.make_tensor("bf", onnx.TensorProto.BFLOAT16, [1], b"\x00\x00", raw=True),
    ],
    ids=["float_data", "string", "bfloat16"],
)
def test_what_is_not_plain_goes_to_onnx(tensor: onnx.TensorProto, tmp_path: Path) -> None:
    buf = tensor.SerializeToString()
    assert testdata._plain_tensor(buf) is None
    (tmp_path / "input_0.pb").write_bytes(buf)
    name, values = testdata.read_tensor(tmp_path / "input_0.pb", "k")  # onnx reads it, as before
    assert name == tensor.name and values.tobytes() == numpy_helper.to_array(tensor).tobytes()


def test_external_data_and_lying_dims_are_refused_with_onnxs_messages(tmp_path: Path) -> None:
    t = numpy_helper.from_array(np.zeros(4, np.float32), "x")
    t.data_location = onnx.TensorProto.EXTERNAL
    (tmp_path / "input_0.pb").write_bytes(t.SerializeToString())
    with pytest.raises(DataFileError) as e:
        testdata.read_tensor(tmp_path / "input_0.pb", "k")
    assert str(e.value) == "k: input_0.pb keeps its values in an external file; test data must hold its values itself"
    t = numpy_helper.from_array(np.zeros(4, np.float32), "x")
    t.dims[:] = [1 << 20, 1 << 20]
    (tmp_path / "input_1.pb").write_bytes(t.SerializeToString())
    with pytest.raises(DataFileError) as e:
        testdata.read_tensor(tmp_path / "input_1.pb", "k")
    assert str(e.value).startswith("k: input_1.pb declares dims [1048576, 1048576] (1.1e+12 values) but holds ")


def test_the_gates_process_reads_plain_test_data_without_importing_onnx(tmp_path: Path) -> None:
    (tmp_path / "input_0.pb").write_bytes(numpy_helper.from_array(np.ones((2, 3), np.float32), "x").SerializeToString())
    code = (
        "import sys; from pathlib import Path; from model_checks.backends.onnx.testdata import read_tensor; "
        f"n, a = read_tensor(Path({str(tmp_path / 'input_0.pb')!r}), 'k'); "
        "assert n == 'x' and a.shape == (2, 3) and a.sum() == 6; print('onnx' in sys.modules)"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=os.environ, check=True)
    assert out.stdout.strip() == "False"


def _strings(n: int) -> onnx.TensorProto:
    return helper.make_tensor("s", onnx.TensorProto.STRING, [n], [b""] * n)


def test_values_in_typed_fields_that_would_swell_in_memory_are_refused_before_they_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Empty strings take 2 bytes of the file each and about 70 in memory once protobuf and numpy hold them (a
    stranger's 64 MiB file: 1.8 GB in the gate's process, which has no memory limit). The file's bytes times what
    its declared type can swell to are capped before onnx parses anything; float_data swells little."""
    monkeypatch.setattr(testdata, "MAX_DECODED_BYTES", 100_000)
    (tmp_path / "output_0.pb").write_bytes(_strings(20_000).SerializeToString())  # 40 kB on disk
    with pytest.raises(DataFileError) as e:
        testdata.read_tensor(tmp_path / "output_0.pb", "k")
    assert str(e.value).startswith("k: output_0.pb keeps 40") and (
        "bytes of values in typed fields rather than raw_data (data type 8), which could take 0.0 GiB of memory to "
        "read, over the cap of 9.31323e-05 GiB; write the tensor with raw_data (onnx.numpy_helper.from_array does)"
    ) in str(e.value)
    floats = helper.make_tensor("f", onnx.TensorProto.FLOAT, [5_000], np.ones(5_000, np.float32))  # float_data
    (tmp_path / "input_0.pb").write_bytes(floats.SerializeToString())  # 20 kB: 3 x fits
    assert testdata.read_tensor(tmp_path / "input_0.pb", "k")[1].shape == (5_000,)
    assert testdata._declared_type(_strings(3).SerializeToString()) == onnx.TensorProto.STRING


def test_an_artifacts_test_data_is_held_to_a_total(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from model_checks.core import references

    monkeypatch.setattr(references, "MAX_TESTDATA_BYTES", 1000)
    for k in range(3):
        s = tmp_path / f"test_data_set_{k}"
        s.mkdir()
        (s / "input_0.pb").write_bytes(numpy_helper.from_array(np.zeros(100, np.float32), "x").SerializeToString())
        (s / "output_0.pb").write_bytes(_strings(2).SerializeToString())
    with pytest.raises(DataFileError) as e:
        references.read_testdata(tmp_path, "k")
    assert str(e.value) == (
        "k: the test data takes over 9.31323e-07 GiB in memory by test_data_set_1 (2 of 3 sets read); the gate holds "
        "an artifact's test data whole: keep fewer or smaller sets"
    )
