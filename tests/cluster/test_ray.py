"""`model-checks run --ray` on a local Ray (the embedded default): the same reports as a single run, what each
shard's task asks for, and a task whose worker dies retried once and then reported as lost, never as passed."""

import json
import os
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import pytest

from fixtures import artifacts as A
from fixtures.gate_run import junit_verdicts
from model_checks.cli import main
from model_checks.cluster.plan import ShardPlan, plan
from model_checks.cluster.ray import ShardOutcome, resources, run_shards
from model_checks.cluster.shard import ShardJob

ray = pytest.importorskip("ray")

CPU = {"cpu": {"threads": 1, "latency_ms": {"p50": 100.0}}}
GPU = {"gpu": {"latency_ms": {"p50": 100.0}}}


@pytest.fixture(scope="module")
def local_ray():
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    yield ray
    ray.shutdown()


@pytest.fixture
def tree(pytester):
    root = A.family_tree(pytester.path / "arts", variants=("v1",), solos=("s1",))
    A.onnx_artifact(root / "bad", name="bad", tolerence={"mae": 1})
    return root


@pytest.mark.slow  # starts Ray (about 5 s here) and a gate per shard
def test_a_run_on_local_ray_reports_what_a_single_run_does(pytester, tree, local_ray, monkeypatch, capsys):
    single = pytester.runpytest_subprocess(
        "--model-checks",
        "arts",
        "-p",
        "no:cacheprovider",
        "--model-checks-isolate",
        "off",
        "--junitxml",
        "single/junit.xml",
        "--model-checks-summary",
        "single/summary.md",
    )
    single.assert_outcomes(passed=10, skipped=8, failed=1)
    monkeypatch.chdir(pytester.path)
    rc = main(["run", "--ray", "--model-checks", "arts", "-o", "out", "--shards", "3", "--model-checks-isolate", "off"])
    assert rc == 1  # the bad manifest fails here as there
    assert "model-checks run: 3 shard(s) on Ray, 0 lost; 1 artifact(s) failing or lost" in capsys.readouterr().out
    assert junit_verdicts(pytester.path / "out" / "junit.xml") == junit_verdicts(pytester.path / "single" / "junit.xml")
    assert (pytester.path / "out" / "summary.md").read_text() == (pytester.path / "single" / "summary.md").read_text()
    assert sorted(p.name for p in (pytester.path / "out" / "shards").iterdir()) == ["1", "2", "3"]


def _dies(job):
    """A task body whose worker process dies (a node lost mid-run), counting its attempts in a file."""
    with open(Path(job.cwd) / f"attempts-{job.shard[0]}", "a") as f:
        f.write("x")
    if job.shard[0] == 2:
        os._exit(1)
    return {"rc": 0, "files": {}, "output": ""}


@pytest.mark.slow  # starts Ray
def test_a_task_whose_worker_dies_is_retried_once_then_lost(tmp_path, local_ray):
    plans = [ShardPlan(1, 2, ("a@1",), False, False), ShardPlan(2, 2, ("b@1",), False, False)]
    out = run_shards(local_ray, plans, lambda p: ShardJob(str(tmp_path), (), (p.index, p.count)), body=_dies)
    assert out[0] == ShardOutcome(plans[0], {"rc": 0, "files": {}, "output": ""})
    assert out[1].result is None and out[1].lost.startswith("WorkerCrashedError")
    assert (tmp_path / "attempts-2").read_text() == "xx"  # the first run and one retry


