"""A name an artifact chose cannot start a line of the report: a model's output named "y\\n<path>::test PASSED"
was quoted into a failure whose lines were each made printable after the message was split at its line breaks, so
the name's own break printed the rest at the left margin, as pytest's own lines are. Now a line break is the gate's
only where its layout indents the next line; any other shows as its escape (safety.text.terminal_lines)."""

from __future__ import annotations

import pytest
from onnx import TensorProto, helper

from fixtures import bad_artifacts
from fixtures.gate_run import run_gate
from model_checks.safety.text import terminal_lines

FORGED = "other/metadata.yaml::test_equivalence[other@1.0] PASSED"


def test_only_the_gates_indented_lines_break_a_message() -> None:
    text = "metadata: a@1.0: 1 problem\n  - outputs: declared y but the model's outputs are y\n" + FORGED + "\n  - next"
    assert terminal_lines(text).split("\n") == [
        "metadata: a@1.0: 1 problem",
        "  - outputs: declared y but the model's outputs are y\\n" + FORGED,
        "  - next",
    ]
    assert terminal_lines("a\n\n  b\x1b[31m\r") == "a\n\n  b\\x1b[31m\\r"  # blank lines kept; escapes shown


def test_an_output_name_with_a_line_break_forges_no_line_of_the_report(pytester: pytest.Pytester) -> None:
    root = pytester.path / "artifacts"
    name = "y\n" + FORGED
    graph = helper.make_graph(
        [helper.make_node("Identity", ["x"], [name])],
        "g",
        [helper.make_tensor_value_info("x", TensorProto.FLOAT, [1, 4])],
        [helper.make_tensor_value_info(name, TensorProto.FLOAT, [1, 4])],
    )
    model = helper.make_model(graph, opset_imports=[helper.make_opsetid("", 13)])
    model.ir_version = 8
    bad_artifacts.model(root / "n", model, outputs=[{"name": "y", "dtype": "float32", "shape": [1, 4]}])
    run = run_gate(pytester, root)
    message = run.message("metadata", "n@1.0")
    assert "are y\\n" + FORGED in message, message
    assert not [line for line in message.split("\n") if line.startswith(FORGED)]
