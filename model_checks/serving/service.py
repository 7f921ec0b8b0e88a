"""The service: one artifact behind the Open Inference Protocol on Starlette and uvicorn, in one process.
The model runs through the gate's pool (its backends, trust rules and worker limits), one inference at a time."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from model_checks.core.artifact import Artifact
from model_checks.core.environment import replace as replace_environment
from model_checks.core.environment import restore as restore_environment
from model_checks.core.errors import ModelChecksError, WorkerBrokeError
from model_checks.core.pool import ModelPool
from model_checks.isolation.limits import Limits
from model_checks.serving.protocol import (
    HEADER_LENGTH,
    MAX_BODY_BYTES,
    ProtocolError,
    binary_body,
    encode_response,
    model_metadata,
    read_request,
)

KEEP_ALIVE_S = 75  # seconds an idle keep-alive connection stays open, as common proxies keep theirs
REQUEST_READ_S = 30.0  # a request whose head or body stops arriving for this long is dropped (slowloris)
MAX_RESPONSE_BYTES = 64 * 1024**2
JSON_BYTES_PER_VALUE = 24  # the most one number takes in a response (a float's repr, a comma, a space)
# Requests sent to the worker in one round trip at most: the round trip's timeout is the worker's timeout times
# their number (as for the gate's cases), so this also bounds how long a hung model keeps them waiting.
MAX_TOGETHER = 8
# How long the service polls for the worker's answer before it waits for it on the event loop: only while it has one
# request in hand and answers have come that fast (see ServedModel.spin, awaited.Spin).
SPIN_S = 150e-6
# How long the model's worker polls for the next request after answering one before it sleeps (Limits.linger_s):
# waking a sleeping worker took the service more CPU than anything else a request did (isolation.worker._Linger).
WORKER_LINGER_S = 1e-3
INLINE_BODY_BYTES = 256 * 1024  # a request body up to this size goes from the event loop (see ServedModel.answer)


def model_threads() -> int:
    """Intra-op threads for a model served from a worker: every CPU this process may use but one, which the service's
    event loop needs for HTTP while the worker computes. A runtime's default takes them all, and onnxruntime spins
    its threads between runs: on two cores that spinning took the core the service needed (the worker used 500-700
    µs of CPU a digits request with its default, 60-160 µs with one thread; bench/overhead.py row c)."""
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        usable = os.cpu_count() or 1
    return max(1, usable - 1)


def open_artifact(directory: Path, root: Path | None = None) -> Artifact:
    """The artifact in `directory`, read as the gate reads it under `root` (default: the nearest ancestor
    with a policy.yaml, else the directory's parent, so that a sibling reference resolves)."""
    from model_checks.core.discovery import POLICY
    from model_checks.manifest import load_manifest, load_policy

    directory = Path(os.path.normpath(directory.absolute()))
    if not (directory / "metadata.yaml").is_file():
        raise ModelChecksError(f"{directory} holds no metadata.yaml; pass an artifact directory")
    if root is None:
        root = next((p for p in directory.parents if (p / POLICY).is_file()), directory.parent)
    root = Path(os.path.normpath(root.absolute()))
    policy = load_policy(root / POLICY, f"{root.name}/{POLICY}")
    display = f"{directory.relative_to(root).as_posix()}/metadata.yaml"
    m = load_manifest(directory / "metadata.yaml", display, policy, f"{root.name}/{POLICY}")
    return Artifact(id=m.id, root=root, dir=directory, manifest=m)


@dataclass(frozen=True)
class InferRequest:
    """A checked infer request: the feeds, its id, and the outputs it wants back as binary data."""

    feeds: dict[str, np.ndarray]
    id: str | None
    binary: frozenset[str]


@dataclass(frozen=True)
class Answer:
    """An infer response: the document, and with binary outputs the whole body and the length of its JSON part."""

    doc: dict[str, Any]
    body: bytes | None = None
    header_length: int = 0


@dataclass
class ServedModel:
    """The loaded model and its interface; `ready` once loaded and one warm-up inference ran."""

    artifact: Artifact
    pool: ModelPool
    interface: list = field(default_factory=list)
    outputs: list = field(default_factory=list)
    ready: bool = False
    error: str | None = None
    runner: Any = None  # the loaded model, once ready
    threads: int | None = None  # the model's intra-op threads (None: the runtime's default; see model_threads)
    max_response: int = MAX_RESPONSE_BYTES  # an answer larger than this (as JSON) is refused before it is encoded
    # One long-lived thread loads the model and runs every inference: inferences are serialized, and the
    # worker process it starts lives as long as the thread (a worker dies with the thread that started it).
    thread: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(1, thread_name_prefix="model-checks-model")
    )
    # One request on the worker's pipe at a time, whether the loop or the model's thread sends it.
    pipe: asyncio.Lock = field(default_factory=asyncio.Lock)
    waiting: list = field(default_factory=list)  # (request, future) of requests waiting for the pipe (see _answered)
    active: int = 0  # requests being answered on the event loop
    spinner: Any = None  # awaited.Spin, made on first use
    reads: Any = None  # awaited.Interface: what the model's worker reads requests against, once loaded
    freeze_heap: bool = False  # after the load, what the process holds is left out of the collector's passes (serve)

    @property
    def name(self) -> str:
        assert self.artifact.manifest is not None
        return self.artifact.manifest.model_name

    @property
    def version(self) -> str:
        assert self.artifact.manifest is not None
        return self.artifact.manifest.version

    def load(self) -> None:
        """Load, warm up once, then say ready; a failure is kept and reported by /v2/health/ready."""
        from model_checks.checks.context import CheckContext
        from model_checks.core.inputs import merge_interface

        served = self.threads

        class Context(CheckContext):  # every runner it asks for (the interface's, the warm-up's) is the served one
            def runner(self, threads: int | None = None) -> Any:
                return super().runner(threads or served)

        try:
            ctx = Context(self.artifact, self.pool)
            runner = ctx.runner()
            self.interface = ctx.interface()
            declared = {t.name: t for t in self.artifact.manifest.outputs or ()}  # type: ignore[union-attr]
            self.outputs = merge_interface(list(declared.values()) if declared else None, runner.outputs)
            runner.infer(ctx.cases()[0].inputs)
            from model_checks.serving.awaited import Interface

            self.reads = Interface(tuple(self.interface), tuple(t.name for t in self.outputs))
            self.runner, self.ready = runner, True
        except ModelChecksError as e:
            self.error = str(e)
        except Exception as e:  # a broken model must leave a service that says why, not a dead thread
            self.error = f"{type(e).__name__}: {e}"
        finally:
            if self.freeze_heap:
                _freeze_heap()

    def decode(self, body: bytes, header_length: str | None = None) -> InferRequest:
        """An infer request's body (and its Inference-Header-Content-Length, if any), checked against the model."""
        if not self.ready:
            raise ProtocolError(503, f"model {self.name} is not ready" + (f": {self.error}" if self.error else " yet"))
        return InferRequest(*read_request(body, header_length, self.interface, [t.name for t in self.outputs]))

    def run(self, feeds: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """The model's outputs, on the model's thread (a failure of the model's is a 500 naming it)."""
        try:
            return self.runner.infer(feeds)
        except ModelChecksError as e:
            raise ProtocolError(500, f"model {self.name}: {e}") from None

    def encode(self, outputs: dict[str, np.ndarray], request: InferRequest) -> Answer:
        arrays = [(n, np.asarray(a)) for n, a in outputs.items()]
        values = sum(a.size for n, a in arrays if n not in request.binary)
        size = values * JSON_BYTES_PER_VALUE + sum(a.nbytes for n, a in arrays if n in request.binary)
        if size > self.max_response:
            raise ProtocolError(
                500,
                f"model {self.name}: the response would hold {values} values as JSON and "
                f"{size - values * JSON_BYTES_PER_VALUE} bytes of binary data (up to {size / 1024**2:.1f} MiB), over "
                f"the cap of {self.max_response / 1024**2:g} MiB (--max-response-mb); not encoded"
                if request.binary
                else f"model {self.name}: the response would hold {values} values (up to "
                f"{values * JSON_BYTES_PER_VALUE / 1024**2:.1f} MiB as JSON), over the cap of "
                f"{self.max_response / 1024**2:g} MiB (--max-response-mb); not encoded",
            )
        doc = encode_response(self.name, self.version, outputs, request.id, request.binary)
        if not request.binary:
            return Answer(doc)
        return Answer(doc, *binary_body(doc, outputs, request.binary))

    def infer(self, body: bytes, header_length: str | None = None) -> Answer:
        """An infer request's body -> the answer (ProtocolError for the client's or the model's fault), all of it on
        the model's thread."""
        request = self.decode(body, header_length)
        return self.encode(self.run(request.feeds), request)

    async def answer(self, body: bytes, header_length: str | None = None) -> Answer:
        """`infer` from the event loop. A small request goes as it came to the model's running worker, which reads it
        (the client's JSON is parsed there, beside the model's other untrusted input, not in the service) and answers
        it; the wait is awaited here (`awaited`): no hop to the model's thread and back. A large body is decoded on
        the model's thread, so parsing it does not hold up the loop's other connections; a request that comes while
        the model is loading waits there for the load (then answered, or told why not), as before."""
        loop = asyncio.get_running_loop()
        if len(body) > INLINE_BODY_BYTES or not self.ready:  # large, or asked while loading: waits for the load
            async with self.pipe:
                return await loop.run_in_executor(self.thread, self.infer, body, header_length)
        self.active += 1
        try:
            return self.encode(*await self._answered(self._asked(body, header_length)))
        finally:
            self.active -= 1

    def _asked(self, body: bytes, header_length: str | None) -> tuple[bytes, str | None] | InferRequest:
        """A request as it goes to the pipe: as it came, for an isolated model's worker to read; read here for a model
        in this process (outside the pipe's lock: while the model runs the request before)."""
        from model_checks.isolation.runner import IsolatedRunner

        return (body, header_length) if isinstance(self.runner, IsolatedRunner) else self.decode(body, header_length)

    @property
    def spin(self) -> Any:
        """The bounded poll for the worker's answer (awaited.Spin), only with no other request in hand: polling holds
        up the loop, which would otherwise read the next requests while the worker computes. With one request in
        hand the wait on the loop costs about as much CPU as the poll (a sleep and a wake-up) and more latency."""
        from model_checks.serving.awaited import Spin

        if self.active != 1:
            return None
        if self.spinner is None:
            self.spinner = Spin(SPIN_S)
        return self.spinner

    async def _answered(self, asked: Any) -> tuple[dict[str, np.ndarray], InferRequest]:
        """The model's outputs for a request (`_asked`) and the request as read. Requests that arrive
        while the worker is busy wait together, and the first of them to get the pipe sends them all in one round
        trip (each still its own inference)."""
        if not self.pipe.locked():  # nobody to wait with
            async with self.pipe:
                return await self._one(asked)
        mine = asyncio.get_running_loop().create_future()
        self.waiting.append((asked, mine))
        async with self.pipe:
            if not mine.done():
                batch, self.waiting = self.waiting[:MAX_TOGETHER], self.waiting[MAX_TOGETHER:]
                await self._run_together(batch)
        return mine.result()

    async def _run_together(self, batch: list[tuple[Any, asyncio.Future]]) -> None:
        """Answer every future of `batch`: one round trip for all, or, when that cannot be (a model not loaded in
        its running worker) or one of them failed in the model, each on its own, so only that one gets the
        failure. A crash, a hang or a memory limit answers all of them (they were all in the worker then)."""
        from model_checks.serving import awaited

        try:
            try:
                answers = await awaited.infer_bodies(self.runner, [a for a, _ in batch], self.reads)
            except ModelChecksError as e:
                if len(batch) == 1 or isinstance(e, WorkerBrokeError):
                    raise ProtocolError(500, f"model {self.name}: {e}") from None
                answers = None
            for i, (asked, future) in enumerate(batch):
                try:
                    future.set_result(self._taken(answers[i]) if answers is not None else await self._one(asked))
                except Exception as e:  # this request's failure, not its neighbours'
                    future.set_exception(e)
        except Exception as e:
            for _, future in batch:
                if not future.done():
                    future.set_exception(e)
        finally:  # cancelled (the service stopping): no request is left waiting for an answer that will not come
            for _, future in batch:
                if not future.done():
                    future.set_exception(ProtocolError(503, f"model {self.name}: the service is stopping"))

    async def _one(self, asked: Any) -> tuple[dict[str, np.ndarray], InferRequest]:
        from model_checks.serving import awaited

        try:
            answers = await awaited.infer_bodies(self.runner, [asked], self.reads, self.spin)
        except ModelChecksError as e:
            raise ProtocolError(500, f"model {self.name}: {e}") from None
        if answers is None:  # the model in this process, or not loaded in its running worker: read here, run there
            request = asked if isinstance(asked, InferRequest) else self.decode(*asked)
            return await asyncio.get_running_loop().run_in_executor(self.thread, self.run, request.feeds), request
        return self._taken(answers[0])

    def _taken(self, answer: Any) -> tuple[dict[str, np.ndarray], InferRequest]:
        """A request's answer from the worker (awaited.infer_bodies): its outputs and the request as the worker read
        it, or its refusal raised. Only the model's own outputs can be sent back as binary data."""
        if isinstance(answer, ProtocolError):
            raise answer
        outputs, rid, binary = answer
        return outputs, InferRequest({}, rid, binary & self.reads.names)

    def metadata(self) -> dict[str, Any]:
        if not self.ready:
            raise ProtocolError(503, f"model {self.name} is not ready" + (f": {self.error}" if self.error else " yet"))
        return model_metadata(self.name, self.version, self.artifact.format or "?", self.interface, self.outputs)


def served_pool(trust_code: bool, isolation: Limits | None) -> ModelPool:
    """A service's pool: every request answered by the model afresh (no shared outputs), and its worker, under the
    gate's limits, polling for the next request for WORKER_LINGER_S after each answer."""
    from dataclasses import replace

    limits = replace(isolation, linger_s=WORKER_LINGER_S) if isolation is not None else None
    return ModelPool(trust_code=trust_code, isolation=limits, share_outputs=False)


def _freeze_heap() -> None:
    """Leave what the service holds once its model is loaded (imports, the app, the model's interface and worker)
    out of the cyclic collector's passes for the rest of its life (`gc.freeze`, as long-running servers do after
    start-up): each full pass walked all of it again for a request's few short-lived objects (bench/overhead.py
    row c: 3-8 us of the service's CPU a request). Garbage already made is collected first, so nothing is kept."""
    import gc

    gc.collect()
    gc.freeze()


def build_app(model: ServedModel, max_body: int = MAX_BODY_BYTES, load_in_background: bool = True):  # type: ignore[no-untyped-def]
    """The Starlette application; with `load_in_background` the model loads after startup (live at once, ready later)."""
    import contextlib

    from starlette.applications import Starlette
    from starlette.exceptions import HTTPException
    from starlette.requests import Request
    from starlette.responses import JSONResponse, Response
    from starlette.routing import Route

    def error(status: int, message: str) -> JSONResponse:
        return JSONResponse({"error": message}, status_code=status)

    def check_name(request: Request) -> None:
        name = request.path_params["name"]
        if name != model.name:
            raise ProtocolError(404, f"unknown model {name!r}; this service serves {model.name!r}")
        version = request.path_params.get("version")
        if version is not None and version != model.version:
            raise ProtocolError(
                404, f"unknown version {version!r} of model {model.name!r}; it has version {model.version!r}"
            )

    async def read_body(request: Request) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > max_body:
            raise ProtocolError(
                413, f"request body: {int(length)} bytes exceeds the cap of {max_body} bytes (--max-body-mb)"
            )
        chunks, size = [], 0
        async for chunk in request.stream():
            size += len(chunk)
            if size > max_body:
                raise ProtocolError(413, f"request body: more than {max_body} bytes exceeds the cap (--max-body-mb)")
            chunks.append(chunk)
        return b"".join(chunks)

    async def live(request: Request) -> JSONResponse:
        return JSONResponse({"live": True})

    async def ready(request: Request) -> JSONResponse:
        if model.ready:
            return JSONResponse({"ready": True})
        return JSONResponse({"ready": False, **({"error": model.error} if model.error else {})}, status_code=503)

    async def server_metadata(request: Request) -> JSONResponse:
        from importlib.metadata import PackageNotFoundError, version

        try:
            v = version("model-checks")
        except PackageNotFoundError:
            v = "0"
        return JSONResponse({"name": "model-checks", "version": v, "extensions": ["binary_tensor_data"]})

    async def metadata(request: Request) -> JSONResponse:
        check_name(request)
        return JSONResponse(model.metadata())

    async def model_ready(request: Request) -> JSONResponse:
        check_name(request)
        return JSONResponse({"name": model.name, "ready": model.ready}, status_code=200 if model.ready else 503)

    async def infer(request: Request) -> Response:
        check_name(request)
        body = await read_body(request)
        answer = await model.answer(body, request.headers.get(HEADER_LENGTH))
        if answer.body is None:
            return JSONResponse(answer.doc)
        return Response(
            answer.body, media_type="application/octet-stream", headers={HEADER_LENGTH: str(answer.header_length)}
        )

    async def on_protocol_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, ProtocolError)
        return error(exc.status, exc.message)

    async def on_http_error(request: Request, exc: Exception) -> JSONResponse:
        assert isinstance(exc, HTTPException)
        return error(exc.status_code, f"{request.method} {request.url.path}: {exc.detail}")

    async def on_any_error(request: Request, exc: Exception) -> JSONResponse:
        return error(500, f"internal error ({type(exc).__name__}) while answering {request.method} {request.url.path}")

    @contextlib.asynccontextmanager
    async def lifespan(app: Any):  # type: ignore[no-untyped-def]
        if load_in_background and not model.ready:
            model.thread.submit(model.load)
        yield
        model.thread.shutdown(wait=True, cancel_futures=True)

    prefix = "/v2/models/{name}"
    routes = [  # infer first: Starlette tries the routes in order, and no two of these paths overlap
        Route(prefix + "/infer", infer, methods=["POST"]),
        Route(prefix + "/versions/{version}/infer", infer, methods=["POST"]),
        Route("/v2", server_metadata),
        Route("/v2/health/live", live),
        Route("/v2/health/ready", ready),
        Route(prefix, metadata),
        Route(prefix + "/versions/{version}", metadata),
        Route(prefix + "/ready", model_ready),
        Route(prefix + "/versions/{version}/ready", model_ready),
    ]
    handlers = {ProtocolError: on_protocol_error, HTTPException: on_http_error, Exception: on_any_error}
    return Starlette(routes=routes, exception_handlers=handlers, lifespan=lifespan)  # type: ignore[arg-type]


