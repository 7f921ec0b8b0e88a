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
from pathlib import Path
from typing import BinaryIO, Callable, Iterator

from model_checks.core.artifact import Artifact
from model_checks.core.errors import ServiceFailed
from model_checks.isolation.limits import Limits
from model_checks.safety.text import printable
from model_checks.serving.net import split_url

STARTUP_TIMEOUT_S = 120.0
# The service runs this very model_checks (not whichever `python -m model_checks` finds from the current directory),
# isolated (-I: no current directory, PYTHONPATH or user site on its path, so no module of the gated tree shadows one).
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv.pop(1)); from model_checks.cli import main; sys.exit(main(sys.argv[1:]))"
)
STOP_GRACE_S = 10.0


def serve_command(
    artifact: Artifact, trust_code: bool, isolation: Limits | None, max_response_mb: float | None = None
) -> list[str]:
    cmd = [
        sys.executable,
        "-I",
        "-c",
        _BOOT,
        str(Path(__file__).resolve().parents[2]),
        "serve",
        str(artifact.dir),
        "--root",
        str(artifact.root),
        "--port",
        "0",
    ]
    if max_response_mb is not None:
        cmd += ["--max-response-mb", f"{max_response_mb:g}"]
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


def _tail(log: BinaryIO, n: int = 12, most: int = 64 * 1024) -> str:
    log.seek(0, os.SEEK_END)
    log.seek(max(0, log.tell() - most))
    text = log.read(most).decode("utf-8", "replace")
    lines = [printable(line.rstrip()) for line in text.splitlines() if line.strip()]
    return "\n".join(lines[-n:]) if lines else "(nothing on stderr)"


def _parent_death_signal() -> Callable[[], None]:
    """A preexec_fn: the child gets SIGTERM (a graceful stop, which removes its workers' sandbox) when the process
    that started it dies, even by SIGKILL; Linux only, nothing elsewhere. libc is looked up here, in the parent, so
    the forked child only makes one system call."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
    except (OSError, AttributeError):
        return lambda: None
    parent = os.getpid()

    def set_it() -> None:
        prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        if os.getppid() != parent:  # the parent died before the signal was armed
            os.kill(os.getpid(), signal.SIGTERM)

    return set_it


@contextmanager
def running_service(
    artifact: Artifact,
    trust_code: bool = False,
    isolation: Limits | None = None,
    startup_timeout_s: float = STARTUP_TIMEOUT_S,
    max_response_mb: float | None = None,
) -> Iterator[str]:
    """Start `model-checks serve` for the artifact; yield its base URL once /v2/health/ready answers 200. The service
    dies with this process (a parent-death signal), and its stderr log is a file already unlinked: nothing is left
    behind even when the gate is killed."""
    startup_timeout_s = min(startup_timeout_s, STARTUP_TIMEOUT_S)
    log = tempfile.TemporaryFile(prefix="model-checks-serve-", suffix=".log")  # unlinked at once (O_TMPFILE or unlink)
    proc = subprocess.Popen(
        serve_command(artifact, trust_code, isolation, max_response_mb),
        stdout=subprocess.PIPE,
        stderr=log,
        stdin=subprocess.DEVNULL,
        start_new_session=True,
        preexec_fn=_parent_death_signal(),
    )
    try:
        deadline = time.monotonic() + startup_timeout_s
        url = _first_line(proc, deadline)
        if not url.startswith("http://"):
            raise ServiceFailed(
                f"the service for {artifact.id} did not start within {startup_timeout_s:g} s "
                f"(exit code {proc.poll()}); its stderr:\n{_tail(log)}"
            )
        split_url(url)
        why = wait_ready(url, deadline)
        if why:
            raise ServiceFailed(f"the service for {artifact.id} at {url} never became ready: {why}")
        yield url
    finally:
        _stop(proc)
        if proc.stdout is not None:
            proc.stdout.close()
        log.close()


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
