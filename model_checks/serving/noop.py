"""A no-op HTTP endpoint on loopback, in a thread: it answers every request 200 at once. What the load
generator's own accuracy and added latency are measured against (bench/serving.py, tests)."""

from __future__ import annotations

import asyncio
import threading
from contextlib import contextmanager
from typing import Iterator

ANSWER = b'HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}'


async def _handle(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while True:
            length = 0
            while (line := await reader.readline()) not in (b"\r\n", b""):
                if line.lower().startswith(b"content-length:"):
                    length = int(line.split(b":", 1)[1])
            if not line:
                break
            await reader.readexactly(length)
            writer.write(ANSWER)
    except (ConnectionError, asyncio.IncompleteReadError):
        pass
    finally:
        writer.close()


@contextmanager
def noop_server() -> Iterator[str]:
    """Yield `http://127.0.0.1:PORT/v2/models/noop/infer`; stopped on exit."""
    from model_checks.serving.net import bound_socket

    loop = asyncio.new_event_loop()
    sock = bound_socket("127.0.0.1", 0)
    started = threading.Event()
    holder: dict = {}

    async def main() -> None:
        holder["server"] = await asyncio.start_server(_handle, sock=sock)
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
