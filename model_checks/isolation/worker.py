"""What runs inside a worker process: limits applied first, then a loop answering requests on a pipe.

A request is `(op, args)`; the answer `("ok", value)` or `("err", ErrorInfo)`. Models stay in the worker
and are named by a handle; only arrays and small values cross the pipe. Nothing here is imported by the
parent beyond `ErrorInfo` and `WorkerSetup`; the process runs `main(FD)`, started by `workers.Worker._start`.
"""

from __future__ import annotations

import os
import resource
import signal
import time
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Callable

# Requests the parent does not wait on: they get no answer, so the pipe stays one answer per awaited request.
QUIET_OPS = ("close_quietly", "warm", "serve_as")
# The handle an inference sent ahead of its model's load names (`Workers.prefetch_infer`): the model the last load
# loaded, its feeds given by position as `<K>:<name in the file>` (an unnamed one takes the model's K-th input name,
# as `backends.base.named_feeds` names them in the parent). Loaded models' handles count from 1.
AHEAD = 0
# A message holding several requests, each an encoded request of its own (`frames.encode_request`), served in
# order as if they had come one by one: what the parent sends ahead for an artifact goes in one write.
MANY = "many"
# The longest text a request's tag carries back (`_Models.infer_bodies`): its id, which a service reads from a body
# of at most this size (serving.service.INLINE_BODY_BYTES), or a refusal's message, cut to it.
TAG_TEXT_CHARS = 256 * 1024
# Text of allocation failures that C++ runtimes turn into ordinary exceptions.
_MEMORY_WORDS = ("bad_alloc", "failed to allocate", "out of memory", "cannot allocate memory")


@dataclass(frozen=True)
class ErrorInfo:
    """An exception raised in the worker, as plain values: the parent rebuilds a ModelChecksError from it."""

    module: str
    name: str
    message: str
    memory: bool  # a MemoryError, or an allocation failure reported by the runtime


def _describe(e: BaseException) -> ErrorInfo:
    chain: list[BaseException] = []
    cur: BaseException | None = e
    while cur is not None and len(chain) < 8:
        chain.append(cur)
        cur = cur.__cause__ or cur.__context__
    memory = any(isinstance(c, MemoryError) or any(w in str(c).lower() for w in _MEMORY_WORDS) for c in chain)
    return ErrorInfo(type(e).__module__, type(e).__qualname__, str(e), memory)


def resident_bytes() -> int:
    """This process's resident memory now (Linux; 0 elsewhere)."""
    try:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
    except (OSError, ValueError, IndexError):
        return 0


_status_fd: int | None = None
_clear_fd: int | None = None


def reset_peak() -> None:
    """Start the peak resident memory over from the resident memory now (Linux: clear_refs 5), before each request
    that gets an answer, so that the answer carries that request's peak. The file stays open: a write costs well
    under a microsecond. Elsewhere the peak is the process's since its start."""
    global _clear_fd
    try:
        if _clear_fd is None:
            _clear_fd = os.open("/proc/self/clear_refs", os.O_WRONLY)
        os.write(_clear_fd, b"5")
    except OSError:
        pass


def peak_bytes() -> int:
    """This process's peak resident memory since the last `reset_peak` (Linux's VmHWM; else ru_maxrss). Read on
    every answer: /proc/self/status stays open and is read again from its start (a third of opening it each time)."""
    global _status_fd
    try:
        if _status_fd is None:
            _status_fd = os.open("/proc/self/status", os.O_RDONLY)
        data = os.pread(_status_fd, 16384, 0)
        at = data.index(b"VmHWM:") + 6
        return int(data[at : data.index(b"kB", at)]) * 1024
    except (OSError, ValueError):
        pass
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


def apply_limits(memory_mb: int) -> None:
    """Cap the worker's memory: an allocation beyond it fails (MemoryError, or an abort in some C++ code).

    RLIMIT_DATA (private writable memory: the heap, anonymous mmaps, thread stacks) rather than RLIMIT_AS:
    the address space also counts shared libraries and the large PROT_NONE reservations GPU runtimes make
    at start-up, so a cap on it would refuse healthy models on a GPU machine."""
    limit = memory_mb * 1024 * 1024
    _, hard = resource.getrlimit(resource.RLIMIT_DATA)
    if hard != resource.RLIM_INFINITY:
        limit = min(limit, hard)
    resource.setrlimit(resource.RLIMIT_DATA, (limit, hard))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))  # a crashing model must not leave core files behind


def _die_with_parent() -> None:
    """Linux: be killed when the parent dies, even while stuck in native code (else the pipe's EOF ends us)."""
    try:
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGKILL)  # PR_SET_PDEATHSIG
    except (OSError, AttributeError):
        pass


