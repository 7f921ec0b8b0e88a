"""An isolated service's requests are read in the model's worker: the client's JSON and binary tensors are parsed and
checked there (where the model's untrusted input already is), the service only frames the answer. Refusals read the
same as in process, requests waiting together keep their own answers, and the worker's word on a request (its id,
its binary outputs, a refusal) is held to its shape like any answer of a worker."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import threading

import numpy as np
import pytest

from fixtures import artifacts as A
from fixtures import crashing
from fixtures.serving import ready_client
from model_checks.core.errors import ProtocolError
from model_checks.core.pool import ModelPool
from model_checks.isolation.frames import Tagged
from model_checks.isolation.limits import Limits
from model_checks.isolation.worker import TAG_TEXT_CHARS
from model_checks.isolation.workers import Worker
from model_checks.manifest.model import TensorSpec
from model_checks.serving import protocol, service
from model_checks.serving.protocol import HEADER_LENGTH, encode_binary_request, encode_request
from model_checks.serving.service import ServedModel, open_artifact

IO = {
    "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 4]}],
    "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 3]}],
}
INFER = "/v2/models/tiny/infer"
X = np.linspace(-1, 1, 8, dtype=np.float32).reshape(2, 4)
BAD = [
    (b'{"inputs": [', None),
    (b'{"inputs": [{"name": "input", "shape": [1, 5], "datatype": "FP32", "data": [0, 0, 0, 0, 0]}]}', None),
    (b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, NaN]}]}', None),
    (b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, 1]}], "id": 7}', None),
    (b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, 1]}]}', "x9"),
    (
        b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "parameters": {"binary_data_size": 8}}]}',
        "0",
    ),
]
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture
def tiny(tmp_path):
    return A.onnx_artifact(tmp_path / "arts" / "tiny", **IO)


@pytest.fixture
def isolated(tiny):
    with ModelPool(isolation=Limits(timeout_s=30), share_outputs=False) as pool, ready_client(tiny, pool) as c:
        yield c


def post(client, body: bytes, header_length: str | None = None):
    return client.post(INFER, content=body, headers={HEADER_LENGTH: header_length} if header_length else {})


def test_the_service_process_parses_no_request_of_an_isolated_model(isolated, monkeypatch):
    as_computed = isolated.model.runner.infer({"input": X})["logits"]

    def not_here(*args, **kwargs):
        raise AssertionError("a request was read in the service's process")

    for name in ("read_request", "parse_json", "decode_request"):
        monkeypatch.setattr(protocol, name, not_here)
    monkeypatch.setattr(service, "read_request", not_here)
    r = isolated.post(INFER, json={**encode_request({"input": X}), "id": "r1"})
    assert r.status_code == 200 and r.json()["id"] == "r1"
    assert np.array_equal(np.asarray(r.json()["outputs"][0]["data"], np.float32).reshape(2, 3), as_computed)
    body, n = encode_binary_request({"input": X})
    r = post(isolated, body, str(n))
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    assert r.content[int(r.headers[HEADER_LENGTH]) :] == as_computed.astype("<f4").tobytes()


@pytest.mark.parametrize("body, header_length", BAD, ids=["json", "shape", "nan", "id", "header", "binary"])
def test_a_request_refused_in_the_worker_gets_the_same_answer_as_in_process(tiny, isolated, body, header_length):
    with ModelPool() as pool, ready_client(tiny, pool) as in_process:
        expected = post(in_process, body, header_length)
    assert expected.status_code == 400 and expected.json()["error"]
    got = post(isolated, body, header_length)
    assert (got.status_code, got.json()) == (expected.status_code, expected.json())
    assert isolated.post(INFER, json=encode_request({"input": X})).status_code == 200  # the worker serves on


def test_requests_waiting_together_are_refused_or_answered_each_on_its_own(tiny, monkeypatch):
    sends = []
    send = Worker.send_request
    monkeypatch.setattr(Worker, "send_request", lambda self, *a: sends.append(a) or send(self, *a))
    good = [json.dumps(encode_request({"input": X * k}, f"r{k}")).encode() for k in range(3)]
    bodies = [good[0], good[1], BAD[1][0], good[2], BAD[0][0]]
    with ModelPool(isolation=Limits(timeout_s=30), share_outputs=False) as pool:
        model = ServedModel(open_artifact(tiny), pool)
        model.load()
        expected = [model.runner.infer({"input": X * k})["logits"] for k in range(3)]

        async def all_at_once():
            return await asyncio.gather(*(model.answer(b) for b in bodies), return_exceptions=True)

        pid = model.runner.workers.worker("onnx").proc.pid
        os.kill(pid, signal.SIGSTOP)  # the first is in the worker, the other four wait for it and go together
        threading.Timer(0.5, os.kill, (pid, signal.SIGCONT)).start()
        sends.clear()
        answers = asyncio.run(all_at_once())
    assert [a[0] for a in sends] == ["infer_bodies", "infer_bodies"]
    assert [len(a[1][1]) for a in sends] == [1, 4]
    for k, answer in zip((0, 1, 2), (answers[0], answers[1], answers[3])):
        assert answer.doc["id"] == f"r{k}"
        assert np.array_equal(np.asarray(answer.doc["outputs"][0]["data"], np.float32).reshape(2, 3), expected[k])
    for refused, (body, _) in ((answers[2], BAD[1]), (answers[4], BAD[0])):
        assert isinstance(refused, ProtocolError) and refused.status == 400
        with pytest.raises(ProtocolError) as e:
            protocol.read_request(body, None, model.interface, ["logits"])
        assert refused.message == e.value.message


def test_the_interface_goes_to_the_worker_once_and_again_to_a_fresh_one(isolated, monkeypatch):
    quiet = []
    send_quietly = Worker.send_quietly
    monkeypatch.setattr(
        Worker, "send_quietly", lambda self, op, *a, **k: quiet.append(op) or send_quietly(self, op, *a, **k)
    )
    for _ in range(3):
        assert isolated.post(INFER, json=encode_request({"input": X})).status_code == 200
    assert quiet.count("serve_as") == 1
    worker = isolated.model.runner.workers.worker("onnx")
    generation = worker.generation
    os.kill(worker.proc.pid, signal.SIGKILL)
    worker.proc.wait()
    for _ in range(3):  # the first reloads the model on the model's thread, the next ones go to the fresh worker
        assert isolated.post(INFER, json=encode_request({"input": X})).status_code == 200
    assert worker.generation == generation + 1
    assert isolated.model.reads.sent_to == (worker.generation, isolated.model.runner.handle_now())
    assert quiet.count("serve_as") == 2


@pytest.mark.parametrize(
    "forged, why",
    [
        (
            Tagged([{}], [("refused", 200, "fine")]),
            "a tag that is neither (ok, id, binary outputs) nor (refused, a 4xx",
        ),
        (Tagged([{"logits": np.zeros((2, 3), np.float32)}], [("ok", 5, ())]), "a tag that is neither (ok, id"),
        (Tagged([{}, {}], [("refused", 400, "x")] * 2), "2 sets of outputs and 2 tags for 1 requests"),
        ([{"logits": np.zeros((2, 3), np.float32)}], "a list, not tagged outputs"),
        (Tagged([{}], [("refused", 400, "x" * (TAG_TEXT_CHARS + 1))]), "a tag that is neither (ok, id"),
        (Tagged([{"logits": np.zeros((2, 3), np.float32)}], [("ok", "x" * (TAG_TEXT_CHARS + 1), ())]), "a tag that"),
    ],
    ids=["status-200", "id-not-text", "too-many", "untagged", "long-refusal", "long-id"],
)
def test_a_worker_that_lies_about_a_request_is_refused_and_killed(isolated, forged, why):
    assert isolated.post(INFER, json=encode_request({"input": X})).status_code == 200
    isolated.model.pool.workers.call("onnx", crashing.answer_bodies_with, forged)
    r = isolated.post(INFER, json=encode_request({"input": X}))
    assert r.status_code == 500
    assert r.json()["error"].startswith(
        f"model tiny: model.onnx: the onnx worker's answer to infer was refused: it is not what infer answers: {why}"
    ), r.json()["error"]
    assert "[not retried" in isolated.post(INFER, json=encode_request({"input": X})).json()["error"]


def test_only_the_models_own_outputs_can_come_back_as_binary_data(isolated):
    model = isolated.model
    outputs = {"logits": np.ones((1, 3), np.float32)}
    got, request = model._taken((outputs, "r", frozenset({"logits", "ghost"})))
    assert got is outputs and request.id == "r" and request.binary == frozenset({"logits"})
    with pytest.raises(ProtocolError, match="^nope$"):
        model._taken(ProtocolError(400, "nope"))


def test_every_id_a_service_sends_to_its_worker_fits_in_a_tag():
    """A request's id comes back in its tag, which holds at most TAG_TEXT_CHARS: no body the service sends the worker
    (at most INLINE_BODY_BYTES; a larger one is read in the service) can hold a longer one."""
    assert service.INLINE_BODY_BYTES <= TAG_TEXT_CHARS


def test_a_refusal_longer_than_a_tag_holds_is_cut_not_refused():
    from model_checks.isolation.worker import _Models

    models = _Models()
    models.runners[1] = None  # (never called: the request is refused before the model runs)
    names = tuple(f"input_{i:06d}_{'n' * 40}" for i in range(6000))  # a model with very many inputs, all missing
    models.serve_as(1, tuple(TensorSpec(n, "float32", (1,)) for n in names), ("logits",))
    body = json.dumps({"inputs": [{"name": names[0], "shape": [1], "datatype": "FP32", "data": [0]}]}).encode()
    (tag,) = models.infer_bodies(1, [(body, None)]).tags
    assert tag[0] == "refused" and len(tag[2]) == TAG_TEXT_CHARS and tag[2].startswith("inputs: missing input_000001")


def test_a_model_in_this_process_has_its_requests_read_outside_the_pipes_lock(tiny, monkeypatch):
    """Without isolation the service reads each request itself, on the event loop and before it waits for the pipe:
    while the model runs the request before it, not after."""
    with ModelPool() as pool, ready_client(tiny, pool) as in_process:
        model = in_process.model
        locked = []
        decode = model.decode
        monkeypatch.setattr(model, "decode", lambda *a: locked.append(model.pipe.locked()) or decode(*a))
        r = in_process.post(INFER, json=encode_request({"input": X}, "r2"))
        assert r.status_code == 200 and r.json()["id"] == "r2"
        assert locked == [False]
