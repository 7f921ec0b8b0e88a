"""The parent's side: one worker process per framework, started on first use, restarted after a crash.

Each request waits at most the timeout. A worker that dies (a signal), runs out of memory or stops
answering becomes an error that names what happened and which model did it; the next request starts a
fresh worker. A model that crashed a worker is not retried for the same operation in this session:
its later checks fail at once with the first account, instead of crashing (or hanging) again.
"""

from __future__ import annotations

import os
import pickle
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
from collections import deque
from contextlib import contextmanager
from dataclasses import dataclass
from multiprocessing.connection import Connection
from pathlib import Path
from typing import Any, Iterator

from model_checks.backends import family as backend_family
from model_checks.core.errors import (
    AnswerRefusedError,
    ArtifactLoadError,
    CheckStepError,
    InferenceError,
    MemoryLimitError,
    ModelChecksError,
    RuntimeCrashError,
    RuntimeTimeoutError,
    WorkerBrokeError,
    WorkerStartError,
    of_kind,
    runtime_error_text,
)
from model_checks.isolation import frames
from model_checks.isolation.limits import Limits
from model_checks.isolation.returns import mismatch, returns_of
from model_checks.isolation.worker import MANY, TAG_TEXT_CHARS, ErrorInfo, WorkerSetup
from model_checks.safety.text import printable

SIGNAL_MEANING = {
    "SIGSEGV": "a segmentation fault in the runtime's native code",
    "SIGBUS": "a bus error in the runtime's native code",
    "SIGABRT": "the runtime aborted (a failed assertion, or an allocation beyond the memory limit in C++ code)",
    "SIGFPE": "an arithmetic fault in the runtime's native code",
    "SIGILL": "an illegal instruction in the runtime's native code",
    "SIGKILL": "killed from outside (perhaps the kernel's out-of-memory killer)",
}
STARTUP_TIMEOUT_S = 120.0
# A model whose loading took less than this is released with the worker's next write (send_quietly's `later`): it
# may stay resident a little longer, up to the next artifact's requests. A larger one is released at once.
HOLD_RELEASE_BYTES = 16 * 1024**2
# Workers that turn a model into code (onnx2torch and torch.fx): no network, no new processes, and writes only
# inside the sandbox, enforced by an audit hook from before the request runs (see worker.confine).
CONFINED_FAMILIES = frozenset({"convert"})
# Package directories (os.pathsep-separated) a worker may import beyond the standard library, site-packages and
# model_checks: for the gate's own tests, whose crash hooks live in a package of theirs. Each is linked by name.
EXTRA_IMPORTS_ENV = "MODEL_CHECKS_WORKER_IMPORTS"
# Started with -I (no current directory, no PYTHONPATH, no user site), the worker puts only the sandbox's
# import directory in front: it holds links to model_checks (and EXTRA_IMPORTS_ENV's packages), nothing else.
_BOOT = (
    "import sys; sys.path.insert(0, sys.argv[1]); from model_checks.isolation.worker import main; "
    "main(int(sys.argv[2]), sys.argv[3] == 'unconfined')"
)
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
        "LOCPATH",  # where locales are installed besides the system's: a StringNormalizer's may be there
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
# Never either: oneDNN's fpmath mode, which has fp32 layers computed in bf16 or tf32 (TensorFlow's and OpenVINO's CPU
# kernels): set in a developer's shell, it made an equivalence verdict the shell's. The gate states the precision a
# model runs in itself (OpenVINO's INFERENCE_PRECISION_HINT: f32); the run's header says when one is left behind.
ENV_DENIED = frozenset({"ONEDNN_DEFAULT_FPMATH_MODE", "DNNL_DEFAULT_FPMATH_MODE"})


def allowed_variable(name: str) -> bool:
    """Whether a worker inherits the environment variable `name` (see ENV_ALLOWED, ENV_DENIED)."""
    if name in ENV_DENIED or any(w in name.upper() for w in _SECRET_WORDS):
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


class Lost(Exception):
    """A request sent ahead whose worker broke on an earlier request before answering it (see Worker.answer)."""


