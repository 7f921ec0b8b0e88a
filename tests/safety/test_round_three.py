"""Untrusted means untrusted, round three (issue 19): no text from a model reaches generated code, and the worker
that converts a model has no secrets, no network and writes only in its sandbox."""

from __future__ import annotations

import importlib.util
import json
import os
import zipfile
from pathlib import Path

import numpy as np
import onnx
import pytest
from onnx import TensorProto, helper

from fixtures import artifacts as A
from fixtures import probes
from model_checks.backends.onnx.names import IDENTIFIER, anonymised
from model_checks.isolation.limits import Limits
from model_checks.isolation.workers import Workers, allowed_variable

LIMITS = Limits(memory_mb=2048, timeout_s=120)
_HAS = importlib.util.find_spec("onnx2torch") and importlib.util.find_spec("torch")
needs_onnx2torch = pytest.mark.skipif(
    not _HAS, reason="onnx2torch is not installed: pip install 'model-checks[roundtrip]'"
)


def _path_expr(canary: Path) -> str:
    """An expression for the canary's path with no dot or quote in it (torch.fx turns dots into attribute paths)."""
    return f"bytes([{','.join(str(b) for b in str(canary).encode())}])"


def hostile_model(canary: Path) -> onnx.ModelProto:
    """x -> MatMul(W) -> Add(B) -> Relu -> y, every name a payload that creates `canary` if pasted into code."""
    p = _path_expr(canary)
    node = f'a")(a) if open({p},"w") else getattr(self, "a'  # the shape that worked against torch.fx
    init = f'w"] if open({p},"w") else self["w'
    bias = f"b\n    open({p}, 'w')\n"
    inp = f"x=open({p},'w')"
    hidden = f"h);open({p},'w');(h"
    out = f'y"""; open({p},\'w\'); """'
    graph = f'g"; open({p},"w"); "'
    w = helper.make_tensor(init, TensorProto.FLOAT, [4, 3], np.linspace(-1, 1, 12, dtype=np.float32))
    b = helper.make_tensor(bias, TensorProto.FLOAT, [3], np.array([0.5, -0.25, 0.1], np.float32))
    nodes = [
        helper.make_node("MatMul", [inp, init], [hidden], name=node),
        helper.make_node("Add", [hidden, bias], ["\x1b[31mz\r"], name=f"{node}\n{node}"),
        helper.make_node("Relu", ["\x1b[31mz\r"], [out], name=f"__import__('os').system('touch {canary}')"),
    ]
    g = helper.make_graph(
        nodes,
        graph,
        [helper.make_tensor_value_info(inp, TensorProto.FLOAT, ["batch", 4])],
        [helper.make_tensor_value_info(out, TensorProto.FLOAT, ["batch", 3])],
        [w, b],
        value_info=[helper.make_tensor_value_info(hidden, TensorProto.FLOAT, ["batch", 3])],
    )
    m = helper.make_model(g, opset_imports=[helper.make_opsetid("", 17)], doc_string=f"open({p}, 'w')")
    m.ir_version = 8
    onnx.checker.check_model(m)
    return m


def _ort(model: onnx.ModelProto, x: np.ndarray) -> np.ndarray:
    import onnxruntime as ort

    s = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return s.run(None, {s.get_inputs()[0].name: x})[0]


def test_anonymised_keeps_the_computation_and_no_name_of_the_model(tmp_path: Path) -> None:
    m = hostile_model(tmp_path / "canary")
    a = anonymised(m)
    names = [
        a.graph.name,
        *(n.name for n in a.graph.node),
        *(t for n in a.graph.node for t in (*n.input, *n.output)),
        *(v.name for v in (*a.graph.input, *a.graph.output, *a.graph.initializer, *a.graph.value_info)),
    ]
    assert all(IDENTIFIER.match(n) for n in names), names
    assert [n.name for n in a.graph.node] == ["n_0", "n_1", "n_2"] and a.graph.name == "g" and a.doc_string == ""
    assert [i.name for i in a.graph.input] == ["t_0"] and [o.name for o in a.graph.output] == ["t_1"]
    x = np.random.default_rng(0).normal(size=(2, 4)).astype(np.float32)
    np.testing.assert_array_equal(_ort(a, x), _ort(m, x))
    assert m.graph.node[0].name.startswith('a")(a)')  # the original is left as it was


@needs_onnx2torch
def test_a_hostile_model_converts_without_running_its_names(tmp_path: Path) -> None:
    from model_checks.producers.to_torch import convert

    canary = tmp_path / "canary"
    m = hostile_model(canary)
    conv = convert(m)
    x = np.random.default_rng(1).normal(size=(2, 4)).astype(np.float32)
    got = conv.infer({m.graph.input[0].name: x})
    assert list(got) == [m.graph.output[0].name]  # outputs mapped back to the model's own names
    np.testing.assert_allclose(got[m.graph.output[0].name], _ort(m, x), rtol=1e-5, atol=1e-6)
    assert "open" not in conv.module.code and not canary.exists()


@needs_onnx2torch
def test_to_torch_on_hostile_names_writes_the_archive_and_never_the_canary(tmp_path: Path, capsys) -> None:
    from model_checks.cli import main

    canary = tmp_path / "canary"
    m = hostile_model(canary)
    onnx.save(m, tmp_path / "m.onnx")
    assert main(["to-torch", str(tmp_path / "m.onnx"), str(tmp_path / "m.pt")]) == 0, capsys.readouterr().err
    assert "TorchScript, onnx2torch 1.5.15); matches onnxruntime: rel_l2" in capsys.readouterr().out
    with zipfile.ZipFile(tmp_path / "m.pt") as z:
        names = json.loads(z.read(next(n for n in z.namelist() if n.endswith("extra/model_checks_io.json"))))
        code = b"".join(z.read(n) for n in z.namelist() if n.endswith(".py"))
    assert names["inputs"] == [m.graph.input[0].name] and names["outputs"] == [m.graph.output[0].name]
    assert b"open" not in code
    assert not canary.exists()