class _Models:
    """The worker's state: loaded runners by handle."""

    def __init__(self) -> None:
        self.runners: dict[int, Any] = {}
        self.next = 0
        self.last_loaded: int | None = None  # the handle of the last load, while that load stands (see AHEAD)
        self.served: dict[int, tuple[tuple, tuple[str, ...]]] = {}  # handle -> what its requests are read against

    def load(
        self, path: Path, fmt: str, root: Path, threads: int | None, names: Any = None
    ) -> tuple[int, tuple, tuple, str, int]:
        """(handle, inputs, outputs, what runs it (Runner.description), the bytes of memory loading it took: what
        the parent weighs when it holds several models at once)."""
        from model_checks.backends import backend

        self.last_loaded = None  # a load that fails leaves no model for an inference sent ahead to take
        before = resident_bytes()
        runner = backend(fmt, "runner").load(path, root, threads=threads, names=names)
        self.next += 1
        self.runners[self.next] = runner
        self.last_loaded = self.next
        return (
            self.next,
            tuple(runner.inputs),
            tuple(runner.outputs),
            runner.description,
            max(0, resident_bytes() - before),
        )

    def infer(self, handle: int, feeds: dict | list[dict]) -> dict | list[dict]:
        """Outputs of one set of feeds, or of each of a list of them (one round trip for all of an artifact's
        cases; the first failure answers for the whole list, as it would have case by case)."""
        if handle == AHEAD:  # sent with the load, before its handle was known: feeds named by position
            if self.last_loaded is None or not isinstance(feeds, list):
                raise LookupError("no model loaded for an inference sent ahead")
            from model_checks.backends.base import named_feeds

            runner = self.runners[self.last_loaded]
            names = [t.name for t in runner.inputs]
            feeds = [named_feeds([(k.split(":", 1)[1], a) for k, a in f.items()], names) for f in feeds]
        else:
            runner = self.runners[handle]
        return [runner.infer(f) for f in feeds] if isinstance(feeds, list) else runner.infer(feeds)

    def serve_as(self, handle: int, interface: tuple, outputs: tuple[str, ...]) -> None:
        """The interface (TensorSpecs) and output names a service reads the requests for `handle` against
        (`infer_bodies`); sent once a loaded model, ahead of its first request (serving.awaited)."""
        self.served[handle] = (tuple(interface), tuple(outputs))

    def infer_bodies(self, handle: int, bodies: list[tuple[bytes, str | None]]) -> Any:
        """A service's requests as they came (each body with its Inference-Header-Content-Length, or None), read and
        checked here, where the model's untrusted input already is, and answered: Tagged outputs, each tagged
        ("ok", request id, outputs wanted as binary data) or, for a request the protocol refuses, an empty set tagged
        ("refused", HTTP status, why). A failure of the model answers for the whole list, as `infer`'s does."""
        from model_checks.core.errors import ProtocolError
        from model_checks.isolation.frames import Tagged
        from model_checks.serving.protocol import read_request

        interface, outputs = self.served[handle]
        runner = self.runners[handle]
        tensors: list[dict] = []
        tags: list[tuple] = []
        for body, header_length in bodies:
            try:
                feeds, rid, binary = read_request(body, header_length, interface, outputs)
            except ProtocolError as e:
                tensors.append({})
                tags.append(("refused", e.status, e.message[:TAG_TEXT_CHARS]))
                continue
            tensors.append(runner.infer(feeds))
            tags.append(("ok", rid, tuple(sorted(binary))))
        return Tagged(tensors, tags)

    def close(self, handle: int) -> None:
        self.served.pop(handle, None)
        if handle == self.last_loaded:
            self.last_loaded = None
        runner = self.runners.pop(handle, None)
        if runner is not None:
            runner.close()

    def close_quietly(self, handle: int) -> None:
        """`close` without an answer: the parent does not wait on a release (see `serve`)."""
        self.close(handle)

    @staticmethod
    def warm(formats: tuple[str, ...]) -> None:
        """Import the runtimes of `formats` now, while the parent is still starting (see Workers.start_early): each
        format's runner and facts modules, and what its runner's `warm()` imports (the runtime itself). With no
        formats (a spare worker, Workers.start_spare), the interface every backend's modules import, and numpy, which
        every framework's worker reads tensors with: the spare imports it while the parent configures and collects,
        before the framework it will serve is known (unconfined: a confined framework never takes the spare)."""
        from model_checks.core.lazy import import_numpy

        if not formats:
            import_numpy()
        from model_checks.backends import backend, base  # noqa: F401

        for fmt in formats:
            try:
                backend(fmt, "facts")
                warm = getattr(backend(fmt, "runner"), "warm", None)
                if warm is not None:
                    warm()
            except Exception:  # a runtime that cannot be imported says so on the request that needs it
                pass

    @staticmethod
    def facts(path: Path, fmt: str, root: Path, names: Any = None) -> Any:
        from model_checks.backends import backend

        return backend(fmt, "facts").model_facts(path, root, names=names)

    @staticmethod
    def validate(path: Path, fmt: str, root: Path) -> list[str]:
        from model_checks.backends import backend

        return backend(fmt, "facts").validate(path, root)

    @staticmethod
    def idle() -> None:
        """Nothing: its answer says the worker has done everything it was sent before (Workers.quiet)."""

    @staticmethod
    def call(fn: Callable[..., Any], args: tuple) -> Any:
        """Run a picklable callable here: the hook tests use to crash, starve or hang a worker on purpose."""
        return fn(*args)


