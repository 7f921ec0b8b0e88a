"""The Keras Applications matrix: rendering, the command on one real application, and the full matrix nightly."""

import os
from pathlib import Path

import pytest

pytest.importorskip("tensorflow_model_optimization")

from model_checks.cli import main  # noqa: E402
from model_checks.tfmot import NON_LAYER_OP, Problem  # noqa: E402
from model_checks.tfmot.matrix import Entry, Matrix, Outcome, constructors, render, run_matrix  # noqa: E402


def test_render_counts_classes_and_lists_what_the_budget_left_out():
    bad = Outcome(False, (Problem("tf.__operators__.add", "TFOpLambda", NON_LAYER_OP, "a + b"), Problem("x", "Y", NON_LAYER_OP, "")))
    m = Matrix([Entry("A", True, 32, 1_000_000, Outcome(True, note="rel_l2 0.01"), Outcome(True), 3.0),
                Entry("B", False, 32, 2_000_000, bad, Outcome(True), 4.0)], not_run=[("C", False)], seconds=7)
    text = render(m)
    assert "2 configurations in 7 s: quantize passes 1, prune passes 2, both 1. **1 not run** (time budget): C (no top)." in text
    assert "- quantize failures by class: non-layer operation 1" in text and "- prune failures by class: none" in text
    assert "| B | no | 32 | 2.0M | FAIL non-layer operation: `tf.__operators__.add` (TFOpLambda) (+1 more) | pass | 4 |" in text


def test_constructors_cover_every_application_families_first():
    names = constructors()
    assert len(names) == len(set(names)) >= 60 and names[:2] == ["MobileNet", "MobileNetV2"]


def test_command_on_one_application_writes_the_report(tmp_path, capsys):
    out = tmp_path / "m.md"
    assert main(["tfmot-matrix", "--only", "MobileNetV3Small", "--top", "without", "--out", str(out), "--color", "always"]) == 0
    printed = capsys.readouterr().out
    assert "\033[31mFAIL non-layer operation" in printed  # red in the terminal: hard-swish is written as x * relu6(x + 3) / 6
    assert "1 configurations" in printed and "| MobileNetV3Small | no |" in out.read_text()
    assert main(["tfmot-matrix", "--only", "NoSuchNet"]) == 1


@pytest.mark.nightly
def test_full_matrix(tmp_path):
    """Every constructor, with and without the top, within MODEL_CHECKS_MATRIX_BUDGET seconds (default 3000: the
    whole matrix takes hours on 2 cores; 0 means no limit). What the budget leaves out is listed in the report."""
    budget = float(os.environ.get("MODEL_CHECKS_MATRIX_BUDGET", 3000)) or None
    m = run_matrix(budget_s=budget)
    Path("reports").mkdir(exist_ok=True)
    from model_checks.report import atomic_write

    atomic_write(Path("reports/tfmot_matrix.md"), render(m))
    by = {(e.app, e.top): e for e in m.entries}
    assert by[("MobileNetV2", False)].quantize.ok and by[("MobileNetV2", False)].prune.ok
    unexplained = [e.app for e in m.entries for o in (e.quantize, e.prune) if not o.ok and not o.problems and not o.note]
    assert not unexplained
