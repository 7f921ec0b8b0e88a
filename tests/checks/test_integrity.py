import hashlib
import os
import shutil
import subprocess
from pathlib import Path

import numpy as np
import onnx
import pytest

from fixtures import artifacts as A
from fixtures import onnx_models as M
from model_checks.core.session import GateSession


def external_artifact(d, sha=None):
    d.mkdir(parents=True)
    model = M.linear(n_in=64, n_out=64)
    onnx.save(
        model,
        str(d / "model.onnx"),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location="weights.bin",
        size_threshold=0,
    )
    digest = hashlib.sha256((d / "model.onnx").read_bytes() + (d / "weights.bin").read_bytes()).hexdigest()
    A.write_manifest(d, {"model_name": "ext", "version": "1", "file": "model.onnx", "sha256": sha or digest})
    return d


def run(root, check="integrity"):
    gs = GateSession([root])
    return gs.run_check(check, gs.artifacts[0])


def test_sha256_covers_external_data(tmp_path):
    d = external_artifact(tmp_path / "ext")
    r = run(tmp_path)
    assert r, str(r)
    assert "sha256 matches" in str(r)
    # change one weight byte: the .onnx file is untouched, the hash over both must catch it
    data = bytearray((d / "weights.bin").read_bytes())
    data[10] ^= 0xFF
    (d / "weights.bin").write_bytes(bytes(data))
    r = run(tmp_path)
    assert not r
    assert "model.onnx with 1 external data file(s) hashes to" in str(
        r
    ) and "update sha256 in ext/metadata.yaml" in str(r)


def test_checker_failure_is_reported(tmp_path):
    model = M.linear()
    model.graph.node[0].op_type = "NoSuchOp"
    A.onnx_artifact(tmp_path / "bad", model, name="bad")
    r = run(tmp_path)
    assert not r and "onnx.checker (full check, shape inference)" in str(r) and "NoSuchOp" in str(r)


def _opened(monkeypatch):  # type: ignore[no-untyped-def]
    """Every path `open` is called with from now on, in order."""
    opened = []
    real_open = open

    def spy(p, *a, **k):  # type: ignore[no-untyped-def]
        opened.append(str(p))
        return real_open(p, *a, **k)

    monkeypatch.setattr("builtins.open", spy)
    return opened


def test_a_file_list_from_the_worker_is_proven_again_before_it_is_hashed(tmp_path, monkeypatch):
    """The worker parsed a stranger's file: a list of files it answers (as a subverted worker could) that leaves
    the artifacts root is refused by name, and the outside file is never read."""
    from dataclasses import replace

    from model_checks.checks.context import CheckContext

    root = tmp_path / "root"
    external_artifact(root / "ext")
    outside = tmp_path / "secret.txt"
    outside.write_text("not the model's")
    real_facts = CheckContext.facts

    def lying_facts(self):  # type: ignore[no-untyped-def]
        facts = real_facts(self)
        return replace(facts, files=(*facts.files, outside))

    monkeypatch.setattr(CheckContext, "facts", lying_facts)
    opened = _opened(monkeypatch)
    r = run(root)
    assert not r
    assert "sha256: '../secret.txt' climbs out of the artifacts root" in str(r), str(r)
    assert str(outside) not in opened


