"""The binary tensor data extension (Inference-Header-Content-Length): raw little-endian tensors after the JSON,
binary outputs on request, and a clear 400 for every body whose sizes do not account for its bytes."""

import json
import time

import numpy as np
import pytest

from fixtures import artifacts as A
from fixtures.serving import ready_client
from model_checks.core.pool import ModelPool
from model_checks.manifest.model import TensorSpec
from model_checks.serving.protocol import (
    HEADER_LENGTH,
    ProtocolError,
    binary_body,
    binary_outputs,
    decode_binary_response,
    decode_request,
    encode_binary_request,
    encode_request,
    encode_response,
    parse_json,
    split_body,
)
from model_checks.serving.service import ServedModel, build_app, open_artifact

IFACE = [
    TensorSpec("image", "float32", ("batch", 3)),
    TensorSpec("mask", "int64", ("batch", 2)),
    TensorSpec("flag", "bool", ("batch",)),
]
FEEDS = {
    "image": np.arange(6, dtype=np.float32).reshape(2, 3) / 7,
    "mask": np.array([[1, -2], [3, 1 << 40]], np.int64),
    "flag": np.array([True, False]),
}
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def decoded(body: bytes, length: int | str, iface=IFACE):
    text, raw = split_body(body, str(length))
    return decode_request(parse_json(text), iface, raw)


def refusal(body: bytes, length: int | str, iface=IFACE) -> str:
    with pytest.raises(ProtocolError) as e:
        decoded(body, length, iface)
    assert e.value.status == 400
    return str(e.value)


def with_doc(doc: dict, raw: bytes) -> tuple[bytes, int]:
    head = json.dumps(doc).encode()
    return head + raw, len(head)


def test_a_binary_request_decodes_to_the_same_feeds_as_its_json_twin():
    body, n = encode_binary_request(FEEDS, request_id="r7")
    feeds, rid = decoded(body, n)
    assert rid == "r7" and list(feeds) == ["image", "mask", "flag"]
    for name, a in FEEDS.items():
        assert feeds[name].dtype == a.dtype and np.array_equal(feeds[name], a)
        assert feeds[name].flags.writeable  # the service's own copy, not a view of the body
    twin, _ = decode_request(json.loads(json.dumps(encode_request(FEEDS))), IFACE)
    assert all(np.array_equal(twin[k], feeds[k]) for k in FEEDS)


def test_big_endian_input_is_sent_little_endian():
    body, n = encode_binary_request({"image": FEEDS["image"].astype(">f4")}, binary_output=False)
    feeds, _ = decoded(body, n, IFACE[:1])
    assert feeds["image"].dtype == np.float32 and np.array_equal(feeds["image"], FEEDS["image"])


def test_a_binary_response_carries_the_outputs_bytes_after_its_json():
    outputs = {"y": np.array([[1.5, -2.0]], np.float32), "k": np.array([3, 4], np.int64)}
    doc = encode_response("m", "1", outputs, "r", frozenset({"y"}))
    assert doc["outputs"][0] == {
        "name": "y",
        "shape": [1, 2],
        "datatype": "FP32",
        "parameters": {"binary_data_size": 8},
    }
    assert doc["outputs"][1]["data"] == [3, 4]
    body, n = binary_body(doc, outputs, frozenset({"y"}))
    assert body[n:] == np.array([1.5, -2.0], "<f4").tobytes()
    back = decode_binary_response(body, n)
    assert np.array_equal(back["y"], outputs["y"]) and np.array_equal(back["k"], outputs["k"])


