"""The parent's side: one worker process per framework, started on first use, restarted after a crash.

Each request waits at most the timeout. A worker that dies (a signal), runs out of memory or stops
answering becomes an error that names what happened and which model did it; the next request starts a
fresh worker. A model that crashed a worker is not retried for the same operation in this session:
its later checks fail at once with the first account, instead of crashing (or hanging) again.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any

from model_checks.backends import family as backend_family
from model_checks.core.errors import (
    ArtifactLoadError,
    InferenceError,
    MemoryLimitError,
    ModelChecksError,
    RuntimeCrashError,
    RuntimeTimeoutError,
    WorkerBrokeError,
    of_kind,
    runtime_error_text,
)
from model_checks.isolation import frames
from model_checks.isolation.limits import Limits
from model_checks.isolation.worker import ErrorInfo, WorkerSetup

SIGNAL_MEANING = {
    "SIGSEGV": "a segmentation fault in the runtime's native code",
    "SIGBUS": "a bus error in the runtime's native code",
    "SIGABRT": "the runtime aborted (a failed assertion, or an allocation beyond the memory limit in C++ code)",
    "SIGFPE": "an arithmetic fault in the runtime's native code",
    "SIGILL": "an illegal instruction in the runtime's native code",
    "SIGKILL": "killed from outside (perhaps the kernel's out-of-memory killer)",
}
STARTUP_TIMEOUT_S = 120.0
# Workers that turn a model into code (onnx2torch and torch.fx): no network, no new processes, and writes only
# inside the sandbox, enforced by an audit hook from before the request runs (see worker.confine).
CONFINED_FAMILIES = frozenset({"convert"})
# Package directories (os.pathsep-separated) a worker may import beyond the standard library, site-packages and
# model_checks: for the gate's own tests, whose crash hooks live in a package of theirs. Each is linked by name.
EXTRA_IMPORTS_ENV = "MODEL_CHECKS_WORKER_IMPORTS"
# Started with -I (no current directory, no PYTHONPATH, no user site), the worker puts only the sandbox's
# import directory in front: it holds links to model_checks (and EXTRA_IMPORTS_ENV's packages), nothing else.
_BOOT = "import sys; sys.path.insert(0, sys.argv[1]); from model_checks.isolation.worker import main; main(int(sys.argv[2]))"
# Where libraries look for a home, a cache or a temporary directory: all pointed into the sandbox.
_PRIVATE_DIRS = {
    "HOME": "home",
    "TMPDIR": "tmp",
    "TMP": "tmp",
    "TEMP": "tmp",
    "XDG_CACHE_HOME": "home/.cache",
    "XDG_CONFIG_HOME": "home/.config",
    "XDG_DATA_HOME": "home/.local/share",
    "KERAS_HOME": "home/.keras",
    "TORCH_HOME": "home/.cache/torch",
}


# The variables a worker inherits (exact names, then prefixes): the rest of the environment stays with the gate.
ENV_ALLOWED = frozenset(
    {
        "PATH",
        "LANG",
        "LANGUAGE",
        "TZ",
        "TERM",
        "LD_LIBRARY_PATH",
        "LD_PRELOAD",
        "CUDA_VISIBLE_DEVICES",
        "CUDA_HOME",
        "CUDA_PATH",
        "NVIDIA_VISIBLE_DEVICES",
        "HIP_VISIBLE_DEVICES",
        "ROCR_VISIBLE_DEVICES",
        "OMP_NUM_THREADS",
        "MKL_NUM_THREADS",
        "OPENBLAS_NUM_THREADS",
        "NUMEXPR_NUM_THREADS",
        "TF_USE_LEGACY_KERAS",
        "TF_CPP_MIN_LOG_LEVEL",
        "TF_ENABLE_ONEDNN_OPTS",
        "TF_NUM_INTRAOP_THREADS",
        "TF_NUM_INTEROP_THREADS",
        "ORT_DISABLE_TELEMETRY",
        "SOURCE_DATE_EPOCH",
        "CONDA_PREFIX",
        "VIRTUAL_ENV",
        EXTRA_IMPORTS_ENV,
    }
)
ENV_ALLOWED_PREFIXES = (
    "LC_",
    "OMP_",
    "KMP_",
    "MKL_",
    "DNNL_",
    "ONEDNN_",
    "CUDA_",
    "CUDNN_",
    "NCCL_",
    "OV_",
    "OPENVINO_",
)
# Never, whatever the prefix: names that commonly hold a secret.
_SECRET_WORDS = ("TOKEN", "SECRET", "PASSWORD", "PASSWD", "CREDENTIAL", "_KEY", "AUTH", "COOKIE", "SESSION")


def allowed_variable(name: str) -> bool:
    """Whether a worker inherits the environment variable `name` (see ENV_ALLOWED)."""
    if any(w in name.upper() for w in _SECRET_WORDS):
        return False
    return name in ENV_ALLOWED or name.startswith(ENV_ALLOWED_PREFIXES)


# What runtimes in a worker print on their own below errors (TensorFlow's C++ info and warning lines on every
# machine without a GPU) is noise in the user's log: silenced unless the user set the variable.
QUIET_RUNTIMES = {"TF_CPP_MIN_LOG_LEVEL": "2"}


class Sandbox:
    """A private directory for a session's workers, outside every tree the gate reads: `imports` (links to the
    packages a worker may import), an empty working directory, and a home and a temporary directory of their own,
    so that no code from the artifacts' tree is importable and nothing a library or a model writes lands in the
    user's tree or home. Removed when the session's workers are closed."""

    def __init__(self, first: tuple[Path, ...] = ()) -> None:
        """`first`: files and folders linked by name ahead of site-packages (a candidate runtime's install, for
        `model-checks canary`): the worker imports them in place of the installed ones."""
        self.dir = Path(tempfile.mkdtemp(prefix="model-checks-workers-"))
        self.imports = self.dir / "imports"
        self.cwd = self.dir / "cwd"
        for d in (self.imports, self.cwd, *(self.dir / sub for sub in set(_PRIVATE_DIRS.values()))):
            d.mkdir(parents=True, exist_ok=True)
        packages = [Path(__file__).resolve().parents[1]]
        packages += [Path(p).resolve() for p in os.environ.get(EXTRA_IMPORTS_ENV, "").split(os.pathsep) if p]
        for package in [*packages, *first]:
            (self.imports / package.name).symlink_to(package, target_is_directory=package.is_dir())

    def env(self) -> dict[str, str]:
        """An allow-list, not the parent's environment: a CI job's secrets (tokens, keys, cloud credentials) never
        reach code that handles an artifact; only what runtimes read to find libraries, threads and devices does."""
        env = {k: v for k, v in os.environ.items() if allowed_variable(k)}
        env.update({k: str(self.dir / sub) for k, sub in _PRIVATE_DIRS.items()})
        env.update({k: v for k, v in QUIET_RUNTIMES.items() if k not in env})  # a user's own setting wins
        return env

    def remove(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def _signal_name(exitcode: int | None) -> str:
    if exitcode is None:
        return "no exit code"
    if exitcode < 0:
        try:
            return signal.Signals(-exitcode).name
        except ValueError:
            return f"signal {-exitcode}"
    return f"exit status {exitcode}"


class Worker:
    """One worker process and its pipe; `generation` counts restarts, so runners know to load again."""

    def __init__(self, family: str, limits: Limits, sandbox: Sandbox | None = None):
        self.family = family
        self.limits = limits
        self.sandbox = sandbox
        self.generation = 0
        self.proc: subprocess.Popen | None = None
        self.conn: Connection | None = None
        self._exit_requested = False
        self.peak_bytes = 0  # the worker's peak resident memory as of its last answer

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _start(self) -> None:
        """A fresh interpreter running `python -m model_checks.isolation.worker`, not a fork (a fork would
        copy runtime threads and locks) and not multiprocessing's spawn (which re-imports the caller's
        main module: a script without a main guard would start the gate again). It runs in a Sandbox."""
        from model_checks.backends import BACKENDS

        if self.sandbox is None:
            self.sandbox = Sandbox()
        ours, theirs = socket.socketpair()
        try:
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT, str(self.sandbox.imports), str(theirs.fileno())],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=self.sandbox.env(),
                cwd=self.sandbox.cwd,
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())
        confine = str(self.sandbox.dir) if self.family in CONFINED_FAMILIES else None
        self.conn.send(WorkerSetup(self.limits.memory_mb, dict(BACKENDS), confine))
        self.generation += 1

    def request(self, op: str, args: tuple, what: str, requests: int = 1) -> Any:
        """Send one request and wait for its answer; `what` names the model in errors. `requests` is how many
        requests it stands for (an inference of several cases): each gets the timeout, as if sent one by one."""
        __tracebackhide__ = True
        try:
            conn = self.send_request(op, args, what)
            try:
                ready = conn.poll(self.limits.timeout_s * requests)
            except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
                raise self._died(op, what) from None
        except KeyboardInterrupt:  # Ctrl-C: the worker is busy with this request; waiting on it would take the timeout
            self.stop(kill=True)
            raise
        return self.answer(op, what, ready, requests)

    def send_request(self, op: str, args: tuple, what: str) -> Connection:
        """`request`'s first half: send (starting the worker if need be); the pipe its answer comes back on. A caller
        that waits on the pipe itself (the service, on its event loop) then calls `answer`."""
        __tracebackhide__ = True
        if not self.alive:
            self._start()
        assert self.conn is not None
        try:
            self.conn.send_bytes(frames.encode_request(op, args))  # tensors as a binary frame, not pickled
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
            raise self._died(op, what) from None
        return self.conn

    def answer(self, op: str, what: str, ready: bool, requests: int = 1) -> Any:
        """`request`'s second half: the answer once the pipe is readable (`ready`), else the timeout's error, the
        worker killed."""
        __tracebackhide__ = True
        if not ready:
            timeout_s = self.limits.timeout_s * requests
            self.stop(kill=True)
            raise RuntimeTimeoutError(
                f"{what}: {op} did not finish within {timeout_s:g} s; the {self.family} worker was killed "
                "(the model hangs its runtime, or needs a longer --model-checks-timeout)"
            )
        assert self.conn is not None
        try:
            status, value, self.peak_bytes = frames.decode_reply(self.conn.recv_bytes())
        except (EOFError, ConnectionResetError, OSError):
            raise self._died(op, what) from None
        if status == "ok":
            return value
        raise self._error(op, what, value)

    def send_quietly(self, op: str, args: tuple) -> None:
        """A request that gets no answer (`worker.QUIET_OPS`): a release, or warming up; nothing to wait for."""
        if not self.alive:
            self._start()
        assert self.conn is not None
        try:
            self.conn.send((op, args))
        except OSError:  # a dead worker: the next awaited request finds out and says so
            pass

    def _died(self, op: str, what: str) -> ModelChecksError:
        assert self.proc is not None
        try:
            self.proc.wait(5)
        except subprocess.TimeoutExpired:
            pass
        name = _signal_name(self.proc.returncode)
        self.stop(kill=True)
        meaning = SIGNAL_MEANING.get(name, "the runtime ended the process")
        return RuntimeCrashError(
            f"{what}: the {self.family} worker died from {name} during {op}: {meaning}. "
            f"The model crashes its runtime; the session goes on with a fresh worker ({self.limits.describe()})"
        )

    def _error(self, op: str, what: str, info: ErrorInfo) -> ModelChecksError:
        if info.memory:
            self.stop(kill=True)  # after a failed allocation the runtime's state is not to be trusted
            return MemoryLimitError(
                f"{what}: {op} exceeded the worker's memory limit of {self.limits.memory_mb} MiB "
                f"({info.name}: {info.message.strip()[:200]}); raise --model-checks-worker-memory if the model really needs more"
            )
        cls = _known_error(info)
        if cls is not None:
            return of_kind(cls, info.message)  # the worker's own message, as its own kind
        wrap = InferenceError if op == "infer" else ArtifactLoadError
        return wrap(f"{what}: {op} failed in the {self.family} worker: {runtime_error_text(info.message, info.name)}")

    def request_exit(self) -> None:
        """Ask the worker to exit, without waiting; `stop` then reaps it."""
        if self.conn is not None and self.proc is not None and self.proc.poll() is None:
            try:
                self.conn.send(("exit", ()))
            except OSError:
                pass
            self._exit_requested = True

    def stop(self, kill: bool = False) -> None:
        """End the worker: politely, or with SIGKILL when it may be stuck."""
        proc, conn = self.proc, self.conn
        self.proc = self.conn = None
        if proc is None:
            return
        if not kill and conn is not None and proc.poll() is None:
            try:
                if not self._exit_requested:
                    conn.send(("exit", ()))
                proc.wait(5)
            except (OSError, subprocess.TimeoutExpired):
                pass
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        if conn is not None:
            conn.close()
        self._exit_requested = False


def _known_error(info: ErrorInfo) -> type[ModelChecksError] | None:
    """The ModelChecksError class the worker raised, when it is one of ours (rebuilt with its message)."""
    import importlib

    if not info.module.startswith("model_checks"):
        return None
    try:
        cls = getattr(importlib.import_module(info.module), info.name)
    except (ImportError, AttributeError):
        return None
    return cls if isinstance(cls, type) and issubclass(cls, ModelChecksError) else None


class Workers:
    """The workers of one session, one per framework family, and the models that crashed them."""

    def __init__(self, limits: Limits | None = None, first: tuple[Path, ...] = ()):
        self.limits = limits or Limits()
        self.first = first  # imported ahead of site-packages (see Sandbox)
        self._sandbox: Sandbox | None = None
        self._workers: dict[str, Worker] = {}
        self._failed: dict[tuple[str, str], ModelChecksError] = {}

    def worker(self, fmt: str) -> Worker:
        family = backend_family(fmt)
        if family not in self._workers:
            if self._sandbox is None:
                self._sandbox = Sandbox(self.first)
            self._workers[family] = Worker(family, self.limits, self._sandbox)
        return self._workers[family]

    def start_early(self, formats: set[str]) -> None:
        """Start the workers `formats` run in, and have them import their runtimes, without waiting: a worker's
        start-up (an interpreter, numpy, the runtime) then overlaps the rest of collection instead of delaying
        the first check."""
        by_family: dict[str, list[str]] = {}
        for fmt in sorted(formats):
            by_family.setdefault(backend_family(fmt), []).append(fmt)
        for fmts in by_family.values():
            w = self.worker(fmts[0])
            if not w.alive:
                w.send_quietly("warm", (tuple(fmts),))

    def reset_peaks(self) -> None:
        """Start every running worker's peak resident memory over (for the next artifact's figure)."""
        for w in self._workers.values():
            if w.alive:
                w.send_quietly("reset_peak", ())
                w.peak_bytes = 0

    def peak_bytes(self) -> int:
        """The highest peak resident memory of the workers, as of their last answers."""
        return max((w.peak_bytes for w in self._workers.values()), default=0)

    def request(self, fmt: str, op: str, args: tuple, path: Path, requests: int = 1) -> Any:
        """Ask `fmt`'s worker; a model that crashed, starved or hung a worker is not sent again for `op`."""
        __tracebackhide__ = True
        self.refuse_again(path, op)
        try:
            return self.worker(fmt).request(op, args, path.name, requests)
        except WorkerBrokeError as e:
            self.broke(path, op, e)
            raise

    def refuse_again(self, path: Path, op: str) -> None:
        """The first account again, when the model at `path` already broke a worker doing `op` in this session."""
        first = self._failed.get((str(path), op))
        if first is not None:
            raise type(first)(f"{first} [not retried: this model already did this earlier in the session]")

    def broke(self, path: Path, op: str, e: WorkerBrokeError) -> None:
        """Remember that the model at `path` broke a worker doing `op` (a failed load fails its inferences too)."""
        self._failed[(str(path), op)] = e
        if op == "load":
            self._failed[(str(path), "infer")] = e

    def call(self, fmt: str, fn: Any, *args: Any) -> Any:
        """Run a picklable callable in `fmt`'s worker (the test hook for crashes on purpose)."""
        return self.worker(fmt).request("call", (fn, args), getattr(fn, "__name__", "call"))

    def close(self) -> None:
        # Ask every worker to exit first, then wait: they wind down side by side, not one after another.
        for w in self._workers.values():
            w.request_exit()
        for w in self._workers.values():
            w.stop()
        self._workers.clear()
        if self._sandbox is not None:
            self._sandbox.remove()
            self._sandbox = None
