"""Serve one artifact over the Open Inference Protocol (KServe v2 REST) on loopback.

example:
  model-checks serve artifacts/digits_cnn_int8_dynamic --port 0
  # prints http://127.0.0.1:PORT; then: curl http://127.0.0.1:PORT/v2/models/digits_cnn_int8_dynamic
"""

from __future__ import annotations

import argparse
from pathlib import Path

from model_checks.core.argtypes import port, positive_number
from model_checks.isolation.limits import DEFAULT_MEMORY_MB, DEFAULT_TIMEOUT_S


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("artifact", type=Path, metavar="ARTIFACT_DIR", help="a directory with metadata.yaml")
    p.add_argument(
        "--port", type=port, default=0, metavar="N", help="port to listen on; 0 picks a free one. Default: 0"
    )
    p.add_argument(
        "--host",
        default="127.0.0.1",
        metavar="H",
        help="loopback address to bind (127.0.0.1, ::1, localhost). Default: 127.0.0.1",
    )
    p.add_argument(
        "--root",
        type=Path,
        default=None,
        metavar="DIR",
        help="the artifacts root paths must stay inside. Default: the nearest parent with policy.yaml, else the parent",
    )
    p.add_argument(
        "--trust-code",
        action="store_true",
        help="load formats that carry code (TorchScript, .h5, SavedModel). Default: off",
    )
    p.add_argument(
        "--isolate",
        choices=("process", "off"),
        default="process",
        metavar="MODE",
        help="'process' runs the model in a worker with a memory limit and a timeout; 'off' in this process. Default: process",
    )
    p.add_argument(
        "--worker-memory",
        type=positive_number(float, "MiB"),
        default=DEFAULT_MEMORY_MB,
        metavar="MIB",
        help=f"memory limit of the worker process, in MiB. Default: {DEFAULT_MEMORY_MB}",
    )
    p.add_argument(
        "--timeout",
        type=positive_number(float, "seconds"),
        default=DEFAULT_TIMEOUT_S,
        metavar="SECONDS",
        help=f"longest one load or inference may take in the worker before it is killed. Default: {DEFAULT_TIMEOUT_S:g}",
    )
    p.add_argument(
        "--max-body-mb",
        type=positive_number(float, "MiB"),
        default=16,
        metavar="MIB",
        help="largest request body accepted. Default: 16",
    )
    p.add_argument(
        "--max-response-mb",
        type=positive_number(float, "MiB"),
        default=64,
        metavar="MIB",
        help="largest infer response sent (as JSON); a model whose outputs need more gets a 500 naming the cap. "
        "Default: 64",
    )
    p.add_argument(
        "--read-timeout",
        type=positive_number(float, "seconds"),
        default=30.0,
        metavar="SECONDS",
        help="a connection that sends nothing, or stops halfway through a request, is closed after this long. "
        "Default: 30",
    )


def run(args: argparse.Namespace) -> int:
    from model_checks.isolation.limits import Limits
    from model_checks.serving.service import open_artifact, serve

    art = open_artifact(args.artifact, args.root)
    limits = None if args.isolate == "off" else Limits(memory_mb=int(args.worker_memory), timeout_s=args.timeout)
    return serve(
        art,
        args.host,
        args.port,
        trust_code=args.trust_code,
        isolation=limits,
        max_body=int(args.max_body_mb * 1024**2),
        max_response=int(args.max_response_mb * 1024**2),
        read_timeout_s=args.read_timeout,
    )