def bounded_protocol(read_timeout_s: float = REQUEST_READ_S) -> type:
    """uvicorn's h11 protocol with a read timeout: a connection that sends nothing, or stops halfway through a
    request's head or body, is closed after `read_timeout_s` (uvicorn's own keep-alive timer only runs between
    requests). A request the application is still answering is left alone."""
    import h11
    from uvicorn.protocols.http.h11_impl import H11Protocol

    class Bounded(H11Protocol):
        _read_timer: Any = None

        def connection_made(self, transport: Any) -> None:  # type: ignore[override]
            super().connection_made(transport)
            self._arm()

        def data_received(self, data: bytes) -> None:
            super().data_received(data)
            self._arm()

        def connection_lost(self, exc: Exception | None) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
            super().connection_lost(exc)

        def _arm(self) -> None:
            if self._read_timer is not None:
                self._read_timer.cancel()
            self._read_timer = self.loop.call_later(read_timeout_s, self._on_read_timeout)

        def _on_read_timeout(self) -> None:
            cycle = self.cycle
            if cycle is not None and not cycle.response_complete and self.conn.their_state is h11.DONE:
                self._arm()  # the application is answering; the worker's timeout bounds that
                return
            half_sent = self.conn.their_state is h11.SEND_BODY or bool(self.conn.trailing_data[0])
            never_asked = self.cycle is None and self.conn.their_state is h11.IDLE
            if (half_sent or never_asked) and not self.transport.is_closing():
                self.transport.close()

    return Bounded


