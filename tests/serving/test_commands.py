"""`model-checks serve` and `model-checks loadtest` as a user runs them."""

import json
import os
import signal
import subprocess
import sys

import pytest

from fixtures import artifacts as A
from model_checks.cli import main

IFACE = {
    "inputs": [{"name": "input", "dtype": "float32", "shape": ["batch", 4]}],
    "outputs": [{"name": "logits", "dtype": "float32", "shape": ["batch", 3]}],
}


def start_service(d, *, launcher=("-m", "model_checks"), stderr=subprocess.PIPE, env=None) -> subprocess.Popen:
    """`model-checks serve` on the artifact `d`, in a process group of its own, as a user starts it (without
    isolation: a quick start). `launcher`: how Python runs the CLI."""
    return subprocess.Popen(
        [sys.executable, *launcher, "serve", str(d), "--port", "0", "--isolate", "off"],
        stdout=subprocess.PIPE,
        stderr=stderr,
        text=True,
        start_new_session=True,
        env=env,
    )


def test_serve_prints_its_address_then_loadtest_json_then_sigterm_exits_cleanly(tmp_path, capsys):
    d = A.onnx_artifact(tmp_path / "arts" / "tiny", name="tiny", **IFACE)
    proc = start_service(d)
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:") and url.rsplit(":", 1)[1].isdigit()
        rc = main(["loadtest", url, "--rate", "50", "--duration", "1", "--body-from", str(d), "--json"])
        doc = json.loads(capsys.readouterr().out)
        assert rc == 0 and doc["errors"] == 0 and doc["sent"] == 50 and doc["url"] == f"{url}/v2/models/tiny/infer"
        assert {"achieved_rate", "errors", "latency_ms"} <= set(doc) and set(doc["latency_ms"]) >= {"p50", "p95", "p99"}
        proc.send_signal(signal.SIGTERM)
        assert proc.wait(20) == 0
        assert "Traceback" not in proc.stderr.read()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_serve_refuses_a_non_loopback_host(tmp_path, capsys):
    d = A.onnx_artifact(tmp_path / "arts" / "tiny", name="tiny", **IFACE)
    assert main(["serve", str(d), "--host", "0.0.0.0"]) == 1
    assert capsys.readouterr().err == (
        "model-checks serve: error: host '0.0.0.0' is not a loopback address; model-checks serves and "
        "load-tests on this machine only (127.0.0.1, ::1, localhost)\n"
    )


def test_loadtest_refuses_a_remote_url_before_sending(tmp_path, capsys):
    d = A.onnx_artifact(tmp_path / "arts" / "tiny", name="tiny", **IFACE)
    assert main(["loadtest", "http://192.0.2.1:8000", "--rate", "1", "--duration", "1", "--body-from", str(d)]) == 1
    assert "host '192.0.2.1' is not a loopback address" in capsys.readouterr().err


def test_serve_on_a_full_disk_says_so_in_a_sentence(tmp_path, capsys, monkeypatch):
    """The service's private home (and its worker's sandbox) are made under the temporary directory: a disk that
    refuses it is one line naming what and where, exit status 1, not a traceback."""
    import tempfile

    A.onnx_artifact(tmp_path / "m", name="m")

    def full(*a, **k):  # type: ignore[no-untyped-def]
        raise OSError(28, "No space left on device", "/tmp/model-checks-serve-x")

    monkeypatch.setattr(tempfile, "mkdtemp", full)
    assert main(["serve", str(tmp_path / "m"), "--root", str(tmp_path), "--port", "0"]) == 1
    err = capsys.readouterr().err
    assert err.startswith("model-checks serve: error: the service's private home could not be made: No space left")
    assert "TMPDIR chooses where" in err and "Traceback" not in err