def test_the_hash_reads_each_file_once_in_bounded_chunks_while_the_worker_loads(tmp_path, monkeypatch):
    """With the requests sent ahead (the plugin does so once the manifest check passed), the facts that name the
    model's files are answered before its load: this process hashes the files while the worker is still loading
    (the load's answer not read yet), reading each file once, in chunks of at most 1 MiB (no second copy of the
    weights in memory), and then waits for the load. A changed byte still fails with the same message."""
    import builtins
    import io

    from model_checks.checks import integrity
    from model_checks.isolation.limits import Limits

    d = external_artifact(tmp_path / "ext")
    files = {str(d / "model.onnx"), str(d / "weights.bin")}
    gs = GateSession([tmp_path], isolation=Limits(memory_mb=2048, timeout_s=60))
    try:
        art = gs.artifacts[0]
        workers = gs.pool.workers
        assert workers is not None
        real_open, real_sha = builtins.open, integrity.sha256_of
        reads: dict[str, list[int]] = {}
        load_unread_at_hash = []

        class Counted(io.BufferedReader):
            def read(self, n=-1):  # type: ignore[no-untyped-def]
                chunk = super().read(n)
                reads.setdefault(self.name, []).append(len(chunk))
                return chunk

        def spy_open(p, mode="r", *a, **k):  # type: ignore[no-untyped-def]
            if str(p) in files and mode == "rb":
                return Counted(real_open(p, "rb", buffering=0))
            return real_open(p, mode, *a, **k)

        def spy_sha(paths):  # type: ignore[no-untyped-def]
            load = [s for (_, op, _), s in workers._ahead.items() if op == "load"]
            load_unread_at_hash.append(len(load) == 1 and not load[0].done)
            return real_sha(paths)

        monkeypatch.setattr(builtins, "open", spy_open)
        monkeypatch.setattr(integrity, "sha256_of", spy_sha)
        gs.pool.prefetch(art.model_path, "onnx", art.root, ("validate", "facts", "load"))
        r = gs.run_check("integrity", art)
        assert r and "sha256 matches" in str(r), str(r)
        assert load_unread_at_hash == [True]  # hashed while the load was in flight, before its answer was read
        assert sorted(reads) == sorted(files)
        for name, sizes in reads.items():
            assert sum(sizes) == os.path.getsize(name) and max(sizes) <= 1 << 20, (name, sizes)
        assert gs.pool.loads == {art.model_path: 1}  # and the load the hash overlapped is the one the checks use
    finally:
        gs.pool.close()


def test_a_gate_run_without_metadata_hashes_while_the_load_is_in_flight(pytester, monkeypatch):
    """The plugin sends integrity's facts ahead with its checker and load, before the load (no metadata check in
    this run to ask for the facts): the hash runs while the worker loads, and the verdict is the same."""
    from fixtures.gate_run import run_gate
    from model_checks.checks import integrity
    from model_checks.isolation.workers import Workers

    external_artifact(pytester.path / "arts" / "ext")
    pending_at_hash = []
    real_sha, real_prefetch = integrity.sha256_of, Workers.prefetch
    seen: list[Workers] = []

    def prefetch(self, fmt, op, args, path):  # type: ignore[no-untyped-def]
        seen.append(self)
        return real_prefetch(self, fmt, op, args, path)

    def spy_sha(paths):  # type: ignore[no-untyped-def]
        pending_at_hash.append([op for (_, op, _), s in seen[-1]._ahead.items() if not s.done])
        return real_sha(paths)

    monkeypatch.setattr(Workers, "prefetch", prefetch)
    monkeypatch.setattr(integrity, "sha256_of", spy_sha)
    run = run_gate(pytester, pytester.path / "arts", "-k", "manifest or integrity")
    assert run.outcome("integrity", "ext@1") == "passed", run.message("integrity", "ext@1")
    assert pending_at_hash == [["load"]]


def test_a_reference_is_hashed_while_its_variant_loads_it_and_not_again(tmp_path, monkeypatch):
    """A variant's equivalence loads its reference before the reference's own integrity check runs: the reference's
    files are hashed then, while its worker loads them, and its integrity check takes that digest instead of
    reading them again while nothing else runs (issue 24, row d with sha256). A byte changed since is still
    caught, under the same message."""
    from model_checks.checks import integrity
    from model_checks.isolation.limits import Limits
    from model_checks.safety import digest

    monkeypatch.setattr(digest, "SETTLED_NS", 0)  # written just now, and nothing writes them while they are hashed
    root = tmp_path / "root"
    ext = external_artifact(root / "ext")
    A.onnx_artifact(
        root / "variant", M.linear(n_in=64, n_out=64), name="variant", reference={"path": "../ext/model.onnx"}
    )
    gs = GateSession([root], isolation=Limits(memory_mb=2048, timeout_s=60))
    hashed: list[tuple[list[str], bool]] = []
    real_sha = digest.sha256_of

    def spy_sha(paths):  # type: ignore[no-untyped-def]
        paths = list(paths)
        loads = [s for (_, op, _), s in gs.pool.workers._ahead.items() if op == "load"]
        hashed.append(([p.name for p in paths], len(loads) == 1 and not loads[0].done))
        return real_sha(paths)

    monkeypatch.setattr(digest, "sha256_of", spy_sha)
    monkeypatch.setattr(integrity, "sha256_of", spy_sha)
    try:
        by_id = {a.id: a for a in gs.artifacts}
        r = gs.run_check("equivalence", by_id["variant@1.0"])
        assert r, str(r)
        assert hashed == [(["model.onnx", "weights.bin"], True)]  # while the reference's load was in flight
        r = gs.run_check("integrity", by_id["ext@1"])
        assert r and "sha256 matches" in str(r), str(r)
        assert len(hashed) == 1 and gs.pool.loads[by_id["ext@1"].model_path] == 1
        assert not gs.pool.workers._ahead  # everything sent ahead was asked for
        data = bytearray((ext / "weights.bin").read_bytes())
        data[10] ^= 0xFF
        (ext / "weights.bin").write_bytes(bytes(data))
        r = gs.run_check("integrity", by_id["ext@1"])
        assert not r and "model.onnx with 1 external data file(s) hashes to" in str(r), str(r)
        assert len(hashed) == 2
    finally:
        gs.pool.close()