def test_which_outputs_come_back_binary():
    names = ["y", "k"]
    assert binary_outputs({}, names) == frozenset()
    assert binary_outputs({"parameters": {"binary_data_output": True}}, names) == {"y", "k"}
    doc = {"parameters": {"binary_data_output": True}, "outputs": [{"name": "k", "parameters": {"binary_data": False}}]}
    assert binary_outputs(doc, names) == {"y"}
    assert binary_outputs({"outputs": [{"name": "k", "parameters": {"binary_data": True}}]}, names) == {"k"}
    with pytest.raises(ProtocolError) as e:
        binary_outputs({"outputs": [{"name": "z"}]}, names)
    assert str(e.value) == "outputs[0]: expected an object naming one of the model's outputs (y, k)"
    with pytest.raises(ProtocolError) as e:
        binary_outputs({"parameters": {"binary_data_output": "yes"}}, names)
    assert str(e.value) == 'parameters.binary_data_output: expected true or false, got "yes"'


def image(size, shape=(2, 3), **extra) -> dict:
    t = {"name": "image", "shape": list(shape), "datatype": "FP32", "parameters": {"binary_data_size": size}}
    return {"inputs": [{**t, **extra}]}


RAW = np.zeros(6, np.float32).tobytes()


def test_a_truncated_body_is_refused():
    body, n = with_doc(image(24), RAW[:20])
    assert refusal(body, n, IFACE[:1]) == (
        "inputs[0] 'image'.parameters.binary_data_size: 24 bytes from byte 0 of the binary data, but the body holds "
        "20 bytes after its JSON part (Inference-Header-Content-Length); the body is truncated or a size is wrong"
    )
    assert refusal(body, len(body) + 1, IFACE[:1]) == (
        f"Inference-Header-Content-Length: {len(body) + 1} bytes of JSON, but the body holds only {len(body)} bytes"
    )
    assert refusal(body[: n - 3], n - 3, IFACE[:1]).startswith("request body is not valid JSON")


def test_sizes_that_do_not_add_up_are_refused():
    body, n = with_doc(image(20), RAW[:20])
    assert refusal(body, n, IFACE[:1]) == (
        "inputs[0] 'image'.parameters.binary_data_size: 20 bytes, but shape [2, 3] of FP32 holds 24 bytes (6 x 4)"
    )
    body, n = with_doc(image(24), RAW + b"\0\0\0\0")
    assert refusal(body, n, IFACE[:1]) == (
        "request body: 28 bytes follow the JSON part (Inference-Header-Content-Length), but the inputs' "
        "binary_data_size add up to 24"
    )
    body, n = with_doc(image(24, data=[0.0] * 6), RAW)
    assert refusal(body, n, IFACE[:1]) == (
        "inputs[0] 'image': both data and parameters.binary_data_size; send the tensor one way"
    )


def test_huge_declared_sizes_are_refused_before_anything_is_allocated():
    huge = 2**31 - 1  # the largest dim a request may name; the size it declares is still far past the body
    body, n = with_doc(image(huge * 12, shape=(huge, 3)), RAW)
    assert refusal(body, n, IFACE[:1]) == (
        f"inputs[0] 'image'.parameters.binary_data_size: {huge * 12} bytes from byte 0 of the binary data, but the "
        "body holds 24 bytes after its JSON part (Inference-Header-Content-Length); the body is truncated or a size "
        "is wrong"
    )
    body, n = with_doc(image(-1), RAW)
    assert refusal(body, n, IFACE[:1]) == (
        "inputs[0] 'image'.parameters.binary_data_size: expected a non-negative integer (bytes), got -1"
    )