@dataclass(eq=False)
class Sent:
    """A request sent to a worker, and in time its answer: a value, or the error it ended in."""

    op: str
    what: str  # the model, as errors name it
    requests: int  # how many requests' timeouts it may take (an inference of several cases)
    generation: int  # the worker's generation it was sent to
    done: bool = False
    value: Any = None
    error: ModelChecksError | None = None
    peak: int = 0  # the worker's peak resident memory while it served this request (bytes)
    returns: tuple[str, Any] | None = None  # for `call`: its function's name and declared return type (returns_of)


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
        self._pending: deque[Sent] = deque()  # requests sent and not answered yet, oldest first
        # The highest of the peaks of the requests whose answers were taken by their askers since the last reset:
        # an answer read early (a request sent ahead for the next artifact) counts when that artifact takes it.
        self.peak_bytes = 0
        self.warmed = False  # told to import its runtimes (start_early) since it started
        self._outbox: list[bytes] | None = None  # requests held for one write (see together)
        self._later: list[bytes] = []  # quiet requests that go with the next write (see send_quietly)

    @property
    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def _ensure_started(self) -> None:
        """A worker for the next request: this one, or a fresh one where it has died. A worker that died owing
        answers is first read to its end (what it answered before dying stays answered, the request it died on
        says so, the rest are lost), so that no answer of the fresh worker is ever taken for one of its."""
        if not self.alive:
            self.settle()
        if not self.alive:
            self._start()

    def _start(self) -> None:
        """A fresh interpreter running `python -m model_checks.isolation.worker`, not a fork (a fork would
        copy runtime threads and locks) and not multiprocessing's spawn (which re-imports the caller's
        main module: a script without a main guard would start the gate again). It runs in a Sandbox."""
        try:
            self._launch()
        except OSError as e:  # no sandbox directory, no process: the machine's, said as such
            raise not_started(self.family, e) from None
        self._set_up()

    def _launch(self) -> None:
        """The process only: it starts its interpreter and then waits for its setup (`_set_up`)."""
        if self.sandbox is None:
            self.sandbox = Sandbox()
        ours, theirs = socket.socketpair()
        try:
            confined = "confined" if self.family in CONFINED_FAMILIES else "unconfined"
            self.proc = subprocess.Popen(
                [sys.executable, "-I", "-c", _BOOT, str(self.sandbox.imports), str(theirs.fileno()), confined],
                pass_fds=(theirs.fileno(),),
                stdin=subprocess.DEVNULL,
                env=self.sandbox.env(),
                cwd=self.sandbox.cwd,
            )
        finally:
            theirs.close()
        self.conn = Connection(ours.detach())

    def _set_up(self) -> None:
        """Its limits and the backends' table (as of now: a conftest.py may have added a framework), then it serves."""
        from model_checks.backends import BACKENDS

        assert self.conn is not None and self.sandbox is not None
        confine = str(self.sandbox.dir) if self.family in CONFINED_FAMILIES else None
        self.conn.send(WorkerSetup(self.limits.memory_mb, dict(BACKENDS), confine, self.limits.linger_s))
        self.generation += 1
        self.warmed = False
        self._pending.clear()  # (none: see _ensure_started) a fresh process owes nothing
        self._later.clear()  # (what was held for the dead one: its handles mean nothing to this one)

    def request(self, op: str, args: tuple, what: str, requests: int = 1) -> Any:
        """Send one request and wait for its answer; `what` names the model in errors. `requests` is how many
        requests it stands for (an inference of several cases): each gets the timeout, as if sent one by one."""
        __tracebackhide__ = True
        self.settle()
        return self.answer(self.send(op, args, what, requests))

    def send_request(self, op: str, args: tuple, what: str, requests: int = 1) -> Connection:
        """`request`'s first half, for a caller that waits on the pipe itself (the service, on its event loop) and
        then calls `answer_ready`: every answer still owed is read first, so the next one on the pipe is this one's."""
        __tracebackhide__ = True
        self.settle()
        sent = self.send(op, args, what, requests)
        if sent.error is not None:
            raise sent.error
        assert self.conn is not None
        return self.conn

    def answer_ready(self, op: str, what: str, ready: bool, requests: int = 1) -> Any:
        """`request`'s second half: the answer once the pipe is readable (`ready`), else the timeout's error, the
        worker killed."""
        __tracebackhide__ = True
        if not ready:
            raise self._timed_out(op, what, self.limits.timeout_s * requests)
        sent = self._pending[0]
        self._read(sent, readable=True)  # the caller saw the pipe readable: no second wait on it
        return self.answer(sent)

    def send(self, op: str, args: tuple, what: str, requests: int = 1) -> Sent:
        """Send a request without waiting for its answer (`answer` reads it). The worker answers in the order it
        was asked, so answers are read in that order, each within its own timeout from when it is waited on."""
        returns = returns_of(args[0]) if op == "call" else None
        if self._outbox is not None:  # written with the others at the end of `together`
            sent = Sent(op, what, requests, self.generation, returns=returns)
            self._outbox.append(frames.encode_request(op, args))
            self._pending.append(sent)
            return sent
        self._ensure_started()
        assert self.conn is not None
        sent = Sent(op, what, requests, self.generation, returns=returns)
        try:
            self.conn.send_bytes(self._with_later(frames.encode_request(op, args)))  # tensors as a binary frame
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
            if self._pending:  # it broke on a request sent before: that one says so, this one is lost
                self.settle()
            else:
                sent.error = self._died(op, what)
            return sent
        self._pending.append(sent)
        return sent

    def answer(self, sent: Sent) -> Any:
        """The answer to `sent`, reading those sent before it first (each kept for whoever asks for it). A worker
        that breaks is reported for the request it was busy with, never for one behind it: those are `lost` (the
        worker that would have answered is gone; they are asked again of the next one)."""
        __tracebackhide__ = True
        while sent.error is None and not sent.done and sent in self._pending:
            self._read(self._pending[0])
        self.peak_bytes = max(self.peak_bytes, sent.peak)
        if sent.error is not None:
            raise sent.error
        if not sent.done:
            raise Lost(sent.op)
        return sent.value

    def settle(self) -> None:
        """Read every answer still owed (so that a worker broken by one of them is found out now, and restarted
        before the next request chooses a loaded model's handle)."""
        while self._pending:
            self._read(self._pending[0])

    def _read(self, sent: Sent, readable: bool = False) -> None:
        assert self.conn is not None and self._pending[0] is sent
        op, what = sent.op, sent.what
        timeout_s = self.limits.timeout_s * sent.requests
        try:
            ready = readable or self.conn.poll(timeout_s)
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
            sent.error = self._died(op, what)
            return
        except KeyboardInterrupt:  # Ctrl-C: the worker is busy with this request; waiting on it would take the timeout
            self.stop(kill=True)
            raise
        if not ready:
            sent.error = self._timed_out(op, what, timeout_s)
            return
        cap = self.limits.memory_mb << 20  # no answer outgrows the memory its worker may hold
        try:
            message = self.conn.recv_bytes(cap)
        except (EOFError, ConnectionResetError):
            sent.error = self._died(op, what)
            return
        except OSError as e:
            if e.errno is not None:  # the pipe itself failed: the worker is gone
                sent.error = self._died(op, what)
            else:  # multiprocessing's "bad message length": nothing past the length was read
                sent.error = self._refused(
                    op, what, f"it claims to be larger than the worker's memory limit of {self.limits.memory_mb} MiB"
                )
            return
        try:
            status, value, sent.peak = frames.decode_reply(message)
            if (why := _not_an_answer(op, status, value, sent.requests, sent.returns)) is not None:
                raise frames.UnreadableAnswer(why)
        except frames.UnreadableAnswer as e:
            sent.error = self._refused(op, what, str(e))
            return
        self._pending.popleft()
        sent.done = True
        if status == "ok":
            sent.value = value
        else:
            sent.error = self._error(op, what, value)

    def _timed_out(self, op: str, what: str, timeout_s: float) -> ModelChecksError:
        """The worker killed, and the error of the request it did not answer within `timeout_s`."""
        self.stop(kill=True)
        return RuntimeTimeoutError(
            f"{what}: {_said(op)} did not finish within {timeout_s:g} s; the {self.family} worker was killed "
            f"(the model hangs its runtime, or needs a longer --model-checks-timeout{_how_busy()})"
        )

    @contextmanager
    def together(self) -> Iterator[None]:
        """The requests sent meanwhile (`send`, `send_quietly`) go to the worker in one write, as one message
        (worker.MANY) it serves as if they had come one by one: one wake-up of the worker, and one system call,
        instead of one each. Each is still answered, read and reported on its own."""
        if self._outbox is not None:
            yield
            return
        self._ensure_started()
        self._outbox = []
        try:
            yield
        finally:
            box, self._outbox = self._outbox, None
            if box:
                self._write(self._with_later(*box))

    def _write(self, message: bytes) -> None:
        """Write what `together` held: a worker that broke meanwhile is read to its end (the request it died on, or
        the first of these, says so; the rest are lost, and asked again of the next worker)."""
        assert self.conn is not None
        try:
            self.conn.send_bytes(message)
        except (BrokenPipeError, ConnectionResetError, EOFError, OSError):
            self.settle()

    def _with_later(self, *messages: bytes) -> bytes:
        """`messages` as one message, behind the quiet requests held for the next write (worker.MANY)."""
        if self._later:
            messages, self._later = (*self._later, *messages), []
        return messages[0] if len(messages) == 1 else pickle.dumps((MANY, (messages,)), pickle.HIGHEST_PROTOCOL)

    def send_quietly(self, op: str, args: tuple, later: bool = False) -> None:
        """A request that gets no answer (`worker.QUIET_OPS`): a release, or warming up; nothing to wait for.
        `later`: it goes with the next write instead of one of its own (a small model's release: the worker does it
        before the next request, as it would have; a worker that dies meanwhile has nothing left to do it on)."""
        message = pickle.dumps((op, args), pickle.HIGHEST_PROTOCOL)
        if self._outbox is not None:
            self._outbox.append(message)
            return
        if later and self.alive:
            self._later.append(message)
            return
        self._ensure_started()
        assert self.conn is not None
        try:
            self.conn.send_bytes(self._with_later(message))
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
        blame = _of_the_machine(name, self.limits) or "The model crashes its runtime"
        return RuntimeCrashError(
            f"{what}: the {self.family} worker died from {name} during {_said(op)}: {meaning}. "
            f"{blame}; the session goes on with a fresh worker ({self.limits.describe()})"
        )

    def _refused(self, op: str, what: str, why: str) -> ModelChecksError:
        """The worker killed, and the error of the request whose answer was refused before anything used it: it could
        not be read as data (frames.decode_reply), or is not what its operation answers (_not_an_answer)."""
        self.stop(kill=True)
        return AnswerRefusedError(
            f"{what}: the {self.family} worker's answer to {_said(op)} was refused: {printable(why)}. A worker answers "
            "with data only; this one may have been taken over by the model through its runtime. The worker was "
            "killed; the session goes on with a fresh one"
        )

    def _error(self, op: str, what: str, info: ErrorInfo) -> ModelChecksError:
        if info.memory:
            self.stop(kill=True)  # after a failed allocation the runtime's state is not to be trusted
            return MemoryLimitError(
                f"{what}: {_said(op)} exceeded the worker's memory limit of {self.limits.memory_mb} MiB "
                f"({info.name}: {info.message.strip()[:200]}); raise --model-checks-worker-memory if the model really needs more"
            )
        cls = _known_error(info)
        if cls is not None:
            return of_kind(cls, info.message)  # the worker's own message, as its own kind
        # a check's own step (`call`: an emulation, a rewrite) that failed is not the model failing to load
        wrap = {"infer": InferenceError, "call": CheckStepError}.get(_said(op), ArtifactLoadError)
        return wrap(
            f"{what}: {_said(op)} failed in the {self.family} worker: {runtime_error_text(info.message, info.name)}"
        )

    def request_exit(self) -> None:
        """Ask the worker to exit, without waiting; `stop` then reaps it."""
        if self.conn is not None and self.proc is not None and not self._exit_requested and self.proc.poll() is None:
            try:
                self.conn.send(("exit", ()))
            except OSError:
                pass
            self._exit_requested = True

    def stop(self, kill: bool = False) -> None:
        """End the worker: politely, or with SIGKILL when it may be stuck. Requests it still owed answers to are
        lost: nobody will answer them (see `answer`)."""
        proc, conn = self.proc, self.conn
        self.proc = self.conn = None
        self._pending.clear()
        self._later.clear()
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


