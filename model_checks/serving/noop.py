"""A no-op HTTP endpoint on loopback, in a thread: it answers every request 200 at once. What the load
generator's own accuracy and added latency are measured against (bench/serving.py, tests). Given `delay`
(seconds for the n-th request), it answers late; `serial` answers one request at a time, a service whose
capacity is 1/delay requests/s."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from typing import Callable, Iterator

ANSWER = b"HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}"


class _Delays:
    def __init__(self, delay: Callable[[int], float] | None, serial: bool):
        self.delay, self.serial, self.count, self.lock = delay, serial, 0, asyncio.Lock()

    async def wait(self) -> None:
        if self.delay is None:
            return
        n, self.count = self.count, self.count + 1
        if self.serial:
            async with self.lock:
                await asyncio.sleep(self.delay(n))
        else:
            await asyncio.sleep(self.delay(n))


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, delays: _Delays) -> None:
    try:
        while True:
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if not line:
                break
            await reader.readexactly(length)
            await delays.wait()
            writer.write(ANSWER)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@contextmanager
def noop_server(delay: Callable[[int], float] | None = None, serial: bool = False) -> Iterator[str]:
    """Yield `http://127.0.0.1:PORT/v2/models/noop/infer`; stopped on exit."""
    from model_checks.serving.net import bound_socket

    loop = asyncio.new_event_loop()
    sock = bound_socket("127.0.0.1", 0)
    started = threading.Event()
    holder: dict = {}

    async def main() -> None:
        delays = _Delays(delay, serial)
        holder["server"] = await asyncio.start_server(lambda r, w: _handle(r, w, delays), sock=sock)
        holder["stop"] = asyncio.Event()
        started.set()
        await holder["stop"].wait()
        holder["server"].close()

    thread = threading.Thread(target=loop.run_until_complete, args=(main(),), daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield f"http://127.0.0.1:{sock.getsockname()[1]}/v2/models/noop/infer"
    finally:
        loop.call_soon_threadsafe(holder["stop"].set)
        thread.join(10)
        loop.close()