def test_a_lost_shard_is_an_error_in_junit_and_lost_in_the_summary(tmp_path):
    from model_checks.commands.merge import Lost, merge

    failed, _ = merge([], tmp_path / "out", lost=(Lost((1, 1), ("a@1",), "WorkerCrashedError: node died"),))
    assert failed == 1
    text = (tmp_path / "out" / "summary.md").read_text()
    assert "| `a@1` | - | - | - | - | - | - | - | LOST | LOST | LOST | LOST | LOST | LOST |" in text
    assert (
        "- `a@1`: lost: shard 1/1 never reported (WorkerCrashedError: node died); it was retried once. Its artifacts were not "
        "checked: rerun them with pytest --model-checks ROOT --model-checks-shard 1/1 before trusting this report"
    ) in text
    assert "1 artifact(s) with a failing check or lost." in text
    (case,) = ET.parse(tmp_path / "out" / "junit.xml").getroot().iter("testcase")
    assert case.get("name") == "lost[a@1]" and case.find("error").get("message").startswith(
        "lost: shard 1/1 never reported"
    )


def test_gpu_budget_shards_ask_for_a_gpu_and_cpu_budget_shards_for_a_whole_node(tmp_path):
    A.onnx_artifact(tmp_path / "g", name="g", budgets=GPU)
    A.onnx_artifact(tmp_path / "c", name="c", budgets=CPU)
    A.onnx_artifact(tmp_path / "p", name="p")
    by_id = {p.ids: p for p in plan([tmp_path], 3)}
    assert resources(by_id[("g@1.0",)], 8.0) == {"num_gpus": 1, "num_cpus": 1}
    assert resources(by_id[("c@1.0",)], 8.0) == {"num_gpus": 0, "num_cpus": 8.0}
    assert resources(by_id[("p@1.0",)], 8.0) == {"num_gpus": 0, "num_cpus": 1}


def test_without_ray_the_command_names_the_extra(tmp_path, monkeypatch, capsys):
    import sys

    monkeypatch.setitem(sys.modules, "ray", None)  # as if not installed
    (tmp_path / "arts").mkdir()
    monkeypatch.chdir(tmp_path)
    assert main(["run", "--ray", "--model-checks", "arts", "-o", "out"]) == 1
    assert (
        "model-checks run: error: model-checks run --ray needs ray, which is not installed: pip install 'model-checks[ray]'"
        in capsys.readouterr().err
    )


def _listening(pids: set[int]) -> set[str]:
    """The local addresses of TCP sockets in LISTEN state that the processes `pids` hold (from /proc)."""
    import os

    inodes = set()
    for pid in pids:
        try:
            for fd in os.listdir(f"/proc/{pid}/fd"):
                target = os.readlink(f"/proc/{pid}/fd/{fd}")
                if target.startswith("socket:["):
                    inodes.add(target[8:-1])
        except OSError:
            continue
    out = set()
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        with open(table) as f:
            for line in list(f)[1:]:
                cols = line.split()
                if cols[3] == "0A" and cols[9] in inodes:  # 0A: LISTEN
                    out.add(cols[1].rsplit(":", 1)[0])
    return out


@pytest.mark.slow  # starting Ray: about 40 s on a loaded machine
@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_a_local_ray_cluster_listens_on_loopback_only(tmp_path):
    import subprocess
    import textwrap

    code = textwrap.dedent("""
        import json, os, sys
        from model_checks.cluster.ray import start
        ray = start(None, 1)
        print(json.dumps({"nodes": [n["NodeManagerAddress"] for n in ray.nodes()], "pid": os.getpid()}), flush=True)
        sys.stdin.readline()
        ray.shutdown()
    """)
    proc = subprocess.Popen(
        [sys.executable, "-c", code],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        cwd=Path(__file__).resolve().parents[2],
        start_new_session=True,
    )
    try:
        info = json.loads(proc.stdout.readline())
        assert info["nodes"] == ["127.0.0.1"]
        group = {int(p) for p in os.listdir("/proc") if p.isdigit() and _pgid(int(p)) == proc.pid}
        addresses = _listening(group)
        loopback = {"0100007F", "00000000000000000000000001000000", "0000000000000000FFFF00000100007F"}
        assert addresses and addresses <= loopback, addresses  # never 00000000 (every interface)
    finally:
        proc.communicate("\n", timeout=120)


def _pgid(pid: int) -> int | None:
    try:
        return os.getpgid(pid)
    except OSError:
        return None
