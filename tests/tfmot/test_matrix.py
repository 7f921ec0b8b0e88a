"""The Keras Applications matrix: rendering, the command on one real application, and the full matrix nightly."""

import os
import warnings
from pathlib import Path

import pytest

pytest.importorskip("tensorflow_model_optimization")

from model_checks.cli import main  # noqa: E402
from model_checks.tfmot import NON_LAYER_OP, Problem  # noqa: E402
from model_checks.tfmot.matrix import (  # noqa: E402
    Entry,
    Matrix,
    Outcome,
    Results,
    _label,
    constructors,
    entry_line,
    load_results,
    matrix_fingerprint,
    render,
    run_matrix,
)


def test_render_counts_classes_and_lists_what_the_budget_left_out():
    bad = Outcome(
        False,
        (Problem("tf.__operators__.add", "TFOpLambda", NON_LAYER_OP, "a + b"), Problem("x", "Y", NON_LAYER_OP, "")),
    )
    m = Matrix(
        [
            Entry(
                "A", True, 32, 1_000_000, Outcome(True, note="rel_l2 0.01"), Outcome(True), 3.0, quantize_rel_l2=0.01
            ),
            Entry("B", False, 32, 2_000_000, bad, Outcome(True), 4.0),
            Entry(
                "D",
                False,
                32,
                1_000_000,
                Outcome(True, note="rel_l2 0.4 > 0.1"),
                Outcome(True),
                3.0,
                quantize_rel_l2=0.4,
            ),
        ],
        not_run=[("C", False)],
        seconds=7,
    )
    text = render(m)
    assert (
        "3 configurations in 7 s: quantize applies to 2, prune passes 3, both 2. Of those quantize applies to, 1 stay within rel_l2 0.1 "
        "of the float model before training;"
    ) in text and "**1 not run** (time budget): C (no top)." in text
    # issue 10: a model the per-artifact check fails for closeness never reads "pass"
    assert (
        "| D | no | 32 | 1.0M | applies; rel_l2 0.4 > 0.1 (too far: the per-artifact check fails it) | pass | 3 |"
        in text
    )
    assert "| A | yes | 32 | 1.0M | applies; rel_l2 0.01 | pass | 3 |" in text
    assert "- quantize failures by class: non-layer operation 1" in text and "- prune failures by class: none" in text
    assert (
        "| B | no | 32 | 2.0M | FAIL non-layer operation: `tf.__operators__.add` (TFOpLambda) (+1 more) | pass | 4 |"
        in text
    )


def test_recorded_entries_come_back_only_under_the_same_fingerprint(tmp_path):
    fp = matrix_fingerprint()
    assert {"tensorflow", "tf-keras", "tfmot", "code"} <= set(fp)
    bad = Outcome(False, (Problem("add", "TFOpLambda", NON_LAYER_OP, "a + b", "write it as a layer"),))
    e = Entry("A", False, 32, 10, bad, Outcome(True, note="fit diverged in 1 layer(s)"), 1.5, {"build": 0.5})
    stale = entry_line(
        Entry("B", True, 32, 10, bad, bad, 1.0), {**fp, "code": "0" * 16}
    )  # our deciding code changed since
    path = tmp_path / "m.jsonl"
    path.write_text(entry_line(e, fp) + "\n" + stale + "\n" + "not json\n")
    done, other = load_results(path, fp)
    assert done == {("A", False): e} and other == 2
    m = run_matrix(["A"], (False,), done=done)  # nothing left to run: the recorded entry is taken as it is
    assert m.entries == [e] and m.carried == 1 and "1 of them carried over" in render(m)


def test_constructors_cover_every_application_families_first():
    names = constructors()
    assert len(names) == len(set(names)) >= 60 and names[:2] == ["MobileNet", "MobileNetV2"]


def test_command_on_one_application_writes_the_report(tmp_path, capsys):
    out = tmp_path / "m.md"
    assert (
        main(["tfmot-matrix", "--only", "MobileNetV3Small", "--top", "without", "--out", str(out), "--color", "always"])
        == 0
    )
    printed = capsys.readouterr().out
    assert (
        "\033[31mFAIL non-layer operation" in printed
    )  # red in the terminal: hard-swish is written as x * relu6(x + 3) / 6
    assert "1 configurations" in printed and "| MobileNetV3Small | no |" in out.read_text()
    assert main(["tfmot-matrix", "--only", "NoSuchNet"]) == 1


def unreached(m: Matrix, key: tuple[str, bool], budget: float | None) -> str | None:
    """What to say when the run's time budget left `key` out (None when it ran); never a KeyError."""
    if any((e.app, e.top) == key for e in m.entries):
        return None
    assert key in m.not_run, f"{key} neither ran nor was reported as left out by the budget"
    left = ", ".join(_label(a, top) for a, top in m.not_run)
    return (
        f"MODEL_CHECKS_MATRIX_BUDGET={budget:g} s did not reach {_label(*key)}; {len(m.not_run)} entr(ies) not run: {left} "
        "(listed in reports/tfmot_matrix.md; the next run takes them up)"
    )


def test_a_budget_that_did_not_reach_an_entry_is_reported_not_a_key_error():
    m = Matrix(not_run=[("MobileNetV2", False), ("MobileNetV2", True)])
    assert unreached(m, ("MobileNetV2", False), 30.0) == (
        "MODEL_CHECKS_MATRIX_BUDGET=30 s did not reach MobileNetV2 (no top); 2 entr(ies) not run: MobileNetV2 (no top), MobileNetV2 "
        "(listed in reports/tfmot_matrix.md; the next run takes them up)"
    )


@pytest.mark.nightly
def test_full_matrix():
    """Every constructor, with and without the top, within MODEL_CHECKS_MATRIX_BUDGET seconds (default 3000; 0 means
    no limit). The whole matrix takes about two hours on 2 cores, so each entry is recorded in
    reports/tfmot_matrix.jsonl and the next night takes up what is missing (keep reports/ between nightly runs);
    MODEL_CHECKS_MATRIX_FRESH=1 starts over. What the budget leaves out is listed in the report."""
    from model_checks.core.fileio import write_text

    budget = float(os.environ.get("MODEL_CHECKS_MATRIX_BUDGET", 3000)) or None
    results = Results(Path("reports/tfmot_matrix.jsonl"), resume=os.environ.get("MODEL_CHECKS_MATRIX_FRESH") != "1")
    m = run_matrix(budget_s=budget, on_entry=results.record, done=results.done)
    write_text(Path("reports/tfmot_matrix.md"), render(m))
    by = {(e.app, e.top): e for e in m.entries}
    note = unreached(m, ("MobileNetV2", False), budget)
    if note:  # a budget that did not reach it is a statement, not a KeyError
        warnings.warn(pytest.PytestWarning(note), stacklevel=1)
    else:
        assert by[("MobileNetV2", False)].quantize.ok and by[("MobileNetV2", False)].prune.ok
    unexplained = [
        e.app for e in m.entries for o in (e.quantize, e.prune) if not o.ok and not o.problems and not o.note
    ]
    assert not unexplained