def not_started(family: str, e: OSError) -> WorkerStartError:
    """What a check says when the machine refused its worker a sandbox directory or a process."""
    return WorkerStartError(
        f"the {family} worker could not be started: {e.strerror or e} ({e.filename or 'a new process'}); free space "
        f"under {tempfile.gettempdir()} (TMPDIR chooses where its sandbox goes), or raise the process limit"
    )


def launch_spare() -> Worker:
    """A worker process started before the session that will take it exists (Workers.start_spare): its interpreter
    starts while pytest loads its plugins. Until it is given its setup it only waits: no limits, no backends, no
    model; `discard` ends it."""
    w = Worker("unassigned", Limits())
    w._launch()
    return w


def discard(launched: Worker) -> None:
    """End a launched worker nobody took, and remove its sandbox."""
    launched.stop(kill=True)
    if launched.sandbox is not None:
        launched.sandbox.remove()


def _how_busy() -> str:
    """How busy this machine is, for a timeout's message: a model near its limit on a loaded machine may finish on
    an idler or faster one, and the verdict is then the machine's."""
    try:
        load = os.getloadavg()[0]
    except (OSError, AttributeError):
        return ""
    return f"; this machine: {os.cpu_count() or '?'} CPUs, load average {load:.1f} over the last minute"