def test_a_killed_services_private_home_is_swept_by_the_next_service_and_a_running_ones_is_kept(tmp_path):
    """A service killed before its cleanup runs (SIGKILL, the OOM killer, a CI job's timeout) leaves its private
    home under the temporary directory; the next service to start removes it, and never the home of one still
    running, nor a home it cannot tell is unused (no lock file: an older version's)."""
    d = A.onnx_artifact(tmp_path / "arts" / "tiny", name="tiny", **IFACE)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    (tmp / "model-checks-serve-older").mkdir()  # made by a version without the lock: left as it is
    env = {**os.environ, "TMPDIR": str(tmp)}

    def start() -> subprocess.Popen:
        proc = start_service(d, stderr=subprocess.DEVNULL, env=env)
        assert proc.stdout.readline().startswith("http://127.0.0.1:")  # listening: its home is made
        return proc

    def homes() -> set[str]:
        return {p.name for p in tmp.iterdir() if p.name.startswith("model-checks-serve-")}

    procs = []
    try:
        killed = start()
        procs.append(killed)
        (killed_home,) = homes() - {"model-checks-serve-older"}
        os.killpg(killed.pid, signal.SIGKILL)
        killed.wait()
        assert killed_home in homes()  # no cleanup ran
        running = start()
        procs.append(running)
        (running_home,) = homes() - {"model-checks-serve-older"}
        assert running_home != killed_home  # the killed one's is gone
        procs.append(start())
        assert running_home in homes() and len(homes()) == 3  # the running one's kept, beside the new one's
    finally:
        for proc in procs:
            if proc.poll() is None:
                proc.send_signal(signal.SIGTERM)
                proc.wait(30)
    assert homes() == {"model-checks-serve-older"}  # the two that stopped removed theirs


SLOW_START = """
import sys, time
import uvicorn
from model_checks.cli import main

serve = uvicorn.Server.serve


async def slow(self, sockets=None):  # a loaded machine: uvicorn takes its time before its signal handlers are in place
    time.sleep(1.0)
    return await serve(self, sockets)


uvicorn.Server.serve = slow
sys.exit(main(sys.argv[1:]))
"""


@pytest.mark.parametrize("sig", [signal.SIGTERM, signal.SIGINT], ids=["SIGTERM", "SIGINT"])
@pytest.mark.parametrize("when", ["at-once", "serving"])
def test_a_sigterm_or_ctrl_c_stops_the_service_with_0_even_as_soon_as_the_address_is_printed(tmp_path, sig, when):
    """The address line tells a supervisor the service is up, so a SIGTERM may follow at once: one that comes
    before uvicorn has put its own handler in place (it does so inside its loop, later on a slow machine) still
    stops the service gracefully, with status 0, and its private home is removed. Ctrl-C (SIGINT) does the same,
    then or once it serves, without a KeyboardInterrupt's traceback."""
    d = A.onnx_artifact(tmp_path / "arts" / "tiny", name="tiny", **IFACE)
    tmp = tmp_path / "tmp"
    tmp.mkdir()
    proc = start_service(d, launcher=("-c", SLOW_START), env={**os.environ, "TMPDIR": str(tmp)})
    try:
        url = proc.stdout.readline().strip()
        assert url.startswith("http://127.0.0.1:")
        if when == "serving":
            assert main(["loadtest", url, "--rate", "20", "--duration", "0.5", "--body-from", str(d)]) == 0
        proc.send_signal(sig)
        assert proc.wait(30) == 0, proc.stderr.read()
        assert proc.stderr.read() == "" and list(tmp.iterdir()) == []
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


def test_a_service_run_in_process_gives_the_environment_back(tmp_path, monkeypatch):
    """The private home replaces HOME, XDG_CACHE_HOME and TMPDIR while the service runs; once it is removed, a caller
    that ran the service in its own process (a notebook, the CLI's tests) has its variables back as they were, set or
    unset, and no variable names a folder that is gone."""
    import tempfile

    from model_checks.serving.service import _private_home, _remove_home

    monkeypatch.setenv("TMPDIR", str(tmp_path))
    monkeypatch.setenv("HOME", str(tmp_path / "me"))
    monkeypatch.delenv("XDG_CACHE_HOME", raising=False)
    home, environment = _private_home()
    assert os.environ["HOME"] == home and os.environ["TMPDIR"] == os.path.join(home, "tmp")
    assert tempfile.gettempdir() == os.path.join(home, "tmp")
    _remove_home(home, environment)
    assert not os.path.exists(home)
    assert (os.environ["TMPDIR"], os.environ["HOME"]) == (str(tmp_path), str(tmp_path / "me"))
    assert "XDG_CACHE_HOME" not in os.environ and tempfile.gettempdir() == str(tmp_path)