def serve(
    artifact: Artifact,
    host: str = "127.0.0.1",
    port: int = 0,
    trust_code: bool = False,
    isolation: Limits | None = None,
    max_body: int = MAX_BODY_BYTES,
    out: TextIO = sys.stdout,
    max_response: int = MAX_RESPONSE_BYTES,
    read_timeout_s: float = REQUEST_READ_S,
) -> int:
    """Serve until SIGTERM or SIGINT (graceful: in-flight requests finish). Prints `http://HOST:PORT` on a line of its own."""
    from model_checks.core.requires import require

    require("starlette", "serving", "serving")
    require("uvicorn", "serving", "serving")
    import uvicorn

    from model_checks.serving.net import bound_socket

    sock = bound_socket(host, port)
    home, environment = _private_home()
    if isolation is not None:  # the service answers under the gate's memory limit too, not only its worker
        from model_checks.isolation.worker import apply_limits

        apply_limits(isolation.memory_mb)
    pool = served_pool(trust_code, isolation)
    try:
        from model_checks.backends import require_trust_for

        require_trust_for(artifact.model_path, artifact.format or "?", trust_code)  # refused before anything listens
        model = ServedModel(
            artifact,
            pool,
            max_response=max_response,
            threads=model_threads() if isolation is not None else None,
            freeze_heap=True,
        )
        app = build_app(model, max_body)
        # keep-alive connections live across a load test's pauses (uvicorn closes idle ones after 5 s by default)
        config = uvicorn.Config(
            app,
            log_level="warning",
            access_log=False,
            lifespan="on",
            timeout_graceful_shutdown=10,
            timeout_keep_alive=KEEP_ALIVE_S,
            http=bounded_protocol(read_timeout_s),
            h11_max_incomplete_event_size=64 * 1024,
        )
        server = uvicorn.Server(config)
        h, p = sock.getsockname()[:2]
        # A SIGTERM or SIGINT (Ctrl-C) from the moment the address is out stops the service gracefully. Until
        # uvicorn's own handlers are in place (in server.run, once its loop runs) these ask it to stop as soon as it
        # has started; uvicorn re-raises the signal it caught after its graceful shutdown, which lands here again,
        # and the process ends with 0 (not a KeyboardInterrupt's traceback).
        stops = (signal.SIGTERM, signal.SIGINT)
        previous = {sig: signal.signal(sig, lambda *_: setattr(server, "should_exit", True)) for sig in stops}
        try:
            print(f"http://{'[' + h + ']' if ':' in h else h}:{p}", file=out, flush=True)
            server.run(sockets=[sock])
        finally:
            for sig, handler in previous.items():
                signal.signal(sig, handler)
        return 0
    finally:
        sock.close()
        pool.close()
        _remove_home(home, environment)
        import gc

        gc.unfreeze()  # a service run in process (the CLI's tests) gives its caller the collector back as it was


