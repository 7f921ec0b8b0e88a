"""Quantized inputs and outputs (core/quantio): stored = round(x / scale) + zero point, clipped; the notes a
failed equivalence shows for a tensor whose parameters cannot hold its values. No framework needed."""

import numpy as np

from model_checks.core.quantio import clipped_share, dequantize, io_note, quantize, representable, saturation_lines
from model_checks.manifest.model import QuantParams, TensorSpec

Q8 = QuantParams(scale=1 / 255, zero_point=-128, dtype="int8")
U8 = QuantParams(scale=0.5, zero_point=10, dtype="uint8")


def test_quantize_rounds_offsets_and_clips_to_the_stored_type():
    x = np.array([0.0, 1 / 255, 0.5, 1.0, 2.0, -1.0], np.float32)
    assert quantize(x, Q8).tolist() == [-128, -127, 0, 127, 127, -128]
    assert quantize(np.array([0.0, 0.74, 0.76, 500.0, -6.0]), U8).tolist() == [10, 11, 12, 255, 0]
    assert quantize(x, Q8).dtype == np.int8


def test_dequantize_is_the_inverse_within_half_a_step():
    x = np.random.default_rng(0).uniform(0, 1, 1000).astype(np.float32)
    back = dequantize(quantize(x, Q8), Q8)
    assert back.dtype == np.float32 and np.max(np.abs(back - x)) <= Q8.scale / 2 + 1e-7
    assert representable(U8) == (-5.0, 122.5)


def test_clipped_share_counts_values_beyond_half_a_step_of_the_ends():
    assert clipped_share(np.array([0.0, 1.0, 1.001, 1.01, -0.01]), Q8) == 0.4
    assert clipped_share(np.array([]), Q8) == 0.0


def test_the_notes_name_each_tensor_and_its_parameters():
    inp = TensorSpec("image", "float32", quantization=Q8)
    out = TensorSpec("logits", "float32", quantization=U8)
    assert io_note([TensorSpec("x", "float32")], []) is None
    assert io_note([inp], [out]) == (
        "quantized I/O: input 'image' quantized (int8, scale 0.00392157, zero point -128); "
        "output 'logits' dequantized (uint8, scale 0.5, zero point 10); compared in float"
    )
    fed, expected = {"image": np.full(10, 3.0, np.float32)}, {"logits": np.full(4, 200.0, np.float32)}
    assert saturation_lines(fed, expected, [inp], [out]) == [
        "input 'image': 100% of the values fed lie outside [0, 1], all that int8, scale 0.00392157, zero point -128 "
        "can hold; they clip when quantized: the tensor's quantization parameters do not fit its inputs "
        "(recalibrate, or check the converter's representative dataset)",
        "output 'logits': 100% of the reference's values lie outside [-5, 122.5], all that uint8, scale 0.5, "
        "zero point 10 can hold: the tensor's quantization parameters do not fit its outputs",
    ]
    assert saturation_lines({"image": np.full(10, 0.5, np.float32)}, None, [inp], [out]) == []
