"""`serving`: the artifact behind its own service in a subprocess on loopback. Functional part: outputs
over HTTP equal the in-process outputs under the artifact's tolerance, a wrong shape gets a 4xx, the
metadata endpoint matches the manifest. Load part: an open-loop phase gated on `serving.rate_per_s`
(at least 99% answered), `serving.latency_ms` and zero errors, then a closed-loop sweep (concurrency 1,
2, 4). With `serving.compare_with`, both services are loaded in turn, interleaved (A B A B), and the
ratios of rate, p50, p99 and peak throughput are reported with the accuracy drop; `serving.speedup_vs`
gates the peak throughput ratio."""

from __future__ import annotations

import json
import os
from contextlib import ExitStack
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from model_checks.checks.context import CheckContext
from model_checks.checks.registry import Check
from model_checks.core import batch as batching
from model_checks.core.artifact import Artifact
from model_checks.core.errors import ModelChecksError, ProtocolError
from model_checks.core.inputs import Case, seed_for
from model_checks.core.lazy import lazy
from model_checks.core.results import CheckResult
from model_checks.safety.text import printable
from model_checks.serving.spec import ACHIEVED_SHARE, ServingSpec, serving_spec

if TYPE_CHECKING:
    from model_checks.serving.load import LoadResult, Sweep

# the load generator (asyncio) and the protocol are imported when the check runs, not when it is collected
np = lazy("numpy")

NAME = "serving"
MAX_BODIES = 64
SWEEP_REQUESTS, SWEEP_SECONDS = 200, 1.0
HOW_TO_FIX = (
    "limits come from `serving:` in {where} or policy.yaml; lower the rate or raise a latency limit only when the "
    "machine, not the model, is slower"
)


def refused() -> str | None:
    if os.environ.get("PYTEST_XDIST_WORKER"):
        return (
            "serving is not load-tested under pytest-xdist (-n): parallel workers share the cores, so rates and latencies would "
            "be noise. Run it without -n (e.g. `pytest -m serving -p no:xdist`)"
        )
    return None


def run(ctx: CheckContext) -> CheckResult:
    from model_checks.serving.caps import ServingCaps

    asked = serving_spec(ctx.manifest)
    if asked is None:
        return CheckResult.skip(NAME, f"no serving: block in {ctx.where}")
    if (why := refused()) is not None:
        return CheckResult.skip(NAME, why)
    caps = ctx.serving_caps or ServingCaps(timeout_s=ctx.pool.isolation.timeout_s if ctx.pool.isolation else 300.0)
    spec, notes, problems = caps.bounded(asked)
    if spec is None:
        return CheckResult.from_problems(NAME, ctx.artifact.id, problems, passed="")
    from model_checks.core.requires import require

    for module in ("starlette", "uvicorn", "httpx", "hdrh"):
        require(module, "serving", "serving")
    serving = Serving(ctx, spec, caps)
    serving.notes += notes
    return serving.run()


@dataclass
class Served:
    """One artifact with its running service."""

    artifact: Artifact
    url: str

    @property
    def infer_url(self) -> str:
        assert self.artifact.manifest is not None
        return f"{self.url}/v2/models/{self.artifact.manifest.model_name}/infer"


def _encoded(ctx: CheckContext) -> tuple[bytes, ...]:
    from model_checks.serving.protocol import encode_request

    return tuple(json.dumps(encode_request(r)).encode() for r in _rows(ctx.cases()[0], ctx.interface()))


def request_bodies(artifact: Artifact, pool: Any = None) -> tuple[bytes, ...]:
    """Single-sample infer request bodies from the artifact's samples (or seeded inputs), as the gate feeds it."""
    from model_checks.core.pool import ModelPool

    with ExitStack() as stack:
        if pool is None:
            pool = stack.enter_context(ModelPool(trust_code=False))
        return _encoded(CheckContext(artifact, pool))


def _rows(case: Case, specs: list) -> list[dict[str, np.ndarray]]:
    """Single-sample feeds, cut along the batch wherever each input carries it (`core/batch`: a state's
    [2, batch, 128] on axis 1; inputs without it whole); the case itself when there is no batch."""
    return batching.rows(case.inputs, batching.axes(specs, batching.find(specs)), MAX_BODIES)