HOME_PREFIX = "model-checks-serve-"
HOME_LOCK = ".in-use"  # locked (flock) by the service while it runs (its workers, exec'd, do not hold it)
_held_locks: list[int] = []  # the lock's descriptor, open until the home is removed or the process ends


def _private_home() -> tuple[str, dict[str, str | None]]:
    """A home, cache and temporary directory of the service's own (removed when it stops): onnxruntime, when it runs
    here, writes a device id under the cache directory, which must not be the user's. Made after the homes of
    services that ended without removing theirs are swept (`_sweep_homes`). Returns it with the environment variables
    it replaced, as they were (None: unset), for `_remove_home` to put back."""
    _sweep_homes()
    try:
        home = tempfile.mkdtemp(prefix=HOME_PREFIX)
    except OSError as e:  # the machine's (a full or read-only disk): a sentence, not a traceback
        from model_checks.core.errors import ModelChecksError

        raise ModelChecksError(
            f"the service's private home could not be made: {e.strerror or e} ({e.filename or tempfile.gettempdir()}); "
            f"free space under {tempfile.gettempdir()} (TMPDIR chooses where)"
        ) from None
    _lock_home(home)
    values = {
        key: os.path.join(home, sub).rstrip(os.sep)
        for key, sub in (("HOME", ""), ("XDG_CACHE_HOME", ".cache"), ("TMPDIR", "tmp"))
    }
    for folder in values.values():
        os.makedirs(folder, exist_ok=True)
    saved = replace_environment(values)
    tempfile.tempdir = None  # tempfile re-reads TMPDIR
    return home, saved