@dataclass(frozen=True)
class WorkerSetup:
    """The first message on the pipe: what the worker needs to know of its parent."""

    memory_mb: int
    backends: dict[str, tuple[str, str, bool]]  # the parent's table, so backends registered at run time are found
    confine_to: str | None = None  # a directory: confine the worker to it (see `confine`)
    linger_s: float = 0.0  # Limits.linger_s


# Audit events refused in a confined worker (https://docs.python.org/3/library/audit_events.html).
_NETWORK_EVENTS = frozenset(
    {
        "socket.connect",
        "socket.bind",
        "socket.sendto",
        "socket.sendmsg",
        "socket.getaddrinfo",
        "socket.gethostbyname",
        "socket.gethostbyaddr",
        "socket.getnameinfo",
        "urllib.Request",
    }
)
_PROCESS_EVENTS = frozenset(
    {
        "subprocess.Popen",
        "os.system",
        "os.exec",
        "os.posix_spawn",
        "os.spawn",
        "os.fork",
        "os.forkpty",
        "os.startfile",
        "pty.spawn",
        "os.kill",
        "os.killpg",
        "signal.pthread_kill",
    }
)
_PATH_EVENTS = frozenset(
    {
        "os.remove",
        "os.rename",
        "os.mkdir",
        "os.rmdir",
        "os.chmod",
        "os.chown",
        "os.truncate",
        "os.symlink",
        "os.link",
        "os.utime",
        "shutil.rmtree",
        "shutil.move",
        "shutil.copyfile",
        "os.mkfifo",
        "os.mknod",
        "os.setxattr",
        "os.removexattr",
    }
)
_WRITE_FLAGS = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_APPEND | os.O_TRUNC


def confine(directory: str) -> None:
    """From now on this process may not use the network, start or signal processes, or write, create, remove or
    rename anything outside `directory` (and /dev/null): an audit hook, which Python code cannot remove, refuses
    each with PermissionError. It holds against Python code a converter generates; native code is bounded by the
    rest of the sandbox (the scrubbed environment, the memory limit, the timeout)."""
    import sys

    root = os.path.realpath(directory)

    def inside(path: object) -> bool:
        if isinstance(path, int) or path is None:  # an fd already open: its opening was judged
            return True
        try:
            real = os.path.realpath(os.fsdecode(path))  # type: ignore[arg-type]
        except (TypeError, ValueError):
            return False
        return real == os.devnull or real == root or real.startswith(root + os.sep)

    def hook(event: str, args: tuple) -> None:
        if event in _NETWORK_EVENTS:
            raise PermissionError(f"model-checks: no network in a confined worker ({event})")
        if event in _PROCESS_EVENTS:
            raise PermissionError(f"model-checks: no processes from a confined worker ({event})")
        if event == "open":
            path, mode, flags = (tuple(args) + (None, None, 0))[:3]
            writes = (isinstance(mode, str) and any(c in mode for c in "wax+")) or bool((flags or 0) & _WRITE_FLAGS)
            if writes and not inside(path):
                raise PermissionError(f"model-checks: a confined worker writes only inside its sandbox, not {path!r}")
        elif event in _PATH_EVENTS:
            two = event in ("os.rename", "os.symlink", "os.link", "shutil.move", "shutil.copyfile")
            for p in args[:2] if two else args[:1]:
                if not inside(p):
                    raise PermissionError(f"model-checks: a confined worker changes only its sandbox ({event} {p!r})")

    sys.dont_write_bytecode = True
    _own_network_namespace()
    sys.addaudithook(hook)


def _own_network_namespace() -> bool:
    """Linux: move this process into a network namespace of its own (no interface, not even loopback, is up), in a
    user namespace mapping only our own ids, so the kernel too refuses every connection, native code's included.
    Needs a single-threaded process and unprivileged user namespaces; where either is missing (some distributions
    turn them off), the audit hook alone holds and this returns False."""
    try:
        import ctypes

        libc = ctypes.CDLL(None, use_errno=True)
        uid, gid = os.getuid(), os.getgid()
        if libc.unshare(0x10000000 | 0x40000000) != 0:  # CLONE_NEWUSER | CLONE_NEWNET
            return False
        for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
            with open(f"/proc/self/{name}", "w") as f:
                f.write(text)
        return True
    except (OSError, AttributeError):
        return False


