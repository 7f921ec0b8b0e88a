"""The service in process (Starlette's TestClient): Open Inference Protocol endpoints, clear 4xx answers,
and a service that keeps serving after any number of bad requests."""

import time

import numpy as np
import pytest

from fixtures import artifacts as A
from fixtures.serving import ready_client
from model_checks.core.errors import InferenceError
from model_checks.core.pool import ModelPool
from model_checks.serving.protocol import encode_request
from model_checks.serving.service import ServedModel, build_app, open_artifact

IFACE = {
    "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 4]}],
    "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 3]}],
}
INFER = "/v2/models/tiny/infer"
# starlette 1.7 prefers httpx2 for its TestClient; httpx is what the serving extra pins
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


@pytest.fixture
def client(tmp_path):
    with (
        ModelPool() as pool,
        ready_client(A.onnx_artifact(tmp_path / "arts" / "tiny", **IFACE), pool, 30, max_body=64 * 1024) as c,
    ):
        yield c


def good_body(n=2):
    return encode_request({"input": np.ones((n, 4), np.float32)})


def test_health_metadata_and_infer(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    assert client.get("/v2/health/ready").json() == {"ready": True}
    assert client.get("/v2/models/tiny").json() == {
        "name": "tiny",
        "versions": ["1.0"],
        "platform": "onnx",
        "inputs": [{"name": "input", "datatype": "FP32", "shape": [-1, 4]}],
        "outputs": [{"name": "logits", "datatype": "FP32", "shape": [-1, 3]}],
    }
    r = client.post(INFER, json={**good_body(), "id": "a1"})
    assert r.status_code == 200
    doc = r.json()
    assert (doc["model_name"], doc["model_version"], doc["id"]) == ("tiny", "1.0", "a1")
    assert doc["outputs"][0]["shape"] == [2, 3] and doc["outputs"][0]["datatype"] == "FP32"
    assert client.post("/v2/models/tiny/versions/1.0/infer", json=good_body()).status_code == 200


@pytest.mark.parametrize(
    "path, body, status, error",
    [
        ("/v2/models/other/infer", b"{}", 404, "unknown model 'other'; this service serves 'tiny'"),
        ("/v2/models/tiny/versions/9/infer", b"{}", 404, "unknown version '9' of model 'tiny'; it has version '1.0'"),
        (INFER, b'{"inputs": [', 400, "request body is not valid JSON at line 1 column 13: Expecting value"),
        (
            INFER,
            b'{"inputs": [{"name": "input", "shape": [1, 5], "datatype": "FP32", "data": [0, 0, 0, 0, 0]}]}',
            400,
            "inputs[0] 'input'.shape[1]: 5, expected 4 (the model declares [batch, 4])",
        ),
        (
            INFER,
            b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [0, 0, 0, Infinity]}]}',
            400,
            "request body: Infinity is not a finite number; the protocol's JSON carries finite numbers only",
        ),
        (
            INFER,
            b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "INT32", "data": [0, 0, 0, 1]}]}',
            400,
            "inputs[0] 'input'.datatype: \"INT32\", expected FP32",
        ),
        (
            INFER,
            b" " * (64 * 1024 + 1),
            413,
            "request body: 65537 bytes exceeds the cap of 65536 bytes (--max-body-mb)",
        ),
    ],
)
def test_bad_requests_get_a_4xx_naming_the_field(client, path, body, status, error):
    r = client.post(path, content=body, headers={"content-type": "application/json"})
    assert (r.status_code, r.json()) == (status, {"error": error})


def test_unknown_routes_and_methods_answer_in_the_protocols_error_body(client):
    assert client.get("/v2/nope").json() == {"error": "GET /v2/nope: Not Found"}
    r = client.get(INFER)
    assert r.status_code == 405 and r.json() == {"error": f"GET {INFER}: Method Not Allowed"}