def _lock_home(home: str) -> None:
    """Mark `home` in use for this process's life: a lock file locked before it takes its name, so a sweep never sees
    it unlocked. The kernel drops the lock when the process ends, by SIGKILL or the OOM killer too."""
    try:
        import fcntl
    except ImportError:  # not a POSIX system: no lock, and no sweep either
        return
    part = os.path.join(home, HOME_LOCK + ".new")
    try:
        fd = os.open(part, os.O_CREAT | os.O_WRONLY | os.O_EXCL | os.O_CLOEXEC, 0o600)
    except OSError:  # a full disk: the home works unlocked, and a sweep leaves it (it has no lock file)
        return
    _held_locks.append(fd)
    fcntl.flock(fd, fcntl.LOCK_EX)
    os.rename(part, os.path.join(home, HOME_LOCK))


def _remove_home(home: str, environment: dict[str, str | None]) -> None:
    """Remove the private home and give the process its environment back (a service run in process, as the CLI's
    tests and a notebook run it, leaves no variable naming a folder that is gone)."""
    restore_environment(environment)
    tempfile.tempdir = None
    shutil.rmtree(home, ignore_errors=True)
    while _held_locks:  # a service run in-process (the CLI's tests) leaves no descriptor behind
        os.close(_held_locks.pop())


def _sweep_homes() -> None:
    """Remove the private homes that services of this user left behind when they were killed before their cleanup
    could run (SIGKILL, the OOM killer, a CI job's timeout): those whose lock no living process holds. A home without
    a lock file (one being made, or an older version's) and another user's are left alone; nothing here fails the
    service."""
    try:
        import fcntl

        entries = list(os.scandir(tempfile.gettempdir()))
    except (ImportError, OSError):
        return
    for entry in entries:
        try:
            if not entry.name.startswith(HOME_PREFIX) or not entry.is_dir(follow_symlinks=False):
                continue
            if entry.stat(follow_symlinks=False).st_uid != os.getuid():
                continue
            fd = os.open(os.path.join(entry.path, HOME_LOCK), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)  # held: a running service's home
        except OSError:
            os.close(fd)
            continue
        shutil.rmtree(entry.path, ignore_errors=True)
        os.close(fd)