def test_a_reference_hashed_ahead_reads_only_files_proven_inside_the_root(tmp_path, monkeypatch):
    """The reference's file list comes from its worker, which parsed a stranger's file: hashed ahead, it is proven
    as integrity proves it, the outside file is never read, and the reference's integrity check refuses it."""
    from dataclasses import replace

    from model_checks.core.pool import ModelPool
    from model_checks.isolation.limits import Limits

    root = tmp_path / "root"
    external_artifact(root / "ext")
    A.onnx_artifact(
        root / "variant", M.linear(n_in=64, n_out=64), name="variant", reference={"path": "../ext/model.onnx"}
    )
    outside = tmp_path / "secret.txt"
    outside.write_text("not the model's")
    real_facts = ModelPool.facts

    def lying_facts(self, path, *a, **k):  # type: ignore[no-untyped-def]
        facts = real_facts(self, path, *a, **k)
        return replace(facts, files=(*facts.files, outside)) if path.parent.name == "ext" else facts

    monkeypatch.setattr(ModelPool, "facts", lying_facts)
    opened = _opened(monkeypatch)
    gs = GateSession([root], isolation=Limits(memory_mb=2048, timeout_s=60))
    try:
        by_id = {a.id: a for a in gs.artifacts}
        assert gs.run_check("equivalence", by_id["variant@1.0"])
        r = gs.run_check("integrity", by_id["ext@1"])
        assert not r and "sha256: '../secret.txt' climbs out of the artifacts root" in str(r), str(r)
        assert str(outside) not in opened
    finally:
        gs.pool.close()


def test_a_reference_whose_facts_name_no_files_is_hashed_ahead_with_nothing_left_waiting(tmp_path, monkeypatch):
    """A format whose facts do not name its files (one file: Keras, TFLite) is hashed from its path: its facts are
    not sent ahead, since nothing would ask for them (a request left waiting broke every later inference)."""
    from model_checks.backends import backend
    from model_checks.isolation.limits import Limits
    from model_checks.safety import digest

    monkeypatch.setattr(digest, "SETTLED_NS", 0)
    monkeypatch.delattr(backend("onnx", "facts"), "model_files")  # as a single-file format's facts
    monkeypatch.setattr(
        backend("onnx", "runner"), "INTERFACE_IS_FACTS", False
    )  # and its runner (Keras): no facts asked
    root = tmp_path / "root"
    A.onnx_artifact(root / "ref", M.linear(), name="ref", sha256="0" * 64)
    A.onnx_artifact(root / "variant", M.linear(), name="variant", reference={"path": "../ref/model.onnx"})
    gs = GateSession([root], isolation=Limits(memory_mb=2048, timeout_s=60))
    try:
        by_id = {a.id: a for a in gs.artifacts}
        r = gs.run_check("equivalence", by_id["variant@1.0"])
        assert r, str(r)
        assert not gs.pool.workers._ahead
        assert gs.pool.digests.known([by_id["ref@1.0"].model_path]) is not None  # hashed from its path
        ref = gs.pool.runner(by_id["ref@1.0"].model_path, "onnx", root)
        feeds = {t.name: np.zeros([d if isinstance(d, int) else 2 for d in t.shape], np.float32) for t in ref.inputs}
        assert ref.infer(feeds)  # later inferences are served (a fresh set of feeds: not shared outputs)
    finally:
        gs.pool.close()