class Serving:
    def __init__(self, ctx: CheckContext, spec: ServingSpec, caps: Any = None):
        from model_checks.serving.caps import Deadline, ServingCaps

        self.ctx, self.spec = ctx, spec
        self.caps = caps or ServingCaps()
        self.deadline = Deadline(self.caps.timeout_s)  # the whole check: services, functional part and load
        self.problems: list[str] = []
        self.notes: list[str] = []
        self.figures: dict[str, Any] = {}

    @property
    def subject(self) -> str:
        return self.ctx.artifact.id

    def run(self) -> CheckResult:
        from model_checks.serving.process import running_service

        ctx = self.ctx
        other = self._other()
        pool = ctx.pool

        def service(artifact: Artifact) -> str:
            return stack.enter_context(
                running_service(
                    artifact, pool.trust_code, pool.isolation, self.deadline.left(), self.caps.max_response_mb
                )
            )

        with ExitStack() as stack:
            mine = Served(ctx.artifact, service(ctx.artifact))
            theirs = None
            if other is not None:
                theirs = Served(other, service(other))
            self._functional(mine)
            bodies = self._bodies()
            if theirs is None:
                load = self._open_loop(mine, bodies, self.spec.requests, self._phase_s(self.spec.duration_s, 1))
                sweep_mine = self._sweep(mine, bodies)
            else:
                load, sweep_mine = self._compare(mine, theirs, bodies)
        if self.deadline.passed:
            self.problems.append(
                f"the serving check took longer than --model-checks-timeout {self.caps.timeout_s:g} s "
                "(services, functional part and load together); what ran is reported below"
            )
        self._gate(load, sweep_mine)
        headline = (
            f"{self.figures['serving_achieved_rate']:.1f} req/s of {self.spec.rate.value:g} answered, p50 "
            f"{_ms(load.latency_ms(50))}, p99 {_ms(load.latency_ms(99))} ms, {load.errors} error(s) over HTTP"
        )
        return CheckResult.from_problems(
            NAME, self.subject, self.problems, passed=headline, figures=self.figures, notes=self.notes
        )

    # -- what is served ------------------------------------------------------------------------------
    def _other(self) -> Artifact | None:
        if self.spec.compare_with is None:
            return None
        from model_checks.serving.service import open_artifact

        path = self.ctx.artifact.path("serving.compare_with")
        assert path is not None
        if not path.is_dir():
            raise ModelChecksError(
                f"{self.ctx.where}: serving.compare_with {self.spec.compare_with}: not an artifact directory"
            )
        return open_artifact(path, self.ctx.artifact.root)

    def _phase_s(self, wanted: float, phases_left: int) -> float:
        """An open-loop phase's wall time: what the spec asks, within this phase's share of the time left (the
        closed-loop sweeps and the drain keep theirs)."""
        spare = self.deadline.left() - SWEEP_SECONDS * 3 * (2 if self.spec.compare_with else 1) - 5.0
        return max(0.5, min(wanted, spare / max(1, phases_left)))

    def _bodies(self) -> tuple[bytes, ...]:
        return _encoded(self.ctx)

    # -- functional ----------------------------------------------------------------------------------
    def _functional(self, served: Served) -> None:
        import httpx

        from model_checks.core.metrics import compare_outputs
        from model_checks.serving.protocol import decode_response, encode_request

        ctx = self.ctx
        with httpx.Client(timeout=max(1.0, min(30.0, self.deadline.left()))) as client:
            case = ctx.cases()[0]
            status, text = _post_capped(
                client,
                served.infer_url,
                encode_request(case.inputs, "model-checks-functional"),
                self.caps.max_response_bytes,
            )
            if status == 0:
                self.problems.append(f"infer on {case.label}: {text}")
            elif status != 200:
                self.problems.append(
                    f"infer on {case.label}: HTTP {status}, expected 200: {printable(_error_of(text)[:300])}"
                )
            else:
                over_http = decode_response(json.loads(text))
                comparison = compare_outputs(
                    over_http, ctx.runner().infer(case.inputs), ctx.manifest.tolerance.for_output
                )
                self.figures["serving_outputs_match"] = bool(comparison)
                if not comparison:
                    self.problems.append(
                        f"outputs over HTTP differ from the in-process outputs on {case.label} "
                        "(limits: the artifact's tolerance):\n" + "\n".join(comparison.render())
                    )
            bad = _wrong_shape(case.inputs, ctx.interface())
            r = client.post(served.infer_url, json=encode_request(bad))
            if not 400 <= r.status_code < 500:
                shapes = {k: list(v.shape) for k, v in bad.items()}
                self.problems.append(
                    f"a request with a shape the interface forbids ({shapes}) got HTTP {r.status_code}, expected a 4xx"
                )
            meta = client.get(served.infer_url.rsplit("/", 1)[0])
            self._metadata(meta.status_code, meta.json() if meta.status_code == 200 else meta.text)

    def _metadata(self, status: int, doc: Any) -> None:
        from model_checks.serving.protocol import datatype_of

        m = self.ctx.manifest
        if status != 200:
            self.problems.append(f"GET /v2/models/{m.model_name}: HTTP {status}, expected 200: {str(doc)[:200]}")
            return
        if doc.get("name") != m.model_name or m.version not in (doc.get("versions") or []):
            self.problems.append(
                f"model metadata names {doc.get('name')!r} versions {doc.get('versions')}, expected "
                f"{m.model_name!r} version {m.version!r} (from {self.ctx.where})"
            )
        for side, declared in (("inputs", m.inputs), ("outputs", m.outputs)):
            got = {t.get("name"): t for t in doc.get(side) or []}
            for spec in declared or ():
                t = got.get(spec.name)
                want_shape = [d if isinstance(d, int) and d > 0 else -1 for d in spec.shape or ()]
                if t is None:
                    self.problems.append(f"model metadata {side}: no {spec.name!r}, which {self.ctx.where} declares")
                elif (spec.dtype and t.get("datatype") != datatype_of(spec.dtype)) or (
                    spec.shape is not None and t.get("shape") != want_shape
                ):
                    self.problems.append(
                        f"model metadata {side} {spec.name!r}: {t.get('datatype')} {t.get('shape')}, expected "
                        f"{datatype_of(spec.dtype or 'float32')} {want_shape} from {self.ctx.where}"
                    )

    # -- load ----------------------------------------------------------------------------------------
    def _open_loop(self, served: Served, bodies: tuple[bytes, ...], requests: int, duration_s: float) -> LoadResult:
        asked = self.spec.duration_s / (2 if self.spec.compare_with else 1)
        if duration_s < asked:
            self.notes.append(
                f"  an open-loop phase of {served.artifact.id} ran {duration_s:.1f} s of the {asked:g} s asked: "
                f"the check ends within --model-checks-timeout {self.caps.timeout_s:g} s"
            )
        from model_checks.serving.load import Target, open_loop

        return open_loop(
            Target(served.infer_url, bodies, self.caps.max_response_bytes),
            self.spec.rate.value,
            requests,
            duration_s,
            self.spec.arrivals,
            seed_for(served.artifact.id),
            timeout_s=self._request_timeout(),
        )

    def _sweep(self, served: Served, bodies: tuple[bytes, ...]) -> Sweep:
        from model_checks.serving.load import Target, sweep

        return sweep(
            Target(served.infer_url, bodies, self.caps.max_response_bytes),
            (1, 2, 4),
            SWEEP_REQUESTS,
            min(SWEEP_SECONDS, max(0.1, self.deadline.left() / 6)),
            timeout_s=self._request_timeout(),
        )

    def _request_timeout(self) -> float:
        return max(0.5, min(5.0, self.deadline.left()))

    def _compare(self, mine: Served, theirs: Served, bodies: tuple[bytes, ...]) -> tuple[LoadResult, Sweep]:
        """A B A B: each side gets half the requests and half the wall time in each of two phases, so a
        machine that slows down mid-run slows both."""
        half_n, half_s = max(1, self.spec.requests // 2), self.spec.duration_s / 2
        their_bodies = request_bodies(theirs.artifact, self.ctx.pool)
        a1 = self._open_loop(mine, bodies, half_n, self._phase_s(half_s, 4))
        b1 = self._open_loop(theirs, their_bodies, half_n, self._phase_s(half_s, 3))
        a2 = self._open_loop(mine, bodies, half_n, self._phase_s(half_s, 2))
        b2 = self._open_loop(theirs, their_bodies, half_n, self._phase_s(half_s, 1))
        sweep_a = self._sweep(mine, bodies)
        sweep_b = self._sweep(theirs, their_bodies)
        a, b = a1.merged(a2), b1.merged(b2)
        f = self.figures
        f["compare_with"] = theirs.artifact.id
        f["serving_rate_ratio"] = _ratio(a.achieved_rate, b.achieved_rate)
        f["serving_p50_ratio"] = _ratio(a.latency_ms(50), b.latency_ms(50))
        f["serving_p99_ratio"] = _ratio(a.latency_ms(99), b.latency_ms(99))
        f["serving_speedup"] = _ratio(sweep_a.peak_per_s, sweep_b.peak_per_s)
        drop = self._accuracy_drop(mine, theirs)
        f["serving_accuracy_drop"] = drop
        self.notes += [
            f"  against {theirs.artifact.id} (served alongside, loaded in turn A B A B):",
            f"      achieved rate {a.achieved_rate:.1f} vs {b.achieved_rate:.1f} req/s (ratio {_ms(f['serving_rate_ratio'])})",
            f"      p50 {_ms(a.latency_ms(50))} vs {_ms(b.latency_ms(50))} ms (ratio {_ms(f['serving_p50_ratio'])}), "
            f"p99 {_ms(a.latency_ms(99))} vs {_ms(b.latency_ms(99))} ms (ratio {_ms(f['serving_p99_ratio'])})",
            f"      peak closed-loop throughput {sweep_a.peak_per_s:.1f} vs {sweep_b.peak_per_s:.1f} req/s (speedup {_ms(f['serving_speedup'])})",
            f"      accuracy drop over HTTP: {'-' if drop is None else f'{drop:+.4f}'}",
        ]
        if b.errors:
            self.problems.append(
                f"{theirs.artifact.id} (serving.compare_with) answered {b.errors} request(s) with an error, "
                f"e.g. {b.error_samples[0] if b.error_samples else '?'}"
            )
        lim = self.spec.speedup_vs
        if lim is not None and (f["serving_speedup"] is None or f["serving_speedup"] < lim.value):
            self.problems.append(
                f"speedup over {theirs.artifact.id} (peak closed-loop throughput ratio) {_ms(f['serving_speedup'])} is below "
                f"{lim.value:g} from {lim.source} ({sweep_a.peak_per_s:.1f} vs {sweep_b.peak_per_s:.1f} req/s); "
                "lower serving.speedup_vs only if the variant is not meant to be faster"
            )
        return a, sweep_a

    def _accuracy_drop(self, mine: Served, theirs: Served) -> float | None:
        """Accuracy over HTTP on this artifact's eval_data, theirs minus this one's; None without eval data."""
        from model_checks.core.inputs import load_npz

        path = self.ctx.artifact.path("eval_data")
        if path is None:
            return None
        data = load_npz(path, f"{self.ctx.where}: eval_data")
        if "x" not in data or "y" not in data or len(self.ctx.interface()) != 1:
            return None
        name = self.ctx.interface()[0].name
        acc = {}
        for served in (mine, theirs):
            acc[served.artifact.id] = _http_accuracy(served, name, data["x"], data["y"])
        self.figures["serving_accuracy"] = acc[mine.artifact.id]
        return acc[theirs.artifact.id] - acc[mine.artifact.id]

    # -- the gate ------------------------------------------------------------------------------------
    def _gate(self, load: LoadResult, sw: Sweep) -> None:
        spec, f, where = self.spec, self.figures, self.ctx.where
        lat = load.latencies_ms
        f.update(
            serving_target_rate=spec.rate.value,
            serving_achieved_rate=load.achieved_rate,
            serving_sent=load.sent,
            serving_errors=load.errors,
            serving_p50_ms=lat["p50"],
            serving_p95_ms=lat["p95"],
            serving_p99_ms=lat["p99"],
            serving_max_ms=lat["max"],
            serving_knee=sw.knee,
            serving_peak_per_s=sw.peak_per_s,
        )
        need = ACHIEVED_SHARE * spec.rate.value
        f.update(serving_limit_rate=need, **{f"serving_limit_{p}_ms": lim.value for p, lim in spec.latency_ms.items()})
        if load.achieved_rate < need:
            self.problems.append(
                f"achieved rate {load.achieved_rate:.1f} req/s is below {ACHIEVED_SHARE:.0%} of serving.rate_per_s "
                f"{spec.rate.value:g} from {spec.rate.source} (needs {need:.1f}; {load.ok} answered of {load.sent} sent, "
                f"counted over {load.elapsed_s:.2f} s: to the last scheduled send plus the median lateness of the last fifth; "
                f"stopped by {load.stopped_by}): the service falls behind this rate"
            )
        if load.errors:
            self.problems.append(
                f"{load.errors} of {load.sent} request(s) failed (the limit is 0), e.g. "
                + "; ".join(load.error_samples)
            )
        for p, lim in spec.latency_ms.items():
            value = lat[p]
            if value is not None and value > lim.value:
                self.problems.append(
                    f"latency {p} {value:.2f} ms exceeds {lim.value:g} ms from {lim.source} (by {value - lim.value:.2f} ms, "
                    f"measured from each request's intended send time over {load.ok} requests)"
                )
        self.notes += [
            f"  open loop: {load.sent} request(s) at {spec.rate.value:g}/s ({spec.arrivals}), stopped by {load.stopped_by}: "
            f"p50 {_ms(lat['p50'])}, p95 {_ms(lat['p95'])}, p99 {_ms(lat['p99'])}, max {_ms(lat['max'])} ms",
            "  closed loop:",
            *sw.render(),
        ]
        if self.problems:
            self.notes.append("  " + HOW_TO_FIX.format(where=where))


def _http_accuracy(served: Served, name: str, x: np.ndarray, y: np.ndarray, batch: int = 256) -> float:
    import httpx

    from model_checks.serving.protocol import decode_response, encode_request

    hits = 0
    with httpx.Client(timeout=60.0) as client:
        for i in range(0, len(x), batch):
            r = client.post(served.infer_url, json=encode_request({name: x[i : i + batch]}))
            if r.status_code != 200:
                raise ProtocolError(
                    r.status_code, f"{served.artifact.id}: eval_data batch {i // batch}: {r.text[:200]}"
                )
            out = next(iter(decode_response(r.json()).values()))
            hits += int(np.sum(np.argmax(out.reshape(len(out), -1), axis=-1) == y[i : i + batch]))
    return hits / len(x)


def _error_of(text: str) -> str:
    """The message of a protocol error body ({"error": ...}), else the text itself."""
    try:
        doc = json.loads(text)
    except ValueError:
        return text
    return str(doc["error"]) if isinstance(doc, dict) and "error" in doc else text


def _post_capped(client: Any, url: str, doc: Any, cap: int) -> tuple[int, str]:
    """POST `doc` as JSON; (status, body text), reading at most `cap` bytes of the answer: a model whose output is
    huge is an error here, never the gate's memory."""
    with client.stream("POST", url, json=doc) as r:
        chunks, size = [], 0
        for chunk in r.iter_bytes():
            size += len(chunk)
            if size > cap:
                return 0, (
                    f"the response exceeds the gate's cap of {cap / 1024**2:g} MiB "
                    "(--model-checks-serving-max-response-mb); not read further"
                )
            chunks.append(chunk)
        return r.status_code, b"".join(chunks).decode("utf-8", "replace")


def _wrong_shape(feeds: dict[str, np.ndarray], interface: list) -> dict[str, np.ndarray]:
    """The feeds with one fixed dim of an input one larger, or, where every dim is dynamic, one axis more."""
    for spec in interface:
        for i, d in enumerate(spec.shape or ()):
            if isinstance(d, int) and d > 0:
                a = feeds[spec.name]
                pad = np.zeros((*a.shape[:i], 1, *a.shape[i + 1 :]), a.dtype)
                return {**feeds, spec.name: np.concatenate([a, pad], axis=i)}
    name, a = next(iter(feeds.items()))
    return {**feeds, name: a[..., None]}


def _ratio(a: float | None, b: float | None) -> float | None:
    return None if a is None or b is None or b == 0 else a / b


def _ms(v: float | None) -> str:  # ms and ratios alike: two decimals, "-" when unknown
    return "-" if v is None else f"{v:.2f}"


def cell(status: str, figures: dict) -> str:
    """Its summary cell: the status, with the achieved rate and p99 when it measured them."""
    if figures.get("serving_p99_ms") is None:
        return status
    return f"{status} ({figures['serving_achieved_rate']:.1f}, {figures['serving_p99_ms']:.2f})"


# Collected only where the manifest (or policy.yaml) declares `serving.rate_per_s`; never under xdist (it skips
# there and says why).
CHECK = Check(
    NAME,
    run,
    applies=lambda m: m.get("serving.rate_per_s") is not None,
    markers=(("serving", "the artifact behind its own inference service on loopback, load-tested (test_serving)"),),
    column="serving (req/s, p99 ms)",
    cell=cell,
    machine_dependent=True,
    timed=True,
)