def _of_the_machine(signal_name: str, limits: Limits) -> str | None:
    """What of this machine a worker's death may come from, where the signal says it may: an instruction its CPU
    lacks (SIGILL), or memory it has not got (SIGKILL: the kernel's out-of-memory killer acts before a limit higher
    than the machine's memory). The same model may then pass on another machine: the message names this one."""
    from model_checks.core.machine import memory_mib, this_machine

    if signal_name == "SIGILL":
        return (
            "A runtime built for instructions this CPU lacks dies so on this machine only, whatever the model "
            f"(this machine: {this_machine(providers=False).describe()})"
        )
    if signal_name != "SIGKILL" or (memory := memory_mib()) is None:
        return None
    if memory > limits.memory_mb:
        return (
            f"This machine has {memory:,} MiB of memory, above the worker's limit, which stops a model that needs more "
            "first (memory limit exceeded): the kill more likely came from elsewhere (other processes' memory, a job's "
            "timeout)"
        )
    return (
        f"This machine has {memory:,} MiB of memory, no more than the worker's limit: the kernel, not the limit, stops "
        f"a model that needs more, and on a larger machine it may pass. Set --model-checks-worker-memory below "
        f"{memory} for a verdict that names what the model needs"
    )


def _known_error(info: ErrorInfo) -> type[ModelChecksError] | None:
    """The ModelChecksError class the worker raised, when it is one of ours that this process has imported (rebuilt
    with its message). Nothing is imported on an answer's word: the module is only looked up."""
    module = sys.modules.get(info.module) if info.module.startswith("model_checks") else None
    cls = getattr(module, info.name, None) if module is not None else None
    return cls if isinstance(cls, type) and issubclass(cls, ModelChecksError) else None


