"""core/shards.py: groups by shared model, weights, dealing into shards, durations files."""

from dataclasses import dataclass
from pathlib import Path

import pytest

from model_checks.core.errors import ModelChecksError
from model_checks.core.shards import Group, deal, groups, read_durations, shard_ids, weights


@dataclass
class Art:
    id: str
    models: tuple


def _groups(*arts):
    return groups(list(arts), lambda a: [Path(m) for m in a.models])


def test_a_reference_its_variants_and_a_chain_through_them_form_one_group():
    found = _groups(
        Art("ref", ("r",)), Art("solo", ("s",)), Art("v1", ("v1", "r")), Art("v2", ("v2", "r")), Art("w", ("w", "v2"))
    )
    assert [g.ids for g in found] == [("ref", "v1", "v2", "w"), ("solo",)]
    assert found[0].models == tuple(Path(m) for m in ("r", "v1", "v2", "w"))


def test_an_artifact_without_models_is_its_own_group():
    assert [g.ids for g in _groups(Art("bad", ()), Art("bad2", ()))] == [("bad",), ("bad2",)]


def test_dealing_puts_the_heaviest_first_on_the_lightest_shard_and_is_stable():
    gs = [Group((f"a{i}",), ()) for i in range(5)]
    shards = deal(gs, 2, [5.0, 4.0, 3.0, 2.0, 2.0])
    assert [[g.ids[0] for g in s] for s in shards] == [["a0", "a3", "a4"], ["a1", "a2"]]  # ties go to the lower shard
    assert deal(gs, 2, [5.0, 4.0, 3.0, 2.0, 2.0]) == shards
    assert [s for s in deal(gs, 7, [1.0] * 5) if not s] == [[], []]  # more shards than groups: some are empty


def test_shards_cover_every_artifact_once():
    gs = [Group((f"a{i}", f"b{i}"), ()) for i in range(7)]
    parts = [shard_ids(gs, k, 3, {f"a{i}": float(i) for i in range(7)}) for k in (1, 2, 3)]
    assert set().union(*parts) == {i for g in gs for i in g.ids} and sum(map(len, parts)) == 14


def test_weights_from_durations_give_an_unknown_artifact_the_mean(tmp_path):
    gs = [Group(("a", "b"), ()), Group(("new",), ())]
    assert weights(gs, {"a": 1.0, "b": 3.0}) == [4.0, 2.0]
    (tmp_path / "m").write_bytes(b"x" * 100)
    assert weights([Group(("a",), (tmp_path / "m", tmp_path / "gone"))]) == [100.0]


def test_durations_from_pytest_junit_sum_each_artifacts_checks(tmp_path):
    p = tmp_path / "junit.xml"
    p.write_text(
        '<testsuites><testsuite name="pytest">'
        '<testcase classname="arts.a.metadata.yaml" name="test_limits[a@1.0]" time="1.5"/>'
        '<testcase classname="arts.a.metadata.yaml" name="test_latency[a@1.0-cpu]" time="2.0"/>'
        '<testcase classname="tests.test_x" name="test_other" time="9"/></testsuite></testsuites>'
    )
    assert read_durations(p) == {"a@1.0": 3.5}


@pytest.mark.parametrize(
    "text, message",
    [
        ('{"a@1": -1}', "durations must be numbers of seconds >= 0; not so for 'a@1'"),
        ('{"a@1": ', "not a JSON object of artifact id -> seconds"),
        ("<junit", "neither JSON nor junit XML"),
    ],
)
def test_a_bad_durations_file_says_what_is_wrong(tmp_path, text, message):
    p = tmp_path / "d.json"
    p.write_text(text)
    with pytest.raises(ModelChecksError, match="d.json: " + message.replace("(", r"\(").replace(")", r"\)")):
        read_durations(p)
