"""Loaded models, shared across checks: each model is loaded at most once and released when its last
check is done. Works without pytest; the plugin tells it when a model's last user has finished."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping

from model_checks.backends import backend, require_trust_for
from model_checks.backends.base import ModelFacts, Names, Runner
from model_checks.core.errors import CheckStepError, ModelChecksError, WorkerStartError, runtime_error_text
from model_checks.core.lazy import lazy
from model_checks.isolation.limits import Limits
from model_checks.safety.digest import Digests
from model_checks.safety.paths import proven_files

np = lazy("numpy")

if TYPE_CHECKING:
    from model_checks.isolation.workers import Workers


# A model whose loading took this much of its worker's memory is held alone: loading another model unloads it
# first (it loads again if asked to run on feeds it has not answered yet), so that a large variant and its
# large reference never sit in memory together, and a session's peak follows its largest model, not the sum.
LARGE_MODEL_BYTES = 256 * 1024**2
# Outputs a runner keeps for reuse, at most: beyond it a model's answers are recomputed rather than held.
SHARED_OUTPUTS_BYTES = 64 * 1024**2


def feeds_key(feeds: Mapping[str, Any]) -> tuple | None:
    """What identifies a set of feeds: names, dtypes, shapes and a digest of the bytes; None for feeds that
    cannot be hashed by value (object arrays hold pointers)."""
    key = []
    for name in sorted(feeds):
        a = np.asarray(feeds[name])
        if a.dtype.hasobject:
            return None
        digest = hashlib.blake2b(np.ascontiguousarray(a).view(np.uint8).reshape(-1) if a.size else b"", digest_size=16)
        key.append((name, a.dtype.str, a.shape, digest.digest()))
    return tuple(key)


class SharedRunner(Runner):
    """A pooled runner whose answers are shared: the same feeds run once per session, and every check that asks
    again (equivalence of each variant against one reference, limits, round trip, serving) gets the same
    outputs, read-only. Held up to SHARED_OUTPUTS_BYTES, dropped when the model is released."""

    def __init__(self, inner: Runner):
        self.inner = inner
        self._outputs: dict[tuple, dict[str, np.ndarray]] = {}
        self._bytes = 0

    # the loaded model's own interface (an isolated runner reloads it after a worker restart)
    format = property(lambda self: self.inner.format)  # type: ignore[assignment]
    path = property(lambda self: self.inner.path)  # type: ignore[assignment]
    inputs = property(lambda self: self.inner.inputs)  # type: ignore[assignment]
    outputs = property(lambda self: self.inner.outputs)  # type: ignore[assignment]
    description = property(lambda self: self.inner.description)  # type: ignore[assignment]

    def __getattr__(self, name: str) -> Any:  # what a backend's runner offers beyond Runner (timed, session...)
        return getattr(self.inner, name)

    def infer(self, feeds: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        __tracebackhide__ = True
        return self.infer_many([feeds])[0]

    def infer_many(self, feeds: list[Mapping[str, np.ndarray]]) -> list[dict[str, np.ndarray]]:
        __tracebackhide__ = True
        keys = [feeds_key(f) for f in feeds]
        todo = [i for i, k in enumerate(keys) if k is None or k not in self._outputs]
        fresh = dict(zip(todo, self.inner.infer_many([feeds[i] for i in todo]) if todo else [], strict=True))
        for i, out in fresh.items():
            self._keep(keys[i], out)
        return [dict(fresh[i]) if i in fresh else dict(self._outputs[k]) for i, k in enumerate(keys)]  # type: ignore[index]

    def _keep(self, key: tuple | None, out: dict[str, np.ndarray]) -> None:
        size = sum(np.asarray(v).nbytes for v in out.values())
        if key is None or self._bytes + size > SHARED_OUTPUTS_BYTES:
            return
        for v in out.values():
            if isinstance(v, np.ndarray):
                v.flags.writeable = False  # shared between checks: none may change what another reads
        self._outputs[key] = out
        self._bytes += size

    def close(self) -> None:
        self._outputs.clear()
        self._bytes = 0
        self.inner.close()


class ModelPool:
    """A cache of runners and facts keyed by (path, format, threads)."""

    def __init__(
        self,
        trust_code: bool = False,
        isolation: Limits | None = None,
        first: tuple[Path, ...] = (),
        share_outputs: bool = True,
    ):
        self.trust_code = trust_code
        self.isolation = isolation
        self.first = first  # what the workers import ahead of site-packages (a candidate runtime)
        self.share_outputs = share_outputs  # off for a service: every request is answered by the model afresh
        self._workers: Workers | None = None
        self._confined: Workers | None = None  # the confined worker's, when models otherwise run in process
        self._runners: dict[tuple, Runner] = {}
        self._facts: dict[tuple, ModelFacts] = {}
        self._declared: dict[Path, Names] = {}
        self._declaring: list[Callable[[], Mapping[Path, Names]]] = []  # see declare
        self._hashed: Callable[[], set[Path]] | set[Path] = set()  # see declare_hashed
        self.digests = Digests()  # files hashed ahead (hash_ahead), for integrity
        self.loads: dict[Path, int] = {}  # how often each model was loaded (a test pins "at most once")

    @property
    def workers(self) -> Workers | None:
        """The worker processes models run in when isolated (started on first use); None in process."""
        if self.isolation is not None and self._workers is None:
            from model_checks.isolation.workers import Workers

            self._workers = Workers(self.isolation, self.first)
        return self._workers

    @property
    def spare_waiting(self) -> bool:
        """Whether a worker process was started before its framework was known (Workers.start_spare) and waits."""
        return self._workers is not None and self._workers.spare_waiting

    def declare(self, names: Mapping[Path, Names] | Callable[[], Mapping[Path, Names]]) -> None:
        """Input and output names manifests declare for models that carry none (TorchScript), by model path: used
        when a model is asked for without names, as another artifact's reference. Set by the session from the
        manifests it discovered; a backend never reads a manifest. A function that finds them is called when they
        are first read: a run that only lists its tests (--collect-only) resolves no model path for them."""
        self._declaring.append(names if callable(names) else lambda: names)

    @property
    def declared(self) -> dict[Path, Names]:
        while self._declaring:
            self._declared.update(self._declaring.pop(0)())
        return self._declared

    def declare_hashed(self, models: Callable[[], set[Path]]) -> None:
        """The models whose manifests declare a sha256 (a function that finds them, called when first needed; see
        `hash_ahead`)."""
        self._hashed = models

    def hash_ahead(self, path: Path, fmt: str, root: Path) -> None:
        """A model about to be loaded as another artifact's reference, whose own manifest declares a sha256: its
        load is sent now and its files hashed while the worker loads it, for its integrity check to find
        (`digests`) instead of hashing them later, when nothing else runs. The files are proven inside `root`
        first, as integrity proves them. Nothing when models run in this process, when it is loaded already, or
        when no manifest declares its sha256; an error is left for the check that asks for the same thing."""
        if callable(self._hashed):
            self._hashed = self._hashed()
        names = self.declared.get(path)
        if self.workers is None or path not in self._hashed or (path, fmt, None, names) in self._runners:
            return
        try:
            require_trust_for(path, fmt, self.trust_code)  # (else it is not loaded here: its checks say why)
            several = hasattr(backend(fmt, "facts"), "model_files")  # the facts name its files (ONNX external data)
            self.prefetch(path, fmt, root, ("facts", "load") if several else ("load",))
            files = (proven_files(root, self.facts(path, fmt, root).files, "sha256") if several else []) or [path]
            self.digests.hash(files)
        except (ModelChecksError, OSError):  # (a folder, an unreadable file) said by its integrity check
            pass

    def runner(self, path: Path, fmt: str, root: Path, threads: int | None = None, names: Names = None) -> Runner:
        names = names or self.declared.get(path)
        key = (path, fmt, threads, names)
        if key not in self._runners:
            require_trust_for(path, fmt, self.trust_code)
            if self.workers is not None:
                from model_checks.isolation.runner import IsolatedRunner

                runner: Runner = IsolatedRunner(
                    self.workers, path, fmt, root, threads, names, before_load=self._unload_large
                )
            else:
                runner = backend(fmt, "runner").load(path, root, threads=threads, names=names)
            self._runners[key] = SharedRunner(runner) if self.share_outputs else runner
            self.loads[path] = self.loads.get(path, 0) + 1
        return self._runners[key]

    def holds_large(self) -> bool:
        """Whether a model whose loading took LARGE_MODEL_BYTES or more is loaded (the next load would unload it)."""
        return any(
            getattr(r := getattr(held, "inner", held), "loaded", False) and r.resident_bytes >= LARGE_MODEL_BYTES
            for held in self._runners.values()
        )

    def _unload_large(self, loading: Any) -> None:
        """Before `loading` loads: unload the other large models its worker holds (see LARGE_MODEL_BYTES)."""
        for held in self._runners.values():
            r = getattr(held, "inner", held)
            if r is not loading and getattr(r, "loaded", False) and r.resident_bytes >= LARGE_MODEL_BYTES:
                r.close()

    def facts(self, path: Path, fmt: str, root: Path, names: Names = None) -> ModelFacts:
        names = names or self.declared.get(path)
        key = (path, fmt, names)
        if key not in self._facts:
            require_trust_for(path, fmt, self.trust_code)
            if self.workers is not None:
                self._facts[key] = self.workers.request(fmt, "facts", (path, fmt, root, names), path)
            else:
                self._facts[key] = backend(fmt, "facts").model_facts(path, root, names=names)
        return self._facts[key]

    def prefetch(
        self, path: Path, fmt: str, root: Path, ops: tuple[str, ...], names: Names = None, cases: list | None = None
    ) -> None:
        """Have the model's worker start on `ops` ("validate", "facts", "load", in that order) now, for checks
        about to ask for them with these arguments (`validate`, `facts`, `runner`): the worker works while this
        process goes on, and their answers come back in one wake-up instead of one round trip each. What each
        operation meets (an error, a crash, a timeout) is reported by the request that asks for it, as before.
        The facts (milliseconds) go before the load (seconds for a large model): integrity hashes the files they
        name while the worker loads. Nothing when models run in this process, or when the model may not be
        loaded here (its checks say why). `cases`: test data read ahead (each case's tensors in order), run right
        behind a load sent now."""
        workers = self.workers
        if workers is None:
            return
        try:
            require_trust_for(path, fmt, self.trust_code)
        except Exception:
            return
        names = names or self.declared.get(path)
        load = (path, fmt, root, None, names)
        try:
            with workers.together(fmt):  # one write to the worker for all of them, in the order the checks ask
                if "validate" in ops:
                    workers.prefetch(fmt, "validate", (path, fmt, root), path)
                if "facts" in ops and (path, fmt, names) not in self._facts:
                    workers.prefetch(fmt, "facts", (path, fmt, root, names), path)
                if "load" in ops and (path, fmt, None, names) not in self._runners:
                    self._unload_large(None)  # as before any load (see LARGE_MODEL_BYTES)
                    workers.prefetch(fmt, "load", load, path)
                if cases:  # behind the load just sent, if one was
                    workers.prefetch_infer(fmt, load, cases, path)
        except WorkerStartError:  # nothing was sent: the check that asks says why
            pass

    def validate(self, path: Path, fmt: str, root: Path) -> list[str]:
        """The format's own integrity check (e.g. onnx.checker), in the worker when isolated."""
        require_trust_for(path, fmt, self.trust_code)
        if self.workers is not None:
            return self.workers.request(fmt, "validate", (path, fmt, root), path)
        return backend(fmt, "facts").validate(path, root)

    def run_isolated(self, fmt: str, path: Path, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` about the model at `path`, in `fmt`'s worker when isolated (fn must be module-level
        and its result picklable): for checks that rewrite the model object itself, such as tfmot's."""
        require_trust_for(path, fmt, self.trust_code)
        if self.workers is not None:
            return self.workers.request(fmt, "call", (fn, args), path)
        try:
            return fn(*args)
        except ModelChecksError:
            raise
        except Exception as e:  # as a worker's answer says it (Workers._error): the check's step, not the model's load
            raise CheckStepError(f"{path.name}: call failed in this process: {runtime_error_text(e)}") from None

    def run_confined(self, path: Path, fn: Callable[..., Any], *args: Any) -> Any:
        """`fn(*args)` about the model at `path` in the confined worker (no network, no processes, writes only in its
        sandbox, the scrubbed environment), whatever --model-checks-isolate says: for steps that turn a model into
        code, such as onnx2torch's torch.fx module. With isolation off, a worker of its own serves it under the
        default limits."""
        workers = self.workers
        if workers is None:
            if self._confined is None:
                from model_checks.isolation.workers import Workers

                self._confined = Workers(Limits())
            workers = self._confined
        return workers.request("convert", "call", (fn, args), path)

    def quiet(self) -> None:
        """Every worker done with what it was sent (Workers.quiet), before a measurement; nothing when models run
        in this process."""
        for w in (self._workers, self._confined):
            if w is not None:
                w.quiet()

    def reset_peak_memory(self) -> None:
        """Start the workers' peak resident memory over: the next figure is the next artifact's."""
        if self._workers is not None:
            self._workers.reset_peaks()

    def peak_memory_bytes(self) -> int | None:
        """The workers' peak resident memory while they served the requests taken since the last reset (Workers.
        peak_bytes; None when models run in this process)."""
        return self._workers.peak_bytes() if self._workers is not None else None

    def release(self, path: Path) -> None:
        if self._workers is not None:
            self._workers.forget(path)
        for key in [k for k in self._runners if k[0] == path]:
            self._runners.pop(key).close()
        for key in [k for k in self._facts if k[0] == path]:
            del self._facts[key]

    def loaded(self) -> list[Path]:
        return sorted({k[0] for k in self._runners})

    def wind_down(self) -> None:
        """The workers are asked to exit, not waited on (the session's end: see plugin.collect); `close` reaps them."""
        for w in (self._workers, self._confined):
            if w is not None:
                w.wind_down()

    def close(self) -> None:
        for r in self._runners.values():
            r.close()
        self._runners.clear()
        self._facts.clear()
        for w in (self._workers, self._confined):
            if w is not None:
                w.close()
        self._workers = self._confined = None

    def __enter__(self) -> ModelPool:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()