def test_the_header_and_the_values_are_checked_like_json_data():
    body, n = with_doc(image(24), RAW)
    assert refusal(body, "12a", IFACE[:1]) == (
        "Inference-Header-Content-Length: expected the length of the JSON part in bytes, got '12a'"
    )
    with pytest.raises(ProtocolError) as e:
        decode_request(parse_json(body[:n]), IFACE[:1])  # binary data, but no header said where the JSON ends
    assert str(e.value) == (
        "inputs[0] 'image'.parameters.binary_data_size: binary data needs the Inference-Header-Content-Length "
        "header (the length of the JSON part of the body)"
    )
    nan = np.array([0, 0, 0, 0, np.nan, 0], np.float32).tobytes()
    body, n = with_doc(image(24), nan)
    assert refusal(body, n, IFACE[:1]) == (
        "inputs[0] 'image': binary value [4] is nan, not finite; inputs must be finite numbers"
    )
    flag = {"inputs": [{"name": "flag", "shape": [2], "datatype": "BOOL", "parameters": {"binary_data_size": 2}}]}
    body, n = with_doc(flag, b"\x01\x02")
    assert refusal(body, n, IFACE[2:]) == "inputs[0] 'flag': binary BOOL value [1] is the byte 2; expected 0 or 1"


IO = {
    "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 4]}],
    "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 3]}],
}
INFER = "/v2/models/tiny/infer"


@pytest.fixture(params=["in-process", "isolated"])
def client(request, tmp_path):
    from starlette.testclient import TestClient

    from model_checks.isolation.limits import Limits

    art = open_artifact(A.onnx_artifact(tmp_path / "arts" / "tiny", **IO))
    isolation = Limits(timeout_s=5) if request.param == "isolated" else None
    with ModelPool(isolation=isolation, share_outputs=False) as pool:
        model = ServedModel(art, pool)
        with TestClient(build_app(model, max_body=64 * 1024), raise_server_exceptions=False) as c:
            deadline = time.monotonic() + 60
            while c.get("/v2/health/ready").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.02)
            c.model = model
            yield c


def test_the_service_answers_binary_requests_with_binary_outputs(client):
    x = np.linspace(0, 1, 8, dtype=np.float32).reshape(2, 4)
    as_json = client.post(INFER, json=encode_request({"input": x}))
    assert as_json.status_code == 200
    body, n = encode_binary_request({"input": x})
    r = client.post(INFER, content=body, headers={HEADER_LENGTH: str(n), "Content-Type": "application/octet-stream"})
    assert r.status_code == 200 and r.headers["content-type"] == "application/octet-stream"
    got = decode_binary_response(r.content, int(r.headers[HEADER_LENGTH]))
    assert np.array_equal(got["logits"], np.asarray(as_json.json()["outputs"][0]["data"], np.float32).reshape(2, 3))
    json_out, n = encode_binary_request({"input": x}, binary_output=False)
    r = client.post(INFER, content=json_out, headers={HEADER_LENGTH: str(n)})
    assert r.status_code == 200 and r.json()["outputs"][0]["data"] == as_json.json()["outputs"][0]["data"]
    assert client.get("/v2").json()["extensions"] == ["binary_tensor_data"]


def test_the_service_refuses_a_binary_body_that_does_not_add_up(client):
    body, n = encode_binary_request({"input": np.zeros((1, 4), np.float32)})
    r = client.post(INFER, content=body[:-4], headers={HEADER_LENGTH: str(n)})
    assert r.status_code == 400 and r.json()["error"] == (
        "inputs[0] 'input'.parameters.binary_data_size: 16 bytes from byte 0 of the binary data, but the body holds "
        "12 bytes after its JSON part (Inference-Header-Content-Length); the body is truncated or a size is wrong"
    )
    r = client.post(INFER, content=body, headers={HEADER_LENGTH: str(len(body) + 5)})
    assert r.status_code == 400 and r.json()["error"] == (
        f"Inference-Header-Content-Length: {len(body) + 5} bytes of JSON, but the body holds only {len(body)} bytes"
    )
    big = 64 * 1024 + 1
    r = client.post(INFER, content=b"{" + b" " * big, headers={HEADER_LENGTH: "1"})
    assert r.status_code == 413  # the body cap holds for binary bodies too
    ok = client.post(INFER, content=body, headers={HEADER_LENGTH: str(n)})
    assert ok.status_code == 200