def serve(conn: Connection, unconfined: bool = False) -> None:
    """The worker's main loop; returns when the parent closes the pipe, exits at once on `exit`. A worker that will
    not be confined (`unconfined`) imports numpy and the backends' interface before it reads its setup: a spare
    started at plugin load does so while the parent is still starting, not after configure sends the setup."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; it stops us
    _die_with_parent()
    if unconfined:
        _Models.warm(())
    try:
        setup: WorkerSetup = conn.recv()
    except (EOFError, OSError):  # a process started ahead (plugin/early) that nobody took
        return
    apply_limits(setup.memory_mb)
    if setup.confine_to is not None:
        if unconfined:  # never sent (workers._launch): numpy's threads would keep unshare from confining it
            raise SystemExit("model-checks: a worker started unconfined cannot be confined")
        confine(setup.confine_to)
    # numpy (which frames needs) may start threads: only after confine, which may unshare namespaces (single-threaded)
    from model_checks.backends import BACKENDS
    from model_checks.core.lazy import import_numpy
    from model_checks.isolation import frames

    import_numpy()  # before a framework's import pulls it in with a BLAS thread a core

    BACKENDS.update(setup.backends)
    models = _Models()
    linger = _Linger(conn, setup.linger_s)
    while True:
        linger()
        try:
            op, args = frames.decode_request(conn.recv_bytes())
        except (EOFError, OSError):
            return
        if op == MANY:  # several requests in one message, each answered (or not, if quiet) in its turn
            for message in args[0]:
                _serve_one(conn, models, *frames.decode_request(message))
        else:
            _serve_one(conn, models, op, args)


class _Linger:
    """What the worker does before it blocks on its pipe: with `linger_s`, poll it that long for the next request,
    giving the CPU away at every turn (sched_yield) to whatever else wants it. A sleeping worker is woken by the
    parent's write, and on a virtual machine waking an idle CPU was what a request cost most: with its worker awake
    between requests (as onnxruntime's own threads stay awake between runs) a service's CPU a request fell from 440
    to 300 us at one connection and its throughput rose by 40 % (bench/overhead.py row c, wrk). Only while that CPU
    is otherwise idle: after REST_AFTER polls in a row that each gave more than GIVEN_S of their time to other
    processes (a load generator on the same machine), the worker sleeps at once for the next REST answers. Bounded:
    an idle service's worker sleeps after `linger_s`."""

    REST, GIVEN_S, REST_AFTER = 64, 250e-6, 4

    def __init__(self, conn: Connection, linger_s: float):
        import select

        self.linger_s = linger_s
        self.resting = 0
        self.contended = 0  # lingers in a row that gave more than GIVEN_S of their time to other processes
        self.poll = select.poll()
        self.poll.register(conn.fileno(), select.POLLIN)

    def __call__(self) -> None:
        if self.linger_s <= 0:
            return
        if self.resting:
            self.resting -= 1
            return
        start, cpu = time.perf_counter(), time.thread_time()
        end = start + self.linger_s
        while not self.poll.poll(0) and time.perf_counter() < end:
            os.sched_yield()
        lost = time.perf_counter() - start - (time.thread_time() - cpu)
        self.contended = self.contended + 1 if lost > self.GIVEN_S else 0
        if self.contended >= self.REST_AFTER:
            self.resting, self.contended = self.REST, 0


def _serve_one(conn: Connection, models: _Models, op: str, args: tuple) -> None:
    from model_checks.isolation import frames

    if op in QUIET_OPS:  # no answer is awaited: the parent goes on at once
        try:
            getattr(models, op)(*args)
        except BaseException:
            pass
        return
    if op == "exit":
        # Nothing to flush (models live in memory, replies went over the pipe); skipping finalization
        # saves the second or so TensorFlow and torch take to tear down at interpreter exit.
        conn.close()
        os._exit(0)
    reset_peak()  # the answer carries this request's peak (see Workers.peak_bytes)
    try:
        reply: tuple[str, Any] = ("ok", getattr(models, op)(*args))
    except BaseException as e:  # everything goes back to the parent as a value
        reply = ("err", _describe(e))
    try:
        conn.send_bytes(frames.encode_reply(*reply, peak_bytes()))  # outputs as a binary frame, not pickled
    except Exception as e:  # an unpicklable result: say so instead of dying silently
        conn.send(("err", _describe(e)))


def main(fd: int, unconfined: bool = False) -> None:
    """The worker's entry point (see workers._BOOT): serve the pipe inherited as `fd`."""
    serve(Connection(fd), unconfined)
