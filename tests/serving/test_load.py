"""The load generator: open-loop schedules, latency from the intended send time, loopback only."""

import numpy as np
import pytest

from model_checks.serving.load import Target, counted_time, open_loop, schedule, sweep
from model_checks.serving.net import NotLoopback, bound_socket, require_loopback, split_url
from model_checks.serving.noop import noop_server


def test_constant_and_poisson_schedules_offer_exactly_the_rate():
    assert np.allclose(schedule(100, 5), [0, 0.01, 0.02, 0.03, 0.04])
    t = schedule(100, 1000, "poisson", seed=3)
    assert (
        np.all(np.diff(t) >= 0)
        and t[0] == 0
        and t[-1] <= 10.0
        and np.array_equal(t, schedule(100, 1000, "poisson", seed=3))
    )
    gaps = np.diff(t)
    assert gaps.std() / gaps.mean() > 0.8  # exponential-like spacing (cv 1), not constant (cv 0)
    with pytest.raises(ValueError, match="arrivals 'burst': expected constant or poisson"):
        schedule(1, 1, "burst")


@pytest.mark.parametrize("host", ["10.0.0.1", "0.0.0.0", "example.com", "192.168.1.2"])
def test_any_address_but_loopback_is_refused(host):
    with pytest.raises(NotLoopback) as e:
        split_url(f"http://{host}:8000/v2")
    assert f"host {host!r} is not" in str(e.value) and "loopback" in str(e.value)
    with pytest.raises(NotLoopback):
        bound_socket(host, 0)


def test_loopback_names_are_accepted():
    assert [require_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "127.0.0.2")] == [
        "127.0.0.1",
        "127.0.0.1",
        "::1",
        "127.0.0.2",
    ]
    assert split_url("http://localhost:9/v2/") == ("127.0.0.1", 9, "/v2")


def test_open_loop_against_a_no_op_endpoint_answers_every_request():
    with noop_server() as url:
        r = open_loop(Target(url, (b"{}",)), rate=200, requests=100, duration_s=5)
    assert (r.sent, r.ok, r.errors, r.stopped_by) == (100, 100, 0, "requests")
    assert r.achieved_rate > 0 and r.latency_ms(50) is not None and r.histogram.get_total_count() == 100
    assert set(r.as_dict()["latency_ms"]) == {"p50", "p95", "p99", "max"}


def test_counted_time_is_the_schedule_plus_the_tails_median_lateness():
    assert counted_time(50, 300, 5.98, []) == 6.0  # never less than the schedule's own span
    assert counted_time(50, 300, 5.98, [0.002] * 59 + [0.4]) == 6.0  # a late last answer does not count
    assert counted_time(50, 300, 5.98, [0.1, 0.2, 0.3]) == pytest.approx(6.18)  # a late tail does


def test_a_stall_of_the_last_answers_is_latency_not_a_missed_rate():
    # counted to the last answer, 0.3 s more over a 2 s schedule would be 87% of the rate
    with noop_server(delay=lambda n: 0.3 if n >= 197 else 0.0) as url:
        r = open_loop(Target(url, (b"{}",)), rate=100, requests=200, duration_s=5)
    assert (r.ok, r.errors) == (200, 0) and r.achieved_rate >= 99 and r.latency_ms(100) >= 300


def test_a_service_that_falls_behind_misses_the_rate():
    with noop_server(delay=lambda n: 0.0125, serial=True) as url:  # 80 requests/s at most, offered 100
        r = open_loop(Target(url, (b"{}",)), rate=100, requests=100, duration_s=5)
    assert (r.ok, r.errors) == (100, 0) and r.achieved_rate < 90


def test_the_wall_time_cap_stops_the_schedule():
    with noop_server() as url:
        r = open_loop(Target(url, (b"{}",)), rate=100, requests=10_000, duration_s=0.2)
    assert r.stopped_by == "duration" and r.sent == 21  # offsets 0.00 .. 0.20 s


def test_a_dead_endpoint_is_counted_as_errors_not_raised():
    sock = bound_socket("127.0.0.1", 0)
    port = sock.getsockname()[1]
    sock.close()
    r = open_loop(
        Target(f"http://127.0.0.1:{port}/v2/models/m/infer", (b"{}",)), rate=100, requests=5, duration_s=1, timeout_s=1
    )
    assert (r.ok, r.errors) == (0, 5) and r.error_samples[0].startswith("ConnectionRefusedError")


def test_sweep_reports_each_concurrency_and_where_throughput_stops_growing():
    with noop_server() as url:
        s = sweep(Target(url, (b"{}",)), (1, 2), requests=50, duration_s=1)
    assert [lv.concurrency for lv in s.levels] == [1, 2] and all(lv.errors == 0 for lv in s.levels)
    assert s.knee in (1, 2) and s.render()[-1].startswith("      throughput stops growing")


def test_a_keep_alive_connection_the_server_closed_while_idle_is_not_an_error():
    """A server may close an idle keep-alive connection (uvicorn after 5 s by default) without saying so; the next
    request on it finds it closed before any answer. The client sends it again on a fresh connection, as HTTP
    clients do; a connection that fails when fresh is still an error (test_a_dead_endpoint_...)."""
    import asyncio

    from model_checks.serving.load import _Client, http_post

    async def one_answer_then_close(reader, writer):
        await reader.readuntil(b"\r\n\r\n")
        length = 2
        await reader.readexactly(length)
        writer.write(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\n{}")  # keep-alive implied, then closed anyway
        await writer.drain()
        writer.close()

    async def main():
        server = await asyncio.start_server(one_answer_then_close, "127.0.0.1", 0)
        port = server.sockets[0].getsockname()[1]
        client = _Client("127.0.0.1", port)
        try:
            answers = []
            for _ in range(3):
                answers.append(await client.send(http_post("127.0.0.1", port, "/x", b"{}")))
                await asyncio.sleep(0.05)  # the server has closed the idle connection by now
            return answers
        finally:
            client.close()
            server.close()
            await server.wait_closed()

    assert asyncio.run(main()) == [(200, b"{}")] * 3


def test_binary_extension_bodies_carry_the_length_of_their_json_part():
    from model_checks.serving.load import Target

    target = Target(
        "http://127.0.0.1:8000/v2/models/m/infer", (b'{"inputs":[]}\0\0\0\0', b"{}"), header_lengths=(13, 2)
    )
    _, _, (first, second) = target.requests()
    head, _, body = first.partition(b"\r\n\r\n")
    assert body == b'{"inputs":[]}\0\0\0\0'
    assert b"\r\nContent-Type: application/octet-stream\r\n" in head
    assert b"\r\nInference-Header-Content-Length: 13\r\n" in head and b"\r\nContent-Length: 17" in head
    plain = Target("http://127.0.0.1:8000/x", (b"{}",)).requests()[2][0]
    assert b"Inference-Header" not in plain and b"Content-Type: application/json" in plain
