"""A worker's answer is read as untrusted data. The worker runs a stranger's model; one that takes over its runtime
holds the worker, and a pickle names functions that are called while it is read. So an answer may name only the
classes answers are made of (frames.ANSWER_CLASSES), and anything else, or an answer that is not well formed, is
refused unread: the request fails as `answer refused` and the worker is killed."""

from __future__ import annotations

import dataclasses
import pickle
import re
import struct
from collections import Counter
from pathlib import Path

import numpy as np
import pytest

from fixtures import crashing, onnx_models
from model_checks.core.errors import AnswerRefusedError
from model_checks.core.pool import ModelPool
from model_checks.isolation import frames
from model_checks.isolation.limits import Limits
from model_checks.isolation.worker import ErrorInfo

LIMITS = Limits(memory_mb=2048, timeout_s=60)
FEEDS = {"input": np.ones((2, 4), np.float32)}


@pytest.fixture
def pool():  # type: ignore[no-untyped-def]
    p = ModelPool(isolation=LIMITS)
    yield p
    p.close()


@pytest.mark.parametrize("forge", [crashing.forged_answer, crashing.forged_tensors], ids=["pickled", "in-a-frame"])
def test_an_answer_that_names_a_function_to_call_is_refused_unread_and_its_worker_killed(
    pool: ModelPool, tmp_path: Path, forge
) -> None:
    runner = pool.runner(onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx"), "onnx", tmp_path)
    assert pool.workers is not None
    before = pool.workers.worker("onnx").generation
    canary = tmp_path / "written-by-the-answer"
    with pytest.raises(AnswerRefusedError) as info:
        pool.workers.call("onnx", forge, str(canary))
    assert not canary.exists()  # nothing in the answer ran here
    assert str(info.value) == (
        f"{forge.__name__}: the onnx worker's answer to call was refused: it names io.open, which no answer "
        "of a worker holds. A worker answers with data only; this one may have been taken over by the model "
        "through its runtime. The worker was killed; the session goes on with a fresh one"
    )
    assert runner.infer(FEEDS)["logits"].shape == (2, 3)  # loaded again in a fresh worker
    assert pool.workers.worker("onnx").generation == before + 1


def _frame(head: object) -> bytes:
    header = pickle.dumps(head, pickle.HIGHEST_PROTOCOL)
    return frames.MAGIC + struct.pack("<I", len(header)) + header


@pytest.mark.parametrize(
    "message, why",
    [
        (b"\x80\x05garbage", "it is not a well-formed answer (UnpicklingError"),
        (pickle.dumps(("ok", 1, 0))[:-3], "it is not a well-formed answer ("),
        (pickle.dumps(42), "it is not a well-formed answer (TypeError"),
        (pickle.dumps(("done", 1, 0)), "it is not a well-formed answer (status 'done', peak int)"),
        (pickle.dumps(("ok", 1, "0")), "it is not a well-formed answer (status 'ok', peak str)"),
        (_frame((("ok", 0), False, [[("y", "<f4", (1 << 40,))]])), "it is not a well-formed answer (ValueError"),
        (_frame((("ok", 0), False, [[("y", "|O", (1,))]])), "it is not a well-formed answer ("),
        (pickle.dumps(("ok", crashing._Calls(print, ("x",)), 0)), "it names builtins.print, which no answer"),
    ],
    ids=["garbage", "truncated", "not-a-tuple", "bad-status", "bad-peak", "huge-shape", "object", "call"],
)
def test_an_answer_that_is_not_well_formed_is_unreadable_not_an_internal_error(message: bytes, why: str) -> None:
    with pytest.raises(frames.UnreadableAnswer) as info:
        frames.decode_reply(message)
    assert str(info.value).startswith(why), str(info.value)


def test_every_kind_of_answer_the_gate_gets_is_read() -> None:
    """What the worker's operations and the functions checks run there answer with, through decode_reply."""
    from model_checks.backends.base import ModelFacts
    from model_checks.backends.onnx.int8 import Simulation
    from model_checks.localize.report import Localization, Row, Sqnr
    from model_checks.manifest.model import Limit, QuantParams, TensorSpec
    from model_checks.tfmot.tflite import TFLiteReport

    spec = TensorSpec("x", "int8", ("batch", 4), quantization=QuantParams(0.5, 3, "int8"))
    answers = [
        (1, (spec,), (spec,), "onnxruntime 1.31.1 CPUExecutionProvider", 1024),  # a load
        ModelFacts("onnx", "fp32", "weights", (spec,), (spec,), Counter({"Conv": 2}), 1024, 17, files=(Path("m"),)),
        ErrorInfo("builtins", "ValueError", "bad", False),
        Localization("c", (Row("t", "r", "n", "Conv", 0.1, 0.05),), (), 0, sqnr=(Sqnr("t", "weight", 30.0),)),
        Simulation({"y": np.ones(3, np.float32)}, {}, {"k": 1}, {"k": 2}, {}),
        TFLiteReport(8, "samples", "y", {"tflite": {"rel_l2": 0.01}}, {"rel_l2": Limit(0.02, "metadata.yaml")}),
        {"labels": np.array(["cat", "dog"]), "n": np.int64(3), "p": np.float32(0.5), "c": complex(1, 2)},
        [{"y": np.ones((2, 3), np.float32)}, {"y": np.zeros((2, 3), np.float32)}],
        (ValueError("shown as found"), {1, 2}, frozenset({3}), Path("/tmp/x"), bytearray(b"ab")),
    ]
    for value in answers:
        status, got, peak = frames.decode_reply(frames.encode_reply("ok", value, 7))
        assert (status, peak) == ("ok", 7)
        assert pickle.dumps(got) == pickle.dumps(value) or repr(got) == repr(value)


def test_every_class_an_answer_may_name_only_holds_data() -> None:
    """Reading an answer calls what it names: each class allowed is a dataclass that only stores its fields (no
    __post_init__, __setstate__, __reduce__ or __new__ of its own), or a constructor of the standard library or
    numpy that builds a value and nothing else. A class added to ANSWER_CLASSES must hold to this."""
    import importlib

    numpy_builders = {"_reconstruct", "scalar", "_frombuffer"}  # an array or a scalar from its bytes and dtype
    from_library = {(m, n) for m, n in frames.ANSWER_CLASSES if not m.startswith("model_checks.")}
    for module, name in sorted(from_library):  # a class (a function such as open or getattr could do anything)
        found = getattr(importlib.import_module(module), name)
        assert module.split(".")[0] in ("builtins", "collections", "pathlib", "numpy"), (module, name)
        assert (isinstance(found, type) and found not in (type, object)) or name in numpy_builders, (module, name)
    for module, name in sorted(frames.ANSWER_CLASSES - from_library):
        assert module.startswith("model_checks."), (module, name)
        mod = importlib.import_module(module)
        cls = getattr(mod, name)
        assert dataclasses.is_dataclass(cls), (module, name)
        for method in ("__post_init__", "__setstate__", "__reduce__", "__reduce_ex__", "__new__", "__getattr__"):
            assert method not in vars(cls), f"{module}.{name} defines {method}"
        for f in dataclasses.fields(cls):  # a data class a field holds comes back with it: it is allowed too
            for word in re.findall(r"\b[A-Z]\w*", str(f.type)):
                held = getattr(mod, word, None)
                if dataclasses.is_dataclass(held):
                    assert (held.__module__, held.__qualname__) in frames.ANSWER_CLASSES, (name, f.name, word)


def test_an_answer_longer_than_the_workers_memory_limit_is_refused_before_it_is_read(
    pool: ModelPool, tmp_path: Path
) -> None:
    """A legitimate answer is built in the worker's memory, so none outgrows its limit: a length beyond it is
    refused from the length alone (nothing allocated for it)."""
    runner = pool.runner(onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx"), "onnx", tmp_path)
    with pytest.raises(AnswerRefusedError) as info:
        pool.workers.call("onnx", crashing.claim_huge_answer)
    assert str(info.value) == (
        "claim_huge_answer: the onnx worker's answer to call was refused: it claims to be larger than the "
        "worker's memory limit of 2048 MiB. A worker answers with data only; this one may have been taken over by "
        "the model through its runtime. The worker was killed; the session goes on with a fresh one"
    )
    assert runner.infer(FEEDS)["logits"].shape == (2, 3)


@pytest.mark.parametrize(
    "value, why",
    [
        ({"logits": [[0.0, 0.0, 0.0]] * 2}, "outputs that are not arrays by name"),
        ([{"logits": np.zeros((2, 3), np.float32)}] * 3, "3 sets of outputs for 1 sets of feeds"),
        ("ok", "outputs that are not arrays by name"),
    ],
    ids=["lists", "too-many", "text"],
)
def test_an_answer_that_is_not_what_its_operation_answers_is_refused(
    pool: ModelPool, tmp_path: Path, value, why
) -> None:
    """Read as data, an answer may still not be what the code that asked relies on (outputs that are not arrays, a
    load that is not a model's interface): refused too, rather than an internal error of the check that asked."""
    runner = pool.runner(onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx"), "onnx", tmp_path)
    assert runner.infer(FEEDS)["logits"].shape == (2, 3)
    pool.workers.call("onnx", crashing.answer_infer_with, value)
    with pytest.raises(AnswerRefusedError) as info:
        runner.infer({"input": np.full((2, 4), 2.0, np.float32)})  # other feeds: the pool has the first ones' outputs
    assert str(info.value).startswith(
        f"m.onnx: the onnx worker's answer to infer was refused: it is not what infer answers: {why}. "
    )
    with pytest.raises(AnswerRefusedError, match=r"\[not retried: this model already did this earlier"):
        runner.infer({"input": np.full((2, 4), 3.0, np.float32)})  # as after a crash: the model is not asked again
    other = pool.runner(onnx_models.save(onnx_models.linear(), tmp_path / "other.onnx"), "onnx", tmp_path)
    assert other.infer(FEEDS)["logits"].shape == (2, 3)  # another model, in a fresh worker


def test_each_operations_answer_is_held_to_its_shape() -> None:
    from model_checks.isolation.workers import _not_an_answer
    from model_checks.manifest.model import TensorSpec

    spec = TensorSpec("x", "float32", (1, 4))
    assert _not_an_answer("load", "ok", (1, (spec,), (spec,), "onnxruntime", 10), 1) is None
    assert _not_an_answer("load", "ok", (1, (spec,), ("x",), "onnxruntime", 10), 1) == (
        "it is not what load answers: not a loaded model's (handle, inputs, outputs, description, bytes)"
    )
    assert _not_an_answer("load", "ok", (1, (spec,), (spec,), "onnxruntime"), 1) is not None
    assert _not_an_answer("facts", "ok", {"ops": 3}, 1) == "it is not what facts answers: a dict, not the model's facts"
    assert _not_an_answer("validate", "ok", ["a problem"], 1) is None
    assert _not_an_answer("validate", "ok", "a problem", 1) == (
        "it is not what validate answers: not a list of problems in words"
    )
    assert _not_an_answer("infer", "ok", [{"y": np.ones(1)}, {"y": np.ones(1)}], 2) is None
    assert _not_an_answer("call", "ok", object(), 1) is None  # whatever its function returns: its caller checks
    assert _not_an_answer("load", "err", ErrorInfo("builtins", "ValueError", "bad", False), 1) is None
    assert _not_an_answer("load", "err", ErrorInfo("builtins", "ValueError", 3, False), 1) == (
        "its error is not the worker's ErrorInfo of text and a flag (a ErrorInfo)"
    )
    assert (
        _not_an_answer("load", "err", "bad", 1) == "its error is not the worker's ErrorInfo of text and a flag (a str)"
    )