def _not_an_answer(op: str, status: str, value: Any, requests: int, returns: Any = None) -> str | None:
    """Why `value` cannot be a worker's answer to `op` (None when it can): an error is the worker's ErrorInfo, and
    each operation answers with one shape, which the code that asks relies on; `call` answers with what its function
    declares it returns (`returns`, see isolation.returns)."""
    if status == "err":
        info = isinstance(value, ErrorInfo) and type(value.memory) is bool
        if info and all(type(x) is str for x in (value.module, value.name, value.message)):
            return None
        return f"its error is not the worker's ErrorInfo of text and a flag (a {type(value).__name__})"
    why = None
    if op == "infer":
        sets = value if isinstance(value, list) else [value]
        if isinstance(value, list) and len(value) != requests:
            why = f"{len(value)} sets of outputs for {requests} sets of feeds"
        elif not all(_arrays_by_name(outs) for outs in sets):
            why = "outputs that are not arrays by name"
    elif op == "infer_bodies":
        why = _not_answered_bodies(value, requests)
    elif op == "load":
        from model_checks.manifest.model import TensorSpec

        if not (
            type(value) is tuple
            and len(value) == 5
            and all(type(x) is int for x in (value[0], value[4]))
            and type(value[3]) is str
            and all(type(t) is tuple and all(isinstance(s, TensorSpec) for s in t) for t in value[1:3])
        ):
            why = "not a loaded model's (handle, inputs, outputs, description, bytes)"
    elif op == "facts":
        from model_checks.backends.base import ModelFacts

        if not isinstance(value, ModelFacts):
            why = f"a {type(value).__name__}, not the model's facts"
    elif op == "validate" and not (type(value) is list and all(type(x) is str for x in value)):
        why = "not a list of problems in words"
    elif op == "call" and returns is not None:
        name, hint = returns
        try:
            why = mismatch(value, hint, f"{name}()")
        except Exception as e:  # whatever the data is, reading it is not the gate's internal error
            why = f"{name}() could not be held to {hint} ({type(e).__name__})"
        if why is not None:
            return f"it is not what {name} returns: {why}"
    return None if why is None else f"it is not what {_said(op)} answers: {why}"