@needs_onnx2torch
@pytest.mark.parametrize("trust", [False, True], ids=["untrusted", "trusted"])
def test_the_roundtrip_check_on_hostile_names_passes_without_running_them(pytester, trust: bool) -> None:
    canary = pytester.path / "canary"
    m = hostile_model(canary)
    iface = {
        "inputs": [{"name": m.graph.input[0].name, "dtype": "float32", "shape": ["batch", 4]}],
        "outputs": [{"name": m.graph.output[0].name, "dtype": "float32", "shape": ["batch", 3]}],
    }
    A.onnx_artifact(pytester.path / "arts" / "evil", m, name="evil", roundtrip=["torch"], **iface)
    args = ["--model-checks", "arts", "-p", "no:cacheprovider", "-k", "roundtrip", "-v", "-rs"]
    args += ["--model-checks-trust-code"] if trust else []
    r = pytester.runpytest(*args)
    r.assert_outcomes(passed=1)
    r.stdout.fnmatch_lines(["*test_roundtrip[[]evil@1.0[]] PASSED*"])
    assert not canary.exists()


def test_a_worker_inherits_no_secret_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "ghp_secret")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "aws_secret")
    monkeypatch.setenv("SOME_SERVICE_URL", "https://user:pw@example.invalid")
    monkeypatch.setenv("OMP_NUM_THREADS", "1")
    monkeypatch.setenv("CUDA_API_TOKEN", "nope")  # an allowed prefix does not let a secret's name through
    monkeypatch.setenv("ONEDNN_DEFAULT_FPMATH_MODE", "BF16")  # nor fp32 computed in bf16 (ENV_DENIED)
    monkeypatch.setenv("ONEDNN_MAX_CPU_ISA", "AVX2")  # a kernel setting: inherited, and named with the machine
    workers = Workers(LIMITS)
    try:
        env = workers.call("onnx", probes.environment)
    finally:
        workers.close()
    assert not {"GITHUB_TOKEN", "AWS_SECRET_ACCESS_KEY", "SOME_SERVICE_URL", "CUDA_API_TOKEN"} & set(env)
    assert "ONEDNN_DEFAULT_FPMATH_MODE" not in env and env["ONEDNN_MAX_CPU_ISA"] == "AVX2"
    assert env["OMP_NUM_THREADS"] == "1" and env["HOME"].endswith("home") and "PATH" in env
    assert not allowed_variable("NPM_AUTH") and allowed_variable("LC_ALL")


def test_the_converting_worker_has_no_network_no_processes_and_writes_only_its_sandbox(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    workers = Workers(LIMITS)
    try:
        seen = workers.call("convert", probes.attempts, str(outside))
        plain = workers.call("onnx", probes.attempts, str(tmp_path / "plain"))  # other workers are not confined
    finally:
        workers.close()
    assert seen["write_outside"] == (
        f"PermissionError: model-checks: a confined worker writes only inside its sandbox, not {str(outside)!r}"
    )
    assert seen["os_open_outside"].startswith("PermissionError: model-checks: a confined worker writes only inside")
    assert seen["rename_outside"].startswith(
        "PermissionError: model-checks: a confined worker changes only its sandbox (os.rename"
    )
    assert seen["connect"] == "PermissionError: model-checks: no network in a confined worker (socket.connect)"
    assert seen["resolve"] == "PermissionError: model-checks: no network in a confined worker (socket.getaddrinfo)"
    assert seen["process"] == "PermissionError: model-checks: no processes from a confined worker (subprocess.Popen)"
    assert seen["write_inside"] == "ok" and seen["read"] == "ok"
    assert not outside.exists()
    assert plain["write_outside"] == "ok" and plain["process"] == "ok"
    if _user_namespaces():  # where the kernel allows it, the network is gone below Python too
        assert seen["net_namespace"] != plain["net_namespace"] == os.readlink("/proc/self/ns/net")


def _user_namespaces() -> bool:
    """Whether this machine lets an unprivileged process make a user and network namespace (tried in a child)."""
    import subprocess
    import sys

    code = "import ctypes, sys; sys.exit(ctypes.CDLL(None, use_errno=True).unshare(0x10000000 | 0x40000000) != 0)"
    return sys.platform.startswith("linux") and subprocess.run([sys.executable, "-c", code], timeout=60).returncode == 0


def test_onnxruntime_writes_nothing_under_the_users_home_in_process(tmp_path: Path) -> None:
    """onnxruntime writes a device id under the cache directory on import: not under the real home, where the gate
    keeps it (--model-checks-isolate off, budgets timed in process, the service)."""
    import os
    import subprocess
    import sys

    from fixtures import onnx_models

    onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx")
    home = tmp_path / "home"
    home.mkdir()
    code = (
        "import sys, numpy as np; from pathlib import Path; from model_checks.backends.onnx.runner import OnnxRunner; "
        "r = OnnxRunner(Path(sys.argv[1]), Path(sys.argv[1]).parent); "
        "print(r.infer({r.inputs[0].name: np.ones((1, 4), np.float32)}) is not None)"
    )
    env = {k: v for k, v in os.environ.items() if k not in ("XDG_CACHE_HOME", "PYTHONPATH")}
    env.update(HOME=str(home), PYTHONPATH=str(Path(__file__).resolve().parents[2]))
    cmd = [sys.executable, "-c", code, str(tmp_path / "m.onnx")]
    out = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "True"
    assert list(home.rglob("*")) == []