def test_a_reference_that_cannot_be_hashed_ahead_leaves_its_variant_alone(tmp_path, monkeypatch):
    """What stops the hash ahead (an unreadable file, a folder) is the reference's integrity check's to report, not
    a failure of the variant whose equivalence loaded it."""
    from model_checks.isolation.limits import Limits
    from model_checks.safety.digest import Digests

    def unreadable(self, paths):  # type: ignore[no-untyped-def]
        raise PermissionError(13, "Permission denied", str(paths[0]))

    monkeypatch.setattr(Digests, "hash", unreadable)
    root = tmp_path / "root"
    external_artifact(root / "ext")
    A.onnx_artifact(
        root / "variant", M.linear(n_in=64, n_out=64), name="variant", reference={"path": "../ext/model.onnx"}
    )
    gs = GateSession([root], isolation=Limits(memory_mb=2048, timeout_s=60))
    try:
        r = gs.run_check("equivalence", {a.id: a for a in gs.artifacts}["variant@1.0"])
        assert r and "rel_l2" in str(r), str(r)
    finally:
        gs.pool.close()


# -- a model that needs something of the machine's: a locale (StringNormalizer) -------------------------------------
LOCALE = "zz_ZZ.UTF-8"  # a name no machine installs, unless a test makes it under LOCPATH


def normalizer_artifact(d, locale=LOCALE):
    from onnx import TensorProto, helper

    node = helper.make_node("StringNormalizer", ["x"], ["y"], case_change_action="UPPER", locale=locale)
    graph = helper.make_graph(
        [node],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.STRING, [2])],
        [helper.make_tensor_value_info("y", TensorProto.STRING, [2])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)], ir_version=8)
    return A.onnx_artifact(d, model, name="normalizer")


def test_a_locale_the_machine_lacks_fails_as_this_machines_verdict_not_the_models(tmp_path):
    from model_checks.core.machine import this_machine

    normalizer_artifact(tmp_path / "n")
    r = run(tmp_path)
    text = str(r)
    assert not r and text.startswith("integrity: normalizer@1.0: model cannot be loaded on this machine"), text
    assert f"a StringNormalizer in it asks for the locale '{LOCALE}'" in text
    assert f"locale-gen {LOCALE}" in text and "locale: C.UTF-8" in text  # the two ways out
    assert f"what it lacks is this machine's, and so is this verdict: {this_machine().describe()}" in text
    assert "an op, a domain or a type it lacks" not in text  # the runtime lacks nothing: the machine does


def test_a_locale_the_machine_lacks_blocks_the_artifacts_model_checks_in_a_gate_run(pytester):
    normalizer_artifact(pytester.path / "arts" / "n")
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider", "-rs")
    r.assert_outcomes(passed=1, failed=1, skipped=4)  # the manifest passes; the rest wait on the model
    r.stdout.fnmatch_lines(
        [
            "*integrity: normalizer@1.0: model cannot be loaded on this machine*",
            f"*asks for the locale '{LOCALE}'*",
            "*what it lacks is this machine's, and so is this verdict: *",
        ]
    )


@pytest.fixture(scope="module")
def locales(tmp_path_factory):
    """A folder holding the locale LOCALE (built from en_US's sources by localedef), for LOCPATH."""
    if shutil.which("localedef") is None or not Path("/usr/share/i18n/locales/en_US").is_file():
        pytest.skip("needs localedef and glibc's locale sources (/usr/share/i18n/locales)")
    folder = tmp_path_factory.mktemp("locales")
    subprocess.run(["localedef", "-i", "en_US", "-f", "UTF-8", str(folder / LOCALE)], check=True, capture_output=True)
    return folder


def test_a_locale_installed_where_locpath_says_opens_in_the_worker_too(pytester, monkeypatch, locales):
    # the user's process finds the locale through LOCPATH; the model's sandboxed worker must find it the same way
    normalizer_artifact(pytester.path / "arts" / "n")
    monkeypatch.setenv("LOCPATH", str(locales))
    r = pytester.runpytest_subprocess("--model-checks", "arts", "-p", "no:cacheprovider", "-k", "integrity")
    r.assert_outcomes(passed=1, deselected=5)
