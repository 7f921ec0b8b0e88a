"""A service in a subprocess of its own process group, on a free loopback port, killed in every case."""

from __future__ import annotations

import os
import selectors
import signal
import subprocess
import sys
import tempfile
import time
from contextlib import contextmanager
from typing import Iterator

from model_checks.core.artifact import Artifact
from model_checks.core.errors import ServiceFailed
from model_checks.isolation.limits import Limits
from model_checks.serving.net import split_url

STARTUP_TIMEOUT_S = 120.0
STOP_GRACE_S = 10.0


def serve_command(artifact: Artifact, trust_code: bool, isolation: Limits | None) -> list[str]:
    cmd = [sys.executable, "-m", "model_checks", "serve", str(artifact.dir), "--root", str(artifact.root), "--port", "0"]
    if trust_code:
        cmd.append("--trust-code")
    if isolation is None:
        cmd += ["--isolate", "off"]
    else:
        cmd += ["--worker-memory", str(isolation.memory_mb), "--timeout", str(isolation.timeout_s)]
    return cmd


def _first_line(proc: subprocess.Popen, deadline: float) -> str:
    assert proc.stdout is not None
    sel = selectors.DefaultSelector()
    sel.register(proc.stdout, selectors.EVENT_READ)
    buf = b""
    try:
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0 or not sel.select(left):
                return ""
            chunk = os.read(proc.stdout.fileno(), 4096)
            if not chunk:
                return ""
            buf += chunk
    finally:
        sel.close()
    return buf.split(b"\n", 1)[0].decode("utf-8", "replace").strip()


def _stop(proc: subprocess.Popen) -> None:
    """SIGTERM to the group (graceful), SIGKILL after a grace; never leaves the group running."""
    for sig, wait in ((signal.SIGTERM, STOP_GRACE_S), (signal.SIGKILL, STOP_GRACE_S)):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            break
        try:
            proc.wait(wait)
            break
        except subprocess.TimeoutExpired:
            continue
    try:  # a child of the service that outlived it is still in the group
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: str, n: int = 12) -> str:
    with open(path, encoding="utf-8", errors="replace") as f:
        lines = [line.rstrip() for line in f.read().splitlines() if line.strip()]
    return "\n".join(lines[-n:]) if lines else "(nothing on stderr)"


@contextmanager
def running_service(artifact: Artifact, trust_code: bool = False, isolation: Limits | None = None,
                    startup_timeout_s: float = STARTUP_TIMEOUT_S) -> Iterator[str]:
    """Start `model-checks serve` for the artifact; yield its base URL once /v2/health/ready answers 200."""
    with tempfile.NamedTemporaryFile(prefix="model-checks-serve-", suffix=".log", delete=False) as log:
        log_path = log.name
    with open(log_path, "wb") as err:  # the child holds its own copy of the descriptor
        proc = subprocess.Popen(serve_command(artifact, trust_code, isolation), stdout=subprocess.PIPE, stderr=err,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    try:
        deadline = time.monotonic() + startup_timeout_s
        url = _first_line(proc, deadline)
        if not url.startswith("http://"):
            raise ServiceFailed(f"the service for {artifact.id} did not start within {startup_timeout_s:g} s "
                                f"(exit code {proc.poll()}); its stderr:\n{_tail(log_path)}")
        split_url(url)
        why = wait_ready(url, deadline)
        if why:
            raise ServiceFailed(f"the service for {artifact.id} at {url} never became ready: {why}")
        yield url
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()
        os.unlink(log_path)


def wait_ready(url: str, deadline: float) -> str | None:
    """None once GET /v2/health/ready is 200; else why not (a load error the service reports, or a timeout)."""
    import httpx

    last = "no answer"
    with httpx.Client(timeout=5.0) as client:
        while time.monotonic() < deadline:
            try:
                r = client.get(f"{url}/v2/health/ready")
                if r.status_code == 200:
                    return None
                body = r.json() if r.headers.get("content-type", "").startswith("application/json") else {}
                if body.get("error"):
                    return str(body["error"])
                last = f"HTTP {r.status_code}"
            except httpx.HTTPError as e:
                last = f"{type(e).__name__}"
            time.sleep(0.05)
    return f"not ready before the startup timeout ({last})"