def _said(op: str) -> str:
    """An operation as its errors name it: a service's requests read in the worker (infer_bodies) are an inference."""
    return "infer" if op == "infer_bodies" else op


def _arrays_by_name(outs: Any) -> bool:
    return type(outs) is dict and all(type(k) is str and isinstance(a, frames.np.ndarray) for k, a in outs.items())


def _not_answered_bodies(value: Any, requests: int) -> str | None:
    """Why `value` is not an answer to `requests` bodies (worker._Models.infer_bodies): a set of outputs and a tag
    for each, ("ok", its id or None, the names of the outputs it wants as binary data) or ("refused", a 4xx status,
    why) with no outputs."""
    if not (isinstance(value, frames.Tagged) and type(value.tensors) is list and type(value.tags) is list):
        return f"a {type(value).__name__}, not tagged outputs"
    if not len(value.tensors) == len(value.tags) == requests:
        return f"{len(value.tensors)} sets of outputs and {len(value.tags)} tags for {requests} requests"
    for outs, tag in zip(value.tensors, value.tags):
        if not (type(tag) is tuple and len(tag) == 3 and _arrays_by_name(outs)):
            return "outputs that are not arrays by name, or tags that are not (kind, x, y)"
        kind, x, y = tag
        if kind == "ok" and (x is None or _text(x)) and type(y) is tuple and all(type(n) is str for n in y):
            continue
        if kind == "refused" and type(x) is int and 400 <= x < 500 and _text(y) and not outs:
            continue
        return (
            "a tag that is neither (ok, id, binary outputs) nor (refused, a 4xx status, why) with no outputs, "
            f"its text at most {TAG_TEXT_CHARS} characters"
        )
    return None


def _text(x: Any) -> bool:
    return type(x) is str and len(x) <= TAG_TEXT_CHARS


def _loads_after(worker: Worker, load: Sent) -> bool:
    """Whether a load was sent to `worker` after `load` (an inference sent ahead takes the last load's model)."""
    pending = list(worker._pending)
    return any(s.op == "load" for s in pending[pending.index(load) + 1 :])


