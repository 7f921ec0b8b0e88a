"""The serving check is bounded by the gate, not by the artifact (issue 19): a manifest asking for a flood, a model
whose answer is huge, a JSON bomb, a client that stops halfway, and a gate killed mid-check."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from onnx import TensorProto, helper

from fixtures import artifacts as A
from model_checks.core.pool import ModelPool
from model_checks.serving.caps import ServingCaps
from model_checks.serving.protocol import encode_request
from model_checks.serving.service import ServedModel, build_app, open_artifact
from model_checks.serving.spec import serving_spec

IFACE = {
    "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 4]}],
    "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 3]}],
}
REPO = Path(__file__).resolve().parents[2]
pytestmark = pytest.mark.filterwarnings("ignore:Using `httpx` with `starlette.testclient`")


def run(pytester, *args):
    return pytester.runpytest("--model-checks", "arts", "-p", "no:cacheprovider", "-m", "serving", *args)


def blow_up(values: int):
    """input [batch, 4] -> an output of `values` floats per request: Expand of a reduced input to a huge shape."""
    shape = helper.make_tensor("shape", TensorProto.INT64, [2], np.array([values // 4, 4], np.int64))
    nodes = [
        helper.make_node("ReduceSum", ["input"], ["s"], keepdims=1),
        helper.make_node("Expand", ["s", "shape"], ["logits"]),
    ]
    g = helper.make_graph(
        nodes,
        "bomb",
        [helper.make_tensor_value_info("input", TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info("logits", TensorProto.FLOAT, [values // 4, 4])],
        [shape],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)])
    m.ir_version = 8
    return m


# -- a manifest asks, the gate decides -----------------------------------------------------------
def test_caps_lower_requests_and_duration_and_refuse_a_rate_beyond_the_gate(tmp_path: Path) -> None:
    art = open_artifact(
        A.onnx_artifact(
            tmp_path / "arts" / "a",
            name="a",
            serving={"rate_per_s": 100, "requests": 10**6, "duration_s": 3600},
            **IFACE,
        )
    )
    spec = serving_spec(art.manifest)
    got, notes, problems = ServingCaps(max_requests=500, max_duration_s=4).bounded(spec)
    assert (got.requests, got.duration_s, got.rate.value, problems) == (500, 4, 100, [])
    assert notes == [
        "  serving.requests 1000000 lowered to the gate's cap of 500 (--model-checks-serving-max-requests)",
        "  serving.duration_s 3600 lowered to the gate's cap of 4 s (--model-checks-serving-max-duration)",
    ]
    got, _, problems = ServingCaps(max_rate=50).bounded(spec)
    assert got is None and problems == [
        "serving.rate_per_s 100 from metadata.yaml serving.rate_per_s exceeds the gate's cap of 50 requests/s "
        "(--model-checks-serving-max-rate): not load-tested. Lower it, or raise the cap in the gate's own "
        "configuration if this machine can offer it"
    ]


def test_a_flood_asked_for_is_refused_before_any_service_starts(pytester) -> None:
    A.onnx_artifact(
        pytester.path / "arts" / "flood",
        name="flood",
        serving={"rate_per_s": 100000, "requests": 1000000, "duration_s": 3600},
        **IFACE,
    )
    start = time.monotonic()
    r = run(pytester, "--model-checks-timeout", "20")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(
        [
            "*serving: flood@1.0: 1 problem*",
            "*- serving.rate_per_s 100000 from metadata.yaml serving.rate_per_s exceeds the gate's cap of "
            "5000 requests/s (--model-checks-serving-max-rate): not load-tested*",
        ]
    )
    assert time.monotonic() - start < 60


def test_requests_duration_and_the_timeout_bound_the_load(pytester) -> None:
    A.onnx_artifact(
        pytester.path / "arts" / "long",
        name="long",
        serving={"rate_per_s": 20, "requests": 1000000, "duration_s": 3600},
        **IFACE,
    )
    start = time.monotonic()
    r = run(
        pytester,
        "-v",
        "--junitxml=j.xml",
        "--model-checks-serving-max-requests",
        "30",
        "--model-checks-serving-max-duration",
        "2",
    )
    assert time.monotonic() - start < 120
    r.assert_outcomes(passed=1)
    props = (pytester.path / "j.xml").read_text()
    assert 'name="model_checks.serving_sent" value="30"' in props  # 30 of the million asked for, in under 2 s
    assert "Traceback" not in r.stdout.str()


def test_the_whole_check_ends_within_the_gates_timeout(pytester) -> None:
    A.onnx_artifact(
        pytester.path / "arts" / "slow",
        name="slow",
        serving={"rate_per_s": 5, "requests": 10000, "duration_s": 90},
        **IFACE,
    )
    start = time.monotonic()
    run(pytester, "--junitxml=j.xml", "--model-checks-timeout", "20", "--model-checks-serving-max-duration", "600")
    assert time.monotonic() - start < 75  # 90 s asked; the check's 20 s, plus pytest's and the service's start and stop
    import re

    sent = int(
        re.search(r'name="model_checks.serving_sent" value="(\d+)"', (pytester.path / "j.xml").read_text()).group(1)
    )
    assert sent < 100  # at 5/s: at most the 20 s of the timeout, not the 90 s asked


@pytest.mark.parametrize(
    "option, value, message",
    [
        ("--model-checks-serving-max-rate", "0", "'0' is not a positive number of requests/s"),
        ("--model-checks-serving-max-requests", "many", "'many' is not a positive number of requests"),
        ("--model-checks-serving-max-duration", "-1", "'-1' is not a positive number of seconds"),
        ("--model-checks-serving-max-response-mb", "x", "'x' is not a positive number of MiB"),
    ],
)
def test_the_serving_caps_are_validated(pytester, option: str, value: str, message: str) -> None:
    A.onnx_artifact(pytester.path / "arts" / "a", name="a", **IFACE)
    r = pytester.runpytest("--model-checks", "arts", "-p", "no:cacheprovider", f"{option}={value}")
    assert r.ret == pytest.ExitCode.USAGE_ERROR
    r.stderr.fnmatch_lines([f"*argument {option}: {message}*"])


# -- a huge answer ---------------------------------------------------------------------------------
def test_a_response_over_the_cap_is_refused_before_it_is_encoded(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    art = open_artifact(A.onnx_artifact(tmp_path / "arts" / "bomb", blow_up(400_000), name="bomb", **IFACE))
    with ModelPool() as pool:
        model = ServedModel(art, pool, max_response=1024 * 1024)
        with TestClient(build_app(model), raise_server_exceptions=False) as c:
            deadline = time.monotonic() + 60
            while c.get("/v2/health/ready").status_code != 200 and time.monotonic() < deadline:
                time.sleep(0.05)
            r = c.post("/v2/models/bomb/infer", json=encode_request({"input": np.ones((1, 4), np.float32)}))
    assert r.status_code == 500
    assert r.json() == {
        "error": "model bomb: the response would hold 400000 values (up to 9.2 MiB as JSON), over the cap "
        "of 1 MiB (--max-response-mb); not encoded"
    }


@pytest.mark.slow  # the worker computes 80 MB answers, under load this takes a while
def test_a_model_whose_output_is_huge_fails_serving_without_growing_the_gate(pytester) -> None:
    A.onnx_artifact(
        pytester.path / "arts" / "bomb",
        blow_up(20_000_000),
        name="bomb",
        serving={"rate_per_s": 20, "requests": 40, "duration_s": 5},
        **IFACE,
    )
    r = run(pytester, "--model-checks-worker-memory", "1024")
    r.assert_outcomes(failed=1)
    r.stdout.fnmatch_lines(
        [
            "*- infer on *: HTTP 500, expected 200: model bomb: the response would hold 20000000 values "
            "(up to 457.8 MiB as JSON), over the cap of 64 MiB (--max-response-mb); not encoded*"
        ]
    )
    assert "Traceback" not in r.stdout.str()


# -- hostile clients ---------------------------------------------------------------------------------
def test_deeply_nested_json_gets_a_400_and_the_service_goes_on(tmp_path: Path) -> None:
    from starlette.testclient import TestClient

    art = open_artifact(A.onnx_artifact(tmp_path / "arts" / "tiny", name="tiny", **IFACE))
    with ModelPool() as pool, TestClient(build_app(ServedModel(art, pool)), raise_server_exceptions=False) as c:
        deadline = time.monotonic() + 60
        while c.get("/v2/health/ready").status_code != 200 and time.monotonic() < deadline:
            time.sleep(0.05)
        bomb = b"[" * 100_000 + b"]" * 100_000
        r = c.post("/v2/models/tiny/infer", content=bomb, headers={"content-type": "application/json"})
        assert r.status_code == 400
        assert r.json() == {
            "error": "request body is nested too deeply to parse (arrays and objects inside each other)"
        }
        assert (
            c.post("/v2/models/tiny/infer", json=encode_request({"input": np.ones((1, 4), np.float32)})).status_code
            == 200
        )


@pytest.fixture
def service(tmp_path: Path):
    d = A.onnx_artifact(tmp_path / "arts" / "tiny", name="tiny", **IFACE)
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "model_checks",
            "serve",
            str(d),
            "--port",
            "0",
            "--isolate",
            "off",
            "--read-timeout",
            "1",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        start_new_session=True,
        cwd=REPO,
    )
    try:
        url = proc.stdout.readline().strip()
        host, port = url.removeprefix("http://").rsplit(":", 1)
        yield host, int(port)
    finally:  # stopped as a user stops it, so it removes its private home (a SIGKILL leaves it to the next service)
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@pytest.mark.parametrize(
    "sent",
    [
        b"",
        b"POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Le",
        b'POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{"in',
    ],
    ids=["nothing", "half-a-head", "half-a-body"],
)
def test_a_connection_that_stops_halfway_is_closed_after_the_read_timeout(service, sent: bytes) -> None:
    with socket.create_connection(service, timeout=30) as s:
        s.sendall(sent)
        start = time.monotonic()
        got = s.recv(1024)  # b"" once the service closes the connection
        waited = time.monotonic() - start
    assert got == b"" and 0.5 < waited < 25


def _request(body: bytes) -> bytes:
    head = f"POST /v2/models/tiny/infer HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: {len(body)}\r\n\r\n"
    return head.encode() + body


def _response(s: socket.socket) -> bytes:
    """One whole response (its head, and a body of its Content-Length) read off a keep-alive connection."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += s.recv(65536) or pytest.fail(f"closed after {data!r}")
    head, body = data.split(b"\r\n\r\n", 1)
    length = int(next(h.split(b":")[1] for h in head.split(b"\r\n") if h.lower().startswith(b"content-length")))
    while len(body) < length:
        body += s.recv(65536) or pytest.fail("closed in the body")
    return head