def test_a_thousand_malformed_requests_then_a_good_one_is_answered(client):
    bad = [
        b"{",
        b"[]",
        b'{"inputs": 3}',
        b'{"inputs": [{"name": "input", "shape": [1, 3], "datatype": "FP32", "data": [1, 2, 3]}]}',
        b'{"inputs": [{"name": "input", "shape": [1, 4], "datatype": "FP32", "data": [1, 2, 3, NaN]}]}',
    ]
    statuses = {client.post(INFER, content=bad[i % len(bad)]).status_code for i in range(1000)}
    assert statuses == {400}
    r = client.post(INFER, json=good_body(1))
    assert r.status_code == 200 and len(r.json()["outputs"][0]["data"]) == 3


def test_an_error_inside_the_model_is_a_500_with_a_message_not_a_traceback(client, monkeypatch):
    class Broken:
        def infer(self, feeds):
            raise InferenceError("model.onnx: inference failed (RuntimeError: kernel exploded)")

    class Buggy:
        def infer(self, feeds):
            return 1 / 0

    monkeypatch.setattr(client.model, "runner", Broken())  # the service holds its loaded model's runner
    r = client.post(INFER, json=good_body())
    assert (r.status_code, r.json()) == (
        500,
        {"error": "model tiny: model.onnx: inference failed (RuntimeError: kernel exploded)"},
    )
    monkeypatch.setattr(client.model, "runner", Buggy())
    r = client.post(INFER, json=good_body())
    assert (r.status_code, r.json()) == (
        500,
        {"error": f"internal error (ZeroDivisionError) while answering POST {INFER}"},
    )


def test_not_ready_until_loaded_and_a_load_failure_is_reported(tmp_path):
    from starlette.testclient import TestClient

    d = A.onnx_artifact(tmp_path / "arts" / "tiny", **IFACE)
    (d / "model.onnx").write_bytes(b"not a model")
    with ModelPool() as pool:
        model = ServedModel(open_artifact(d), pool)
        with TestClient(build_app(model)) as c:
            deadline = time.monotonic() + 30
            while model.error is None and time.monotonic() < deadline:
                time.sleep(0.02)
            r = c.get("/v2/health/ready")
            assert r.status_code == 503 and r.json()["ready"] is False and "model.onnx" in r.json()["error"]
            assert c.get("/v2/health/live").status_code == 200
            assert c.post(INFER, json=good_body()).status_code == 503


@pytest.mark.parametrize("cpus, threads", [({0}, 1), ({0, 1}, 1), (set(range(8)), 7)])
def test_a_served_model_leaves_the_service_a_cpu(monkeypatch, cpus, threads):
    import model_checks.serving.service as service

    monkeypatch.setattr(service.os, "sched_getaffinity", lambda pid: cpus, raising=False)
    assert service.model_threads() == threads


def test_the_served_model_is_loaded_once_with_its_threads(tmp_path):
    from model_checks.checks.context import CheckContext
    from model_checks.isolation.limits import Limits

    art = open_artifact(A.onnx_artifact(tmp_path / "arts" / "tiny", **IFACE))
    with ModelPool(isolation=Limits(timeout_s=30), share_outputs=False) as pool:
        model = ServedModel(art, pool, threads=1)
        model.load()
        assert model.error is None and model.ready
        # the interface and the warm-up asked for the same runner: no second copy at the runtime's default threads
        assert pool.loads == {art.model_path: 1}
        assert CheckContext(art, pool).runner(threads=1) is model.runner


@pytest.mark.parametrize("broken", [False, True])
def test_a_service_leaves_what_it_holds_after_its_load_out_of_the_collectors_passes(tmp_path, broken):
    """A service's model (freeze_heap, as `serve` makes it) freezes the heap once it is loaded, or failed to load (the
    service runs on either way); a ServedModel made by anyone else leaves the collector alone."""
    import gc

    d = A.onnx_artifact(tmp_path / "arts" / "tiny", **IFACE)
    if broken:
        (d / "model.onnx").write_bytes(b"not a model")
    art = open_artifact(d)
    assert gc.get_freeze_count() == 0
    try:
        with ModelPool() as pool:
            ServedModel(art, pool).load()
            assert gc.get_freeze_count() == 0
            model = ServedModel(art, pool, freeze_heap=True)
            model.load()
            assert (model.error is not None) is broken
            assert gc.get_freeze_count() > 0
    finally:
        gc.unfreeze()