@pytest.fixture
def isolated(tmp_path):
    from model_checks.isolation.limits import Limits

    art = A.onnx_artifact(tmp_path / "arts" / "tiny", **IO)
    with ModelPool(isolation=Limits(timeout_s=2), share_outputs=False) as pool, ready_client(art, pool) as c:
        yield c


def body(n=1):
    return encode_request({"input": np.ones((n, 4), np.float32)})


def the_worker(c):
    return c.model.runner.workers.worker("onnx")


def test_an_isolated_model_answers_from_the_event_loop_without_the_models_thread(isolated, monkeypatch):
    def no_thread(feeds):
        raise AssertionError("the model's thread was used")

    monkeypatch.setattr(isolated.model, "run", no_thread)
    for n in (1, 3):
        r = isolated.post(INFER, json=body(n))
        assert r.status_code == 200 and r.json()["outputs"][0]["shape"] == [n, 3]


def test_a_worker_killed_between_requests_is_started_again_by_the_models_thread(isolated):
    import os
    import signal

    first = the_worker(isolated).proc.pid
    os.kill(first, signal.SIGKILL)
    the_worker(isolated).proc.wait(10)
    r = isolated.post(INFER, json=body())
    assert r.status_code == 200 and the_worker(isolated).proc.pid != first  # loaded again in a fresh worker
    assert isolated.post(INFER, json=body()).status_code == 200


def test_a_hung_worker_is_a_500_naming_the_timeout_then_not_retried(isolated):
    import os
    import signal

    os.kill(the_worker(isolated).proc.pid, signal.SIGSTOP)  # it reads the request, and never answers
    r = isolated.post(INFER, json=body())
    first = r.json()["error"]
    assert r.status_code == 500 and first.startswith(
        "model tiny: model.onnx: infer did not finish within 2 s; the onnx worker was killed (the model hangs its "
        f"runtime, or needs a longer --model-checks-timeout; this machine: {os.cpu_count()} CPUs, load average "
    )
    r = isolated.post(INFER, json=body())
    assert (r.status_code, r.json()) == (
        500,
        {"error": f"{first} [not retried: this model already did this earlier in the session]"},
    )
    assert isolated.get("/v2/health/live").status_code == 200


def test_the_answer_is_polled_for_only_with_one_request_in_hand_and_while_answers_come_quickly(isolated):
    import os
    import signal

    from model_checks.serving.service import SPIN_S

    model = isolated.model
    assert isolated.post(INFER, json=body()).status_code == 200
    assert model.spinner is not None and model.spinner.limit_s == SPIN_S and model.active == 0
    model.active = 2  # another request in hand: the loop must stay free to read it
    assert model.spin is None
    model.active = 1
    assert model.spin is model.spinner
    model.active = 0
    before = model.spinner.misses  # the first answer may or may not have come within the poll
    os.kill(the_worker(isolated).proc.pid, signal.SIGSTOP)  # an answer that does not come within the limit
    assert isolated.post(INFER, json=body()).status_code == 500
    assert model.spinner.misses == before + 1 and model.spinner.now() == SPIN_S  # one slow answer: still polled


def test_the_poll_stops_after_answers_too_slow_for_it_probes_now_and_then_and_resumes_when_they_are_quick():
    """A slow model's answers never come within the poll: after a few in a row it stops (CPU spent for nothing),
    and one request in PROBE_EVERY polls again. Only requests that polled count: a wait on the event loop includes
    the loop's wake-up, and one slow answer used to switch the poll off for good (at 1 connection 452 of 4,506
    requests polled, 1,454 req/s; polling on, 1,765 req/s)."""
    from model_checks.serving.awaited import Spin

    spin = Spin(1e-4)
    for _ in range(Spin.OFF_AFTER - 1):
        assert spin.now() == 1e-4
        spin.came(1e-4, False)
    assert spin.now() == 1e-4  # a few slow answers in a row: still polled for
    spin.came(1e-4, True)  # one in time: the count starts again
    for _ in range(Spin.OFF_AFTER):
        spin.came(spin.now(), False)
    polls = [spin.now() for _ in range(2 * Spin.PROBE_EVERY)]
    assert [i for i, x in enumerate(polls) if x] == [Spin.PROBE_EVERY - 1, 2 * Spin.PROBE_EVERY - 1]
    spin.came(0.0, True)  # a request that did not poll says nothing of the poll
    assert spin.now() == 0.0
    spin.came(1e-4, True)  # a probe answered within the poll: every request polls again
    assert [spin.now() for _ in range(3)] == [1e-4] * 3


