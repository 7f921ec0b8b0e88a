"""The plugin's options: registered in one group, read once into a frozen `Options` that every hook and fixture
uses (nothing else calls `config.getoption` for them)."""

from __future__ import annotations

import argparse
from dataclasses import dataclass
from pathlib import Path

import pytest

from model_checks.core.argtypes import fraction, non_negative_float, positive_number, shard
from model_checks.isolation.limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S, Limits
from model_checks.serving.caps import (
    DEFAULT_MAX_DURATION_S,
    DEFAULT_MAX_RATE,
    DEFAULT_MAX_REQUESTS,
    DEFAULT_MAX_RESPONSE_MB,
    ServingCaps,
)

GROUP = "model-checks"
CLAIM_FACTOR = (
    2.0  # checks.budgets.policy.CLAIM_FACTOR, not imported: loading the plugin imports no check (a test pins both)
)


def add_options(parser: pytest.Parser) -> None:
    """Every option in one group with one prefix, each with a metavar, a type that names a bad value, and help ending with its default."""
    from model_checks.backends.registry import titles

    g = parser.getgroup(GROUP, f"model-checks: gate ML model artifacts ({titles()})")
    g.addoption(
        "--model-checks",
        action="append",
        default=[],
        metavar="DIR",
        dest="model_checks_roots",
        help="check every artifact (a directory with metadata.yaml) under DIR; repeatable. Nothing under DIR is ever "
        "imported or run by pytest (a conftest.py or test file there is ignored with a warning). Default: the ini "
        "option model_checks_roots, gated when pytest is given no paths or a path that overlaps a root",
    )
    g.addoption(
        "--model-checks-trust-code",
        action="store_true",
        default=False,
        dest="model_checks_trust_code",
        help="load formats that carry code: TorchScript archives and pickled .pt files, Keras .h5 (Lambda layers hold "
        "bytecode), SavedModel, TFLite models with Flex or custom ops. Threat model: artifacts come from pull requests, some from strangers, and a model "
        "file can be a program that runs when it loads. Untrusted, only data formats are loaded (ONNX, .npz with "
        "pickles refused, .keras in safe mode without custom objects), judged by content, not name; every path stays "
        "inside the artifacts root. Set this only in CI jobs for trusted branches. Default: off",
    )
    g.addoption(
        "--model-checks-isolate",
        default="process",
        choices=("process", "off"),
        metavar="MODE",
        dest="model_checks_isolate",
        help="where models run: 'process' runs each framework in a worker process with a memory limit and a timeout, so "
        "a model that segfaults, aborts, exhausts memory or hangs fails its own checks and the session goes on; "
        "'off' runs them in the pytest process (a crash there ends the whole run). Default: process",
    )
    g.addoption(
        "--model-checks-worker-memory",
        default=DEFAULT_MEMORY_MB,
        type=positive_number(int, "MiB"),
        metavar="MIB",
        dest="model_checks_worker_memory",
        help=f"memory limit of each worker process, in MiB (RLIMIT_DATA: heap and anonymous mappings). Default: {DEFAULT_MEMORY_MB}",
    )
    g.addoption(
        "--model-checks-timeout",
        default=DEFAULT_TIMEOUT_S,
        type=positive_number(float, "seconds"),
        metavar="SECONDS",
        dest="model_checks_timeout",
        help=f"longest a worker may take over one load or inference before it is killed. Default: {DEFAULT_TIMEOUT_S:g}",
    )
    g.addoption(
        "--model-checks-summary",
        default=None,
        metavar="PATH",
        dest="model_checks_summary",
        help="write a markdown summary (one row per artifact) to PATH. Default: none",
    )
    g.addoption(
        "--model-checks-baselines",
        default=None,
        metavar="DIR",
        dest="model_checks_baselines",
        help="where budget baselines are stored and compared with (one JSON per artifact, check and device). "
        "Default: .benchmarks/model-checks-baselines under the rootdir",
    )
    g.addoption(
        "--model-checks-update-baselines",
        action="store_true",
        default=False,
        dest="model_checks_update_baselines",
        help="replace the stored baselines with this run's figures; without it baselines never change. Default: off",
    )
    g.addoption(
        "--model-checks-min-effect",
        default=0.05,
        type=fraction,
        metavar="PCT",
        dest="model_checks_min_effect",
        help="smallest slowdown against the baseline that counts as a regression (it must also be significant), "
        "as '5%%' or 0.05. Default: 5%%",
    )
    g.addoption(
        "--model-checks-latency-claim-factor",
        default=CLAIM_FACTOR,
        type=non_negative_float,
        metavar="X",
        dest="model_checks_latency_claim_factor",
        help="how far the p50 measured by test_latency[<id>-cpu], brought to the recording machine's scale through the "
        "calibration workload (machine.calibration_us), may sit from the manifest's latency_ms claim, either way; "
        f"0 reports the claim without gating it. Default: {CLAIM_FACTOR:g}",
    )
    g.addoption(
        "--model-checks-strict-claims",
        action="store_true",
        default=False,
        dest="model_checks_strict_claims",
        help="gate a latency_ms claim that records no machine.calibration_us as measured, even on another CPU than "
        "the one it was recorded on (without it, such a claim is reported, not gated). Default: off",
    )
    g.addoption(
        "--model-checks-nightly-report",
        default=None,
        metavar="DIR",
        dest="model_checks_nightly_report",
        help="write nightly.md and nightly.html (figures, change against baseline, plots over stored runs) to DIR. "
        "Default: none",
    )
    g.addoption(
        "--model-checks-localize",
        default="on",
        choices=("on", "off"),
        metavar="MODE",
        dest="model_checks_localize",
        help="when equivalence of an ONNX artifact with an ONNX reference fails, add the table of where the two diverge "
        "(bounded in time and memory; never changes the verdict). Default: on",
    )
    g.addoption(
        "--model-checks-dist",
        default="artifact",
        choices=("artifact", "load"),
        metavar="MODE",
        dest="model_checks_dist",
        help="how pytest-xdist (-n) deals the gate's tests: 'artifact' sends all checks of an artifact, and every artifact "
        "sharing a model with it (a reference and its variants), to one worker, heaviest groups first, so each model "
        "is loaded once; 'load' leaves xdist's own scheduling (--dist) alone. Default: artifact",
    )
    g.addoption(
        "--model-checks-shard",
        default=None,
        type=shard,
        metavar="K/N",
        dest="model_checks_shard",
        help="gate only shard K of N (a CI matrix job): whole artifacts, a reference kept with its variants, dealt by "
        "weight (--model-checks-shard-weights, else model size); `model-checks merge` joins the shards' reports. "
        "Default: every artifact",
    )
    g.addoption(
        "--model-checks-shard-weights",
        default=None,
        metavar="FILE",
        dest="model_checks_shard_weights",
        help="a last run's junit XML (testcase times) or a JSON {artifact id: seconds}, to deal shards by duration "
        "instead of model size. Default: none",
    )
    g.addoption(
        "--model-checks-serving-max-rate",
        default=DEFAULT_MAX_RATE,
        type=positive_number(float, "requests/s"),
        metavar="PER_S",
        dest="model_checks_serving_max_rate",
        help="highest serving.rate_per_s the gate load-tests; a manifest asking for more fails test_serving "
        f"unloaded (a manifest asks, the gate decides). Default: {DEFAULT_MAX_RATE:g}",
    )
    g.addoption(
        "--model-checks-serving-max-requests",
        default=DEFAULT_MAX_REQUESTS,
        type=positive_number(int, "requests"),
        metavar="N",
        dest="model_checks_serving_max_requests",
        help=f"most requests one open-loop phase sends; serving.requests above it is lowered. Default: {DEFAULT_MAX_REQUESTS}",
    )
    g.addoption(
        "--model-checks-serving-max-duration",
        default=DEFAULT_MAX_DURATION_S,
        type=positive_number(float, "seconds"),
        metavar="SECONDS",
        dest="model_checks_serving_max_duration",
        help="longest open-loop phase; serving.duration_s above it is lowered (the whole check also ends within "
        f"--model-checks-timeout). Default: {DEFAULT_MAX_DURATION_S:g}",
    )
    g.addoption(
        "--model-checks-serving-max-response-mb",
        default=DEFAULT_MAX_RESPONSE_MB,
        type=positive_number(float, "MiB"),
        metavar="MIB",
        dest="model_checks_serving_max_response_mb",
        help="largest infer response a service sends and the gate reads; a larger one is an error. "
        f"Default: {DEFAULT_MAX_RESPONSE_MB:g}",
    )
    parser.addini(
        "model_checks_roots",
        type="paths",
        default=[],
        help="artifact roots gated when --model-checks is not given, whatever testpaths says, unless pytest is given "
        "paths that do not overlap them",
    )