def test_a_request_that_keeps_arriving_is_served_however_long_it_takes_and_the_next_one_is_watched_too(service) -> None:
    """The read timeout (1 s here) counts from the last bytes the client sent, not from the first: a request sent
    a few bytes at a time over three times the timeout is answered. On the same connection, once idle for longer
    than the timeout, the next request is watched again: stopping halfway through its head closes the connection."""
    body = json.dumps(encode_request({"input": np.ones((1, 4), np.float32)})).encode()
    with socket.create_connection(service, timeout=30) as s:
        message = _request(body)
        step = len(message) // 8 + 1
        for i in range(0, len(message), step):
            s.sendall(message[i : i + step])
            time.sleep(0.4)  # 8 pieces, 3.2 s in all, never 1 s without a byte
        assert _response(s).startswith(b"HTTP/1.1 200")
        time.sleep(1.5)  # idle past the read timeout, well within the keep-alive
        s.sendall(_request(body)[:40])
        start = time.monotonic()
        got = s.recv(1024)
        waited = time.monotonic() - start
    assert got == b"" and waited < 25


# -- no orphans ----------------------------------------------------------------------------------
def _processes_naming(text: str) -> list[int]:
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit() and int(p) != os.getpid():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    if text.encode() in f.read():
                        pids.append(int(p))
            except OSError:
                pass
    return pids


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_gate_killed_while_serving_leaves_no_service_worker_or_temporary_file(tmp_path: Path) -> None:
    root = tmp_path / "arts"
    A.onnx_artifact(
        root / "tiny", name="tiny", serving={"rate_per_s": 5, "requests": 10000, "duration_s": 600}, **IFACE
    )
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST")}
    env.update(TMPDIR=str(tmp), PYTHONPATH=str(REPO))
    gate = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "pytest",
            "--model-checks",
            str(root),
            "-p",
            "no:cacheprovider",
            "-m",
            "serving",
            "--rootdir",
            str(tmp_path),
            "-c",
            os.devnull,
            "--model-checks-serving-max-duration",
            "600",
        ],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 180
        # wait for two sandboxes: the gate's own worker's and the service's
        while time.monotonic() < deadline and len(list(tmp.rglob("model-checks-workers-*"))) < 2:
            assert gate.poll() is None, "the gate ended before its service and workers started"
            time.sleep(0.5)
        children = _processes_naming(str(tmp_path))
        assert len(children) >= 2, children  # the service and its worker (the worker's path holds the temp dir)
        gate.send_signal(signal.SIGTERM)
        gate.wait(60)
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and _processes_naming(str(tmp_path)):
            time.sleep(0.5)
        assert _processes_naming(str(tmp_path)) == []
        assert list(tmp.iterdir()) == []
    finally:
        for pid in _processes_naming(str(tmp_path)):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        if gate.poll() is None:
            gate.kill()
            gate.wait()