def test_readable_now_sees_an_answer_and_the_end_of_a_worker():
    import socket
    from multiprocessing.connection import Connection

    from model_checks.serving.awaited import readable_now

    a, b = socket.socketpair()
    ours, theirs = Connection(a.detach()), Connection(b.detach())
    assert readable_now(ours) is False and readable_now(ours, 0.001) is False
    theirs.send_bytes(b"answer")
    assert readable_now(ours) is True and ours.recv_bytes() == b"answer"
    theirs.close()  # a worker that died: readable, so that reading it says so
    assert readable_now(ours, 0.001) is True
    ours.close()


def test_a_worker_that_dies_during_an_inference_is_a_500_naming_the_signal(isolated):
    import os
    import signal
    import threading

    pid = the_worker(isolated).proc.pid
    os.kill(pid, signal.SIGSTOP)
    threading.Timer(0.5, os.kill, (pid, signal.SIGKILL)).start()
    r = isolated.post(INFER, json=body())
    assert r.status_code == 500 and r.json()["error"].startswith(
        "model tiny: model.onnx: the onnx worker died from SIGKILL during infer: killed from outside (perhaps the "
        "kernel's out-of-memory killer). This machine has "
    )
    assert "[not retried" in isolated.post(INFER, json=body()).json()["error"]


def reshaping(tmp_path):
    """x [2, 4] reshaped to the shape given as input s: a request whose s does not fit fails in the model only."""
    from onnx import TensorProto, helper

    from fixtures import onnx_models

    graph = helper.make_graph(
        [helper.make_node("Reshape", ["x", "s"], ["y"])],
        "g",
        [
            helper.make_tensor_value_info("x", TensorProto.FLOAT, [2, 4]),
            helper.make_tensor_value_info("s", TensorProto.INT64, [2]),
        ],
        [helper.make_tensor_value_info("y", TensorProto.FLOAT, None)],
    )
    d = tmp_path / "arts" / "reshape"
    d.mkdir(parents=True)
    np.savez(d / "samples.npz", x=np.ones((2, 4), np.float32), s=np.array([4, 2], np.int64))
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 17)])
    model.ir_version = 8
    onnx_models.save(model, d / "model.onnx")
    return A.write_manifest(
        d, {"model_name": "reshape", "version": "1", "file": "model.onnx", "samples": "samples.npz"}
    )