class _Declarations:
    """Stands in for pytest's parser and option group to read `add_options` back as declarations."""

    def __init__(self) -> None:
        self.options: dict[str, tuple[tuple[str, ...], dict]] = {}

    def getgroup(self, *args: object, **kwargs: object) -> _Declarations:
        return self

    def addoption(self, *flags: str, **kwargs: object) -> None:
        self.options[flags[0]] = (flags, kwargs)

    def addini(self, *args: object, **kwargs: object) -> None:
        pass


def add_to(parser: argparse.ArgumentParser, flag: str, **changes: object) -> None:
    """Declare the plugin's option `flag` on a command's parser (`model-checks run`), as the plugin declares it, with
    `changes` (a dest of the command's own, required=True): one declaration, one help text, one type."""
    declared = _Declarations()
    add_options(declared)  # type: ignore[arg-type]
    flags, kwargs = declared.options[flag]
    parser.add_argument(*flags, **{**kwargs, **changes})  # type: ignore[arg-type]


@dataclass(frozen=True)
class Options:
    """The run's settings, read once from the command line and the ini file."""

    trust_code: bool
    isolate: str
    worker_memory_mb: int
    timeout_s: float
    summary: Path | None
    baselines: Path
    update_baselines: bool
    min_effect: float
    latency_claim_factor: float
    nightly_report: Path | None
    localize: bool
    dist: str = "artifact"
    shard: tuple[int, int] | None = None
    shard_weights: Path | None = None
    serving_caps: ServingCaps = ServingCaps()
    strict_claims: bool = False

    @classmethod
    def from_config(cls, config: pytest.Config) -> Options:
        opt = config.getoption
        summary, nightly, baselines = (
            opt("model_checks_summary"),
            opt("model_checks_nightly_report"),
            opt("model_checks_baselines"),
        )
        return cls(
            trust_code=opt("model_checks_trust_code"),
            isolate=opt("model_checks_isolate"),
            worker_memory_mb=opt("model_checks_worker_memory"),
            timeout_s=opt("model_checks_timeout"),
            summary=Path(summary) if summary else None,
            baselines=Path(baselines) if baselines else config.rootpath / ".benchmarks" / "model-checks-baselines",
            update_baselines=opt("model_checks_update_baselines"),
            min_effect=opt("model_checks_min_effect"),
            latency_claim_factor=opt("model_checks_latency_claim_factor"),
            nightly_report=config.rootpath / nightly if nightly else None,
            localize=opt("model_checks_localize") == "on",
            dist=opt("model_checks_dist"),
            shard=opt("model_checks_shard"),
            shard_weights=Path(opt("model_checks_shard_weights")) if opt("model_checks_shard_weights") else None,
            serving_caps=ServingCaps(
                max_rate=opt("model_checks_serving_max_rate"),
                max_requests=opt("model_checks_serving_max_requests"),
                max_duration_s=opt("model_checks_serving_max_duration"),
                max_response_mb=opt("model_checks_serving_max_response_mb"),
                timeout_s=opt("model_checks_timeout"),
            ),
            strict_claims=opt("model_checks_strict_claims"),
        )

    @property
    def isolation(self) -> Limits | None:
        """The worker limits, or None when models run in the pytest process (`--model-checks-isolate=off`)."""
        return None if self.isolate == "off" else Limits(memory_mb=self.worker_memory_mb, timeout_s=self.timeout_s)
