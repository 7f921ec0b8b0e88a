"""The load generator: open-loop arrivals at a declared rate (constant, or Poisson with a seed), latency
measured from each request's intended send time, so a slow answer delays no later request's clock (no
coordinated omission), recorded in an HdrHistogram with microsecond resolution; and a short closed-loop
sweep. Bounded by a request count, a wall-time cap and a per-request timeout; loopback targets only.

The HTTP client is a minimal keep-alive HTTP/1.1 client on asyncio streams: a general client costs a
millisecond a request in Python, which at 1,000 requests/s is the whole budget of the generator."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence

import numpy as np

from model_checks.serving.net import split_url

LOWEST_US, HIGHEST_US, SIGNIFICANT = 1, 120_000_000, 3  # 1 µs .. 120 s at 3 significant digits
PERCENTILES = (50.0, 95.0, 99.0)
MAX_CONNECTIONS = 64
SHOWN_ERRORS = 3
MAX_RESPONSE_BYTES = 64 * 1024**2  # the gate reads no larger answer (--model-checks-serving-max-response-mb)
TAIL_SHARE = 0.2  # the final share of the schedule whose median lateness closes a run (counted_time)


class _Conn:
    """One keep-alive connection; a request on it returns (status, body), a body of at most `max_body` bytes."""

    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter, max_body: int = MAX_RESPONSE_BYTES):
        self.reader, self.writer, self.usable = reader, writer, True
        self.max_body = max_body

    async def request(self, data: bytes) -> tuple[int, bytes]:
        self.writer.write(data)
        line = await self.reader.readline()
        if not line:
            self.usable = False
            raise ConnectionError("connection closed by the server before an answer")
        status = int(line.split(b" ", 2)[1])
        length, close = None, False
        while (h := await self.reader.readline()) not in (b"\r\n", b"\n", b""):
            key, _, value = h.decode("latin-1").partition(":")
            key = key.strip().lower()
            if key == "content-length":
                length = int(value)
            elif key == "connection" and "close" in value.lower():
                close = True
        if length is not None and length > self.max_body:
            self.usable = False
            raise ValueError(
                f"a response of {length} bytes exceeds the cap of {self.max_body} bytes "
                "(--model-checks-serving-max-response-mb); not read"
            )
        body = (
            await self.reader.readexactly(length) if length is not None else await self.reader.read(self.max_body + 1)
        )
        if len(body) > self.max_body:
            self.usable = False
            raise ValueError(f"a response of more than {self.max_body} bytes exceeds the cap; not read further")
        self.usable = not close and length is not None
        return status, body

    def close(self) -> None:
        self.usable = False
        self.writer.close()


class _Client:
    """A bounded pool of connections to one host; requests beyond it wait (their clock keeps running)."""

    def __init__(
        self, host: str, port: int, max_connections: int = MAX_CONNECTIONS, max_body: int = MAX_RESPONSE_BYTES
    ):
        self.host, self.port, self.max_body = host, port, max_body
        self._idle: list[_Conn] = []
        self._slots = asyncio.Semaphore(max_connections)

    async def _open(self) -> _Conn:
        return _Conn(*await asyncio.open_connection(self.host, self.port), self.max_body)

    async def send(self, data: bytes) -> tuple[int, bytes]:
        async with self._slots:
            reused = bool(self._idle)
            conn = self._idle.pop() if reused else await self._open()
            try:
                result = await conn.request(data)
            except ConnectionError:
                conn.close()
                if not reused:
                    raise
                # The server closed a keep-alive connection while it sat idle (between the phases of a comparison,
                # say) before reading this request: send it again on a fresh one, as HTTP clients do. The latency
                # still counts from the request's intended send time.
                conn = await self._open()
                try:
                    result = await conn.request(data)
                except BaseException:
                    conn.close()
                    raise
            except BaseException:
                conn.close()
                raise
            if conn.usable:
                self._idle.append(conn)
            else:
                conn.close()
            return result

    def close(self) -> None:
        for c in self._idle:
            c.close()
        self._idle.clear()


def http_post(host: str, port: int, path: str, body: bytes, header_length: int | None = None) -> bytes:
    """A keep-alive HTTP/1.1 POST of a JSON body, ready to send; with `header_length`, a body in the binary tensor
    extension (its JSON part that long, then raw tensors)."""
    kind = "application/json" if header_length is None else "application/octet-stream"
    extra = "" if header_length is None else f"Inference-Header-Content-Length: {header_length}\r\n"
    head = (
        f"POST {path} HTTP/1.1\r\nHost: {host}:{port}\r\nContent-Type: {kind}\r\n{extra}"
        f"Content-Length: {len(body)}\r\n\r\n"
    ).encode("ascii")
    return head + body


def schedule(rate: float, n: int, arrivals: str = "constant", seed: int = 0) -> np.ndarray:
    """Intended send times (s from the start) of `n` requests at `rate`/s. Poisson arrivals are drawn as a
    Poisson process conditioned on `n` events in n/rate seconds (sorted uniform times, seeded), so the
    offered rate is exactly `rate` and only the spacing is random."""
    if arrivals == "constant":
        return np.arange(n) / rate
    if arrivals == "poisson":
        t = np.sort(np.random.default_rng(seed).uniform(0.0, n / rate, n))
        return t - t[0]
    raise ValueError(f"arrivals {arrivals!r}: expected constant or poisson")


def _histogram() -> Any:
    from model_checks.core.requires import require

    require("hdrh", "serving", "serving")
    from hdrh.histogram import HdrHistogram

    return HdrHistogram(LOWEST_US, HIGHEST_US, SIGNIFICANT)


def counted_time(rate: float, sent: int, last_offset_s: float, tail_lateness_s: Sequence[float]) -> float:
    """The seconds an open-loop run counts for its achieved rate: from the first intended send to the last one
    plus the median lateness of the answers to the final fifth of the schedule, and never less than the
    schedule's own span (sent / rate; each request owns 1/rate of it). A service that falls behind answers
    that whole fifth late, by a backlog that grows with the run, so the shortfall counts; a stall that delays
    only the last few answers is a latency matter that p99 gates, not a missed rate (counted to the last
    answer, a 100 ms stall failed the 99% gate of a 6 s run)."""
    drain = float(np.median(tail_lateness_s)) if len(tail_lateness_s) else 0.0
    return max(sent / rate, last_offset_s + drain)


@dataclass
class LoadResult:
    """One open-loop run: what was offered, what was answered, and the latency distribution."""

    target_rate: float
    arrivals: str
    sent: int
    ok: int
    errors: int
    elapsed_s: float
    stopped_by: str  # "requests" or "duration"
    error_samples: tuple[str, ...] = ()
    histogram: Any = field(default=None, repr=False)

    @property
    def achieved_rate(self) -> float:
        """Requests answered without error per second of the run's counted time (`counted_time`). A service
        that keeps up achieves the rate exactly; one that falls behind answers its backlog late."""
        return self.ok / self.elapsed_s if self.elapsed_s > 0 else 0.0

    def latency_ms(self, percentile: float) -> float | None:
        if self.histogram is None or self.histogram.get_total_count() == 0:
            return None
        return self.histogram.get_value_at_percentile(percentile) / 1000.0

    @property
    def latencies_ms(self) -> dict[str, float | None]:
        out = {f"p{p:g}": self.latency_ms(p) for p in PERCENTILES}
        out["max"] = (
            self.histogram.get_max_value() / 1000.0
            if self.histogram is not None and self.histogram.get_total_count()
            else None
        )
        return out

    def merged(self, other: LoadResult) -> LoadResult:
        """Two runs of the same target as one (the interleaved phases of a comparison)."""
        hist = _histogram()
        for h in (self.histogram, other.histogram):
            if h is not None:
                hist.add(h)
        return LoadResult(
            self.target_rate,
            self.arrivals,
            self.sent + other.sent,
            self.ok + other.ok,
            self.errors + other.errors,
            self.elapsed_s + other.elapsed_s,
            "requests" if "requests" == self.stopped_by == other.stopped_by else "duration",
            (self.error_samples + other.error_samples)[:SHOWN_ERRORS],
            hist,
        )

    def as_dict(self) -> dict[str, Any]:
        return {
            "target_rate": self.target_rate,
            "arrivals": self.arrivals,
            "sent": self.sent,
            "ok": self.ok,
            "errors": self.errors,
            "achieved_rate": round(self.achieved_rate, 3),
            "elapsed_s": round(self.elapsed_s, 4),
            "stopped_by": self.stopped_by,
            "latency_ms": {k: None if v is None else round(v, 4) for k, v in self.latencies_ms.items()},
            "error_samples": list(self.error_samples),
        }


@dataclass(frozen=True)
class Target:
    """Where requests go: an infer URL on loopback, and the request bodies (cycled)."""

    url: str
    bodies: tuple[bytes, ...]
    max_response_bytes: int = MAX_RESPONSE_BYTES
    header_lengths: tuple[int, ...] = ()  # binary tensor extension bodies: each one's JSON length (else JSON bodies)

    def requests(self) -> tuple[str, int, list[bytes]]:
        host, port, path = split_url(self.url)
        lengths = self.header_lengths or (None,) * len(self.bodies)
        return host, port, [http_post(host, port, path, b, n) for b, n in zip(self.bodies, lengths)]


async def _open_loop(
    target: Target,
    rate: float,
    requests: int,
    duration_s: float,
    arrivals: str,
    seed: int,
    timeout_s: float,
    progress: Callable[[int, int, int], None] | None,
) -> LoadResult:
    host, port, payloads = target.requests()
    client = _Client(host, port, max_body=target.max_response_bytes)
    hist = _histogram()
    loop = asyncio.get_running_loop()
    offsets = schedule(rate, requests, arrivals, seed)
    ok = errors = 0
    samples: list[str] = []
    lateness: dict[int, float] = {}  # request index -> seconds from its intended send to its answer

    async def one(i: int, intended: float) -> None:
        nonlocal ok, errors
        try:
            status, body = await asyncio.wait_for(client.send(payloads[i % len(payloads)]), timeout_s)
            problem = None if status == 200 else f"HTTP {status}: {body[:200].decode('utf-8', 'replace')}"
        except asyncio.TimeoutError:
            problem = f"no answer within {timeout_s:g} s"
        except (OSError, ValueError, asyncio.IncompleteReadError) as e:
            problem = f"{type(e).__name__}: {e}"
        done = loop.time()
        if problem is None:
            ok += 1
            lateness[i] = done - intended
            hist.record_value(max(LOWEST_US, min(HIGHEST_US, int(lateness[i] * 1e6))))
        else:
            errors += 1
            if len(samples) < SHOWN_ERRORS:
                samples.append(problem)

    start = loop.time() + 0.02
    tasks = []
    stopped_by = "requests"
    try:
        for i, off in enumerate(offsets):
            if off > duration_s:
                stopped_by = "duration"
                break
            intended = start + float(off)
            delay = intended - loop.time()
            if delay > 0:
                await asyncio.sleep(delay)
            tasks.append(asyncio.create_task(one(i, intended)))
            if progress is not None and i % 50 == 0:
                progress(len(tasks), ok, errors)
        await asyncio.gather(*tasks)
    finally:
        for t in tasks:
            t.cancel()
        client.close()
    if progress is not None:
        progress(len(tasks), ok, errors)
    sent = len(tasks)
    tail = [late for i, late in lateness.items() if i >= int((1 - TAIL_SHARE) * sent)]
    elapsed = counted_time(rate, sent, float(offsets[sent - 1]) if sent else 0.0, tail)
    return LoadResult(rate, arrivals, sent, ok, errors, elapsed, stopped_by, tuple(samples), hist)


def open_loop(
    target: Target,
    rate: float,
    requests: int,
    duration_s: float,
    arrivals: str = "constant",
    seed: int = 0,
    timeout_s: float = 5.0,
    progress: Callable[[int, int, int], None] | None = None,
) -> LoadResult:
    """Send up to `requests` requests at `rate`/s for at most `duration_s` s (plus `timeout_s` to drain)."""
    return asyncio.run(_open_loop(target, rate, requests, duration_s, arrivals, seed, timeout_s, progress))


@dataclass(frozen=True)
class SweepLevel:
    concurrency: int
    throughput_per_s: float
    p50_ms: float | None
    errors: int


@dataclass(frozen=True)
class Sweep:
    """Closed-loop throughput at each concurrency; `knee` is where it stops growing (by less than `growth`)."""

    levels: tuple[SweepLevel, ...]
    growth: float = 0.10

    @property
    def knee(self) -> int:
        for prev, cur in zip(self.levels, self.levels[1:]):
            if cur.throughput_per_s < prev.throughput_per_s * (1 + self.growth):
                return prev.concurrency
        return self.levels[-1].concurrency

    @property
    def peak_per_s(self) -> float:
        return max(lv.throughput_per_s for lv in self.levels)

    def render(self) -> list[str]:
        lines = [f"      {'concurrency':>11} {'req/s':>9} {'p50 ms':>8} {'errors':>6}"]
        for lv in self.levels:
            p50 = "-" if lv.p50_ms is None else f"{lv.p50_ms:.2f}"
            lines.append(f"      {lv.concurrency:>11} {lv.throughput_per_s:>9.1f} {p50:>8} {lv.errors:>6}")
        lines.append(f"      throughput stops growing (by {self.growth:.0%} or more) beyond concurrency {self.knee}")
        return lines


async def _closed_loop(
    target: Target, concurrency: int, requests: int, duration_s: float, timeout_s: float
) -> SweepLevel:
    host, port, payloads = target.requests()
    client = _Client(host, port, concurrency, target.max_response_bytes)
    loop = asyncio.get_running_loop()
    hist = _histogram()
    done = errors = 0
    start = loop.time()

    async def worker(w: int) -> None:
        nonlocal done, errors
        i = w
        while done + errors < requests and loop.time() - start < duration_s:
            t0 = loop.time()
            try:
                status, _ = await asyncio.wait_for(client.send(payloads[i % len(payloads)]), timeout_s)
            except (asyncio.TimeoutError, OSError, ValueError, asyncio.IncompleteReadError):
                status = 0
            if status == 200:
                done += 1
                hist.record_value(max(LOWEST_US, min(HIGHEST_US, int((loop.time() - t0) * 1e6))))
            else:
                errors += 1
            i += concurrency

    try:
        await asyncio.gather(*(worker(w) for w in range(concurrency)))
    finally:
        client.close()
    elapsed = max(loop.time() - start, 1e-9)
    p50 = hist.get_value_at_percentile(50) / 1000.0 if hist.get_total_count() else None
    return SweepLevel(concurrency, done / elapsed, p50, errors)


def sweep(
    target: Target,
    levels: Sequence[int] = (1, 2, 4),
    requests: int = 200,
    duration_s: float = 1.0,
    timeout_s: float = 5.0,
) -> Sweep:
    """Closed loop at each concurrency, each level bounded by `requests` and `duration_s`."""
    return Sweep(tuple(asyncio.run(_closed_loop(target, c, requests, duration_s, timeout_s)) for c in levels))