def test_requests_waiting_for_the_worker_go_in_one_round_trip_and_a_failure_stays_its_own(tmp_path, monkeypatch):
    import asyncio
    import os
    import signal
    import threading

    from model_checks.isolation.limits import Limits
    from model_checks.isolation.workers import Worker

    sends = []
    send = Worker.send_request
    monkeypatch.setattr(Worker, "send_request", lambda self, *a: sends.append(a) or send(self, *a))
    x = np.arange(8, dtype=np.float32).reshape(2, 4)
    shapes = [(4, 2), (8, 1), (3, 3), (1, 8), (2, 4)]  # the third does not fit
    bodies = [json.dumps(encode_request({"x": x, "s": np.array(s, np.int64)})).encode() for s in shapes]
    with ModelPool(isolation=Limits(timeout_s=30), share_outputs=False) as pool:
        model = ServedModel(open_artifact(reshaping(tmp_path)), pool)
        model.load()
        assert model.ready, model.error

        async def all_at_once():
            return await asyncio.gather(*(model.answer(b) for b in bodies), return_exceptions=True)

        # The worker paused until all five have arrived: the first is in the worker, the other four wait for it.
        pid = model.runner.workers.worker("onnx").proc.pid
        os.kill(pid, signal.SIGSTOP)
        threading.Timer(0.5, os.kill, (pid, signal.SIGCONT)).start()
        sends.clear()
        answers = asyncio.run(all_at_once())
    for shape, answer in zip(shapes, answers):
        if shape == (3, 3):
            assert isinstance(answer, ProtocolError) and answer.status == 500
            assert str(answer).startswith("model reshape: model.onnx: inference failed: ")
            assert "The input tensor cannot be reshaped to the requested shape" in str(answer)
        else:
            assert answer.doc["outputs"][0]["shape"] == list(shape)
            assert answer.doc["outputs"][0]["data"] == x.ravel().tolist()
    # the first alone, the four that waited in one round trip, which failed: then each of those on its own
    assert [len(a[1][1]) if isinstance(a[1][1], list) else 1 for a in sends] == [1, 4, 1, 1, 1, 1]


def test_at_most_max_together_requests_share_a_round_trip(tmp_path, monkeypatch):
    import asyncio
    import os
    import signal
    import threading

    from model_checks.isolation.limits import Limits
    from model_checks.isolation.workers import Worker
    from model_checks.serving import service

    monkeypatch.setattr(service, "MAX_TOGETHER", 3)
    sends = []
    send = Worker.send_request
    monkeypatch.setattr(Worker, "send_request", lambda self, *a: sends.append(a) or send(self, *a))
    art = open_artifact(A.onnx_artifact(tmp_path / "arts" / "tiny", **IO))
    with ModelPool(isolation=Limits(timeout_s=30), share_outputs=False) as pool:
        model = ServedModel(art, pool)
        model.load()
        pid = model.runner.workers.worker("onnx").proc.pid

        async def eight():
            return await asyncio.gather(*(model.answer(json.dumps(body(1)).encode()) for _ in range(8)))

        os.kill(pid, signal.SIGSTOP)
        threading.Timer(0.5, os.kill, (pid, signal.SIGCONT)).start()
        sends.clear()
        answers = asyncio.run(eight())
    assert all(a.doc["outputs"][0]["shape"] == [1, 3] for a in answers)
    assert [len(a[1][1]) if isinstance(a[1][1], list) else 1 for a in sends] == [1, 3, 3, 1]


def test_the_response_cap_counts_binary_outputs_as_their_bytes(tmp_path):
    from starlette.testclient import TestClient

    art = open_artifact(A.onnx_artifact(tmp_path / "arts" / "tiny", **IO))
    with ModelPool(share_outputs=False) as pool:
        model = ServedModel(art, pool, max_response=1024 * 1024)
        with TestClient(build_app(model), raise_server_exceptions=False) as c:
            deadline = time.monotonic() + 60
            while c.get("/v2/health/ready").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.02)
            # 100,000 rows: a 1.6 MB body (decoded on the model's thread), 1.2 MB of binary outputs
            body, n = encode_binary_request({"input": np.zeros((100_000, 4), np.float32)})
            r = c.post(INFER, content=body, headers={HEADER_LENGTH: str(n)})
            assert (r.status_code, r.json()) == (
                500,
                {
                    "error": "model tiny: the response would hold 0 values as JSON and 1200000 bytes of binary data "
                    "(up to 1.1 MiB), over the cap of 1 MiB (--max-response-mb); not encoded"
                },
            )
            body, n = encode_binary_request({"input": np.zeros((80_000, 4), np.float32)})  # 0.96 MB: under it
            r = c.post(INFER, content=body, headers={HEADER_LENGTH: str(n)})
            assert r.status_code == 200 and len(r.content) == int(r.headers[HEADER_LENGTH]) + 80_000 * 3 * 4