class Workers:
    """The workers of one session, one per framework family, and the models that crashed them."""

    def __init__(self, limits: Limits | None = None, first: tuple[Path, ...] = ()):
        self.limits = limits or Limits()
        self.first = first  # imported ahead of site-packages (see Sandbox)
        self._sandbox: Sandbox | None = None
        self._workers: dict[str, Worker] = {}
        self._spare: Worker | None = None  # started before its framework was known (see start_spare)
        self._ahead: dict[tuple, Sent] = {}  # (format, op, args) -> a request sent ahead (see prefetch)
        self._failed: dict[tuple[str, str], ModelChecksError] = {}
        # (format, load arguments) -> (the cases' tensors, the load, the inference): see prefetch_infer
        self._ahead_infer: dict[tuple, tuple[list, Sent, Sent]] = {}

    def worker(self, fmt: str) -> Worker:
        family = backend_family(fmt)
        if family not in self._workers:
            spare, self._spare = self._spare, None
            if spare is not None and family not in CONFINED_FAMILIES and spare.alive:
                spare.family = family  # the first framework asked for takes the process already started
                self._workers[family] = spare
            else:
                if spare is not None:
                    spare.stop()
                self._workers[family] = Worker(family, self.limits, self._sandbox_now(family))
        return self._workers[family]

    def _sandbox_now(self, family: str = "unassigned") -> Sandbox:
        if self._sandbox is None:
            try:
                self._sandbox = Sandbox(self.first)
            except OSError as e:
                raise not_started(family, e) from None
        return self._sandbox

    def start_spare(self, launched: Worker | None = None) -> None:
        """Start one worker process before it is known which framework it will serve: its interpreter, numpy and
        the gate's own modules load while the parent is still starting (configuring, discovering, collecting).
        The first unconfined framework asked for (`worker`, `start_early`) takes it; unclaimed, `close` stops it.
        It is given no model and no artifact's path until then, and runs under the same limits and sandbox.
        `launched` (see `launch_spare`): a process already started that waits for its setup; it becomes the spare
        (with this session's limits and backends), or is stopped where it cannot (a candidate runtime's sandbox)."""
        if self._spare is not None or self._workers:
            if launched is not None:
                discard(launched)
            return
        if launched is not None and launched.alive and not self.first and self._sandbox is None:
            self._sandbox, launched.limits = launched.sandbox, self.limits
            launched._set_up()
            self._spare = launched
        elif launched is not None:
            discard(launched)
        try:
            if self._spare is None:
                self._spare = Worker("unassigned", self.limits, self._sandbox_now())
            self._spare.send_quietly("warm", ((),))  # no runtime yet: the backends' common modules only
        except WorkerStartError:  # the first request starts its worker, or its check says why not
            self._spare = None

    def start_early(self, formats: set[str]) -> None:
        """Start the workers `formats` run in, and have them import their runtimes, without waiting: a worker's
        start-up (an interpreter, numpy, the runtime) then overlaps the rest of collection instead of delaying
        the first check."""
        by_family: dict[str, list[str]] = {}
        for fmt in sorted(formats):
            by_family.setdefault(backend_family(fmt), []).append(fmt)
        for fmts in by_family.values():
            try:
                w = self.worker(fmts[0])
                if not w.alive or not w.warmed:  # a fresh process, or the spare it took
                    w.send_quietly("warm", (tuple(fmts),))
                    w.warmed = True
            except WorkerStartError:  # said by the first check that asks this worker for something
                pass

    @property
    def spare_waiting(self) -> bool:
        return self._spare is not None

    def give_spare(self, fmt: str) -> None:
        """The spare worker, if one is waiting, goes to `fmt`'s family now and imports its runtime (start_early):
        for the framework the session needs first, as soon as it is known, ahead of collection."""
        if self._spare is not None and backend_family(fmt) not in CONFINED_FAMILIES:
            self.start_early({fmt})

    def reset_peaks(self) -> None:
        """Start the workers' peak resident memory over, for the next artifact's figure (see peak_bytes)."""
        for w in self._workers.values():
            w.peak_bytes = 0

    def peak_bytes(self) -> int:
        """The highest peak resident memory of the workers while they served the requests whose answers were taken
        since the last reset: an artifact's own, wherever and whenever they ran (its requests sent ahead
        included), with what the worker held meanwhile (its interpreter and runtime, the models it kept)."""
        return max((w.peak_bytes for w in self._workers.values()), default=0)

    def request(self, fmt: str, op: str, args: tuple, path: Path, requests: int = 1) -> Any:
        """Ask `fmt`'s worker; a model that crashed, starved or hung a worker is not sent again for `op`. A
        request `prefetch` sent ahead is answered by that one's answer (or its error, as if asked now)."""
        __tracebackhide__ = True
        self.refuse_again(path, op)
        try:
            ahead = self._ahead.pop((fmt, op, args), None)
        except TypeError:  # unhashable arguments (an inference's arrays): never sent ahead by `prefetch`
            ahead = None
        try:
            if ahead is not None:
                w = self.worker(fmt)
                try:
                    value = w.answer(ahead)
                except Lost:  # its worker broke on another request first: ask the fresh one
                    pass
                else:  # a model loaded by a worker that has since broken is not there to use
                    if op != "load" or (w.alive and ahead.generation == w.generation):
                        return value
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

    def prefetch(self, fmt: str, op: str, args: tuple, path: Path) -> None:
        """Send `op` ahead, without waiting: the worker does it while the parent goes on, and `request` with the
        same arguments takes its answer. A crash, a timeout or an error it meets is reported when, and only
        if, it is asked for, under its own operation, as if sent then. Only for operations that hold nothing
        of the worker's state in their arguments (validate, facts, load), and not for a model already known to
        break its worker."""
        if (str(path), op) in self._failed or (fmt, op, args) in self._ahead:
            return
        self._ahead[(fmt, op, args)] = self.worker(fmt).send(op, args, path.name)

    @contextmanager
    def together(self, fmt: str) -> Iterator[None]:
        """The requests sent meanwhile to `fmt`'s worker go in one write (Worker.together)."""
        with self.worker(fmt).together():
            yield

    def prefetch_infer(self, fmt: str, load_args: tuple, cases: list[list[tuple[str, Any]]], path: Path) -> None:
        """Send an inference of `cases` (each its tensors in order, as (name in the file, values): ONNX test data
        read before the model's input names are known) right behind the load `prefetch` just sent, for the model
        that load loads (worker.AHEAD: the worker names an unnamed tensor after the model's input at its place,
        as the check will). `take_infer` gives its answer to the check that runs those very feeds on that load."""
        load = self._ahead.get((fmt, "load", load_args))
        w = self.worker(fmt)
        if load is None or load not in w._pending or _loads_after(w, load):
            return
        if (str(path), "infer") in self._failed or (fmt, load_args) in self._ahead_infer:
            return
        from model_checks.isolation.worker import AHEAD

        feeds = [{f"{i}:{name}": values for i, (name, values) in enumerate(case)} for case in cases]
        self._ahead_infer[(fmt, load_args)] = (cases, load, w.send("infer", (AHEAD, feeds), path.name, len(cases)))

    def take_infer(
        self, fmt: str, load_args: tuple, feeds: list, handle: int, generation: int, names: list[str], path: Path
    ) -> list | None:
        """The outputs of the inference `prefetch_infer` sent for these very feeds (the same arrays under the names
        the model gives them) on the model loaded as `handle` in the worker's `generation`; None when there is none
        to take (ask as usual). A crash or hang it met is the inference's failure, as if asked now."""
        from model_checks.backends.base import named_feeds

        entry = self._ahead_infer.pop((fmt, load_args), None)
        if entry is None:
            return None
        cases, load, sent = entry
        if not load.done or load.error is not None or load.generation != sent.generation or len(cases) != len(feeds):
            return None
        for case, f in zip(cases, feeds):
            named = named_feeds(case, names)
            if named.keys() != f.keys() or any(f[k] is not v for k, v in named.items()):
                return None
        self.refuse_again(path, "infer")
        ours = load.generation == generation and load.value[0] == handle  # the check's model is that load's
        try:
            value = self.worker(fmt).answer(sent)
        except Lost:
            return None
        except WorkerBrokeError as e:  # these feeds crashed (or hung) the model's worker
            self.broke(path, "infer", e)
            raise
        except ModelChecksError:
            if ours:
                raise
            return None
        return value if ours else None

    def _every(self) -> list[Worker]:
        """Every worker process of this session: one a family, and the spare while unclaimed."""
        return [*self._workers.values(), *([self._spare] if self._spare is not None else [])]

    def quiet(self) -> None:
        """Every running worker done with what it was sent, its runtime's import included: before this process
        times a model, nothing sent ahead (the next artifact's load, plugin.verdict) shares the cores with the
        measurement. The answers read meanwhile are kept for whoever asks, a failure among them said by its own
        request; a worker that died is not started again for this."""
        for w in self._every():
            w.settle()
            if w.alive:
                try:
                    w.request("idle", (), "the worker")
                except (ModelChecksError, Lost):  # a worker dying now: the next request that needs it says so
                    pass

    def settle(self, fmt: str) -> None:
        """Read what `fmt`'s worker still owes (see Worker.settle): before a request that names a loaded model."""
        family = backend_family(fmt)
        if family in self._workers:
            self._workers[family].settle()

    def forget(self, path: Path) -> None:
        """Requests sent ahead for `path` that nobody asked for: their answers are read and dropped, and a model
        loaded for them is released, so that nothing of `path` stays in a worker after its last check."""
        for key in [k for k in self._ahead_infer if Path(k[1][0]) == path]:
            sent = self._ahead_infer.pop(key)[2]
            try:
                self.worker(key[0]).answer(sent)
            except (ModelChecksError, Lost):
                pass
        for key in [k for k in self._ahead if Path(k[2][0]) == path]:
            fmt, op, _ = key
            sent = self._ahead.pop(key)
            w = self.worker(fmt)
            try:
                handle = w.answer(sent)
            except (ModelChecksError, Lost):
                continue
            if op == "load" and w.alive and sent.generation == w.generation:
                w.send_quietly("close_quietly", (handle[0],), later=handle[4] < HOLD_RELEASE_BYTES)

    def call(self, fmt: str, fn: Any, *args: Any) -> Any:
        """Run a picklable callable in `fmt`'s worker (the test hook for crashes on purpose)."""
        return self.worker(fmt).request("call", (fn, args), getattr(fn, "__name__", "call"))

    def wind_down(self) -> None:
        """Ask every worker to exit, without waiting: they wind down while pytest reports, and `close` reaps them."""
        for w in self._every():
            w.request_exit()

    def close(self) -> None:
        # Ask every worker to exit first, then wait: they wind down side by side, not one after another.
        every = self._every()
        self.wind_down()
        for w in every:
            w.stop()
        self._workers.clear()
        self._spare = None
        self._ahead.clear()
        self._ahead_infer.clear()
        if self._sandbox is not None:
            self._sandbox.remove()
            self._sandbox = None
