"""A worker's answer to a function the gate runs there (`pool.run_isolated`, `run_confined`) is held to the return type
that function declares: a taken-over worker's data in another arrangement is refused, not met by the check that asked
as an internal error of its own."""

from __future__ import annotations

import ast
import importlib
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from fixtures import crashing, onnx_models
from model_checks.backends.onnx import int8
from model_checks.core.errors import AnswerRefusedError
from model_checks.core.pool import ModelPool
from model_checks.isolation.limits import Limits
from model_checks.isolation.returns import MAX_DEPTH, declared, mismatch
from model_checks.localize.locate import localize
from model_checks.localize.report import Localization, Row, Sqnr

PACKAGE = Path(importlib.import_module("model_checks").__file__).parent
SENT = {"run_isolated": 2, "run_confined": 1}  # the position of the function among each one's arguments


def _row(**change: Any) -> Row:
    return Row(
        **{"tensor": "t", "reference": "r", "node": "n", "op": "Conv", "rel_l2": 0.1, "introduced": 0.1, "note": ""}
        | change
    )


def _table(**change: Any) -> Localization:
    fields = {
        "case": "c", "rows": (_row(),), "skipped": (), "absent": 0, "unmeasured": 0, "limit": None, "limit_source": "",
        "sqnr": (Sqnr("t", "weight", 30.0, "n"),), "caps": {}, "seconds": 0.5, "optimizations": "", "final": {},
        "fused": (), "stopped": "",
    }  # fmt: skip
    return Localization(**fields | change)


@pytest.mark.parametrize(
    "value, why",
    [
        (_table(), None),
        (_table(limit=1e-3, sqnr=()), None),
        ([_table()], "localize() is a list, not Localization"),
        (_table(rows=(_row(rel_l2="0.1"),)), "localize().rows[0].rel_l2 is a str, not float"),
        (_table(rows=[_row()]), "localize().rows is a list, not tuple[Row, ...]"),
        (_table(rows=("a row",)), "localize().rows[0] is a str, not Row"),
        (_table(skipped=(("a", "b", "c"),)), "localize().skipped[0] has 3 items, not 2"),
        (_table(limit="1e-3"), "localize().limit is a str, not float or None"),
        (_table(absent=True), "localize().absent is a bool, not int"),
    ],
)
def test_a_report_is_held_to_its_dataclass_field_by_field(value: object, why: str | None) -> None:
    assert mismatch(value, declared(localize), "localize()") == why


@pytest.mark.parametrize(
    "value, hint, why",
    [
        ({"y": np.ones(2)}, dict[str, np.ndarray], None),
        ({"y": [1.0]}, dict[str, np.ndarray], "it['y'] is a list, not ndarray"),
        ({3: np.ones(2)}, dict[str, np.ndarray], "it's key 3 is an int, not str"),
        ([{"y": np.ones(1)}], list[dict[str, np.ndarray]] | str, None),
        ("no converter for Loop", list[dict[str, np.ndarray]] | str, None),
        ([{"y": 3}], list[dict[str, np.ndarray]] | str, "it[0]['y'] is an int, not ndarray"),
        (3, list[dict] | str, "it is an int, not list[dict] or str"),
        ({"ok": {"y": {"rel_l2": np.float32(0.1)}}}, dict[str, dict[str, dict[str, float]]], None),
        ([0.1, np.float64(2), 3], list[float], None),
        ([True, np.bool_(False)], list[bool], None),  # numpy's bool, from `x > 0` on an array's item: a bool
        ([True, 1], list[bool], "it[1] is an int, not bool"),
        (("cpu", [{"y": np.ones(1)}]), tuple[str, list[dict]], None),
        (("cpu", [{"y": np.ones(1)}], "more"), tuple[str, list[dict]], "it has 3 items, not 2"),
    ],
)
def test_containers_are_held_to_their_items(value: object, hint: Any, why: str | None) -> None:
    assert mismatch(value, hint) == why


def test_a_value_nested_past_any_answer_of_ours_is_refused_not_recursed_into() -> None:
    deep: Any = "leaf"
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    hint: Any = str
    for _ in range(MAX_DEPTH + 5):
        hint = list[hint]
    assert mismatch(deep, hint) == f"it{'[0]' * (MAX_DEPTH + 1)} is nested deeper than {MAX_DEPTH} levels"
    itself: list = []
    itself.append(itself)  # a pickle can build it; only the declared type is followed, so this ends
    assert mismatch(itself, list[list[list[int]]]) == "it[0][0][0] is a list, not int"


def test_a_taken_over_workers_answer_to_a_function_of_ours_in_another_arrangement_is_refused(tmp_path: Path) -> None:
    """The worker answers int8.run_with_config (outputs by name) with lists: refused before the check sees it, the
    worker killed and the model not asked again for it; another model goes on in a fresh worker."""
    pool = ModelPool(isolation=Limits(memory_mb=2048, timeout_s=60))
    try:
        path = onnx_models.save(onnx_models.linear(), tmp_path / "m.onnx")
        feeds = {"input": np.ones((2, 4), np.float32)}
        assert pool.run_isolated("onnx", path, int8.run_with_config, path, feeds, {})["logits"].shape == (2, 3)
        pool.workers.call("onnx", crashing.answer_calls_with, {"logits": [[0.0, 0.0, 0.0]] * 2})
        with pytest.raises(AnswerRefusedError) as info:
            pool.run_isolated("onnx", path, int8.run_with_config, path, feeds, {})
        assert str(info.value) == (
            "m.onnx: the onnx worker's answer to call was refused: it is not what run_with_config returns: "
            "run_with_config()['logits'] is a list, not ndarray. A worker answers with data only; this one may have "
            "been taken over by the model through its runtime. The worker was killed; the session goes on with a "
            "fresh one"
        )
        with pytest.raises(AnswerRefusedError, match=r"\[not retried: this model already did this earlier"):
            pool.run_isolated("onnx", path, int8.run_with_config, path, feeds, {})
        other = onnx_models.save(onnx_models.linear(), tmp_path / "other.onnx")
        assert pool.run_isolated("onnx", other, int8.run_with_config, other, feeds, {})["logits"].shape == (2, 3)
    finally:
        pool.close()


def _sent_functions() -> dict[str, object]:
    """Every function the package hands to run_isolated or run_confined, found in its source and imported."""
    found: dict[str, object] = {}
    for source in sorted(PACKAGE.rglob("*.py")):
        tree = ast.parse(source.read_text())
        module = ".".join(source.relative_to(PACKAGE.parent).with_suffix("").parts)
        imports = {
            a.asname or a.name: (n.module, a.name)
            for n in ast.walk(tree)
            if isinstance(n, ast.ImportFrom) and n.module
            for a in n.names
        }
        for call in ast.walk(tree):
            if not (isinstance(call, ast.Call) and isinstance(call.func, ast.Attribute) and call.func.attr in SENT):
                continue
            arg = call.args[SENT[call.func.attr]]
            name, attr = (arg.value.id, arg.attr) if isinstance(arg, ast.Attribute) else (arg.id, None)  # type: ignore[attr-defined]
            if name in imports:
                origin, member = imports[name]
                try:
                    obj = getattr(importlib.import_module(origin), member)
                except AttributeError:
                    obj = importlib.import_module(f"{origin}.{member}")
            else:
                obj = getattr(importlib.import_module(module), name)
            found[f"{module}: {ast.unparse(arg)}"] = getattr(obj, attr) if attr else obj
    return found


def test_every_function_the_gate_runs_in_a_worker_declares_what_it_returns() -> None:
    """Else its answer could not be held to anything: `returns_of` treats a function without a return type (a test's
    helper) as answering anything."""
    sent = _sent_functions()
    assert len(sent) >= 12, sorted(sent)  # the scan finds them: tfmot, localisation, int8, roundtrip, canary, ...
    undeclared = {where: declared(fn) for where, fn in sent.items() if declared(fn) in (Any, object)}
    assert not undeclared, f"declare a return type for {sorted(undeclared)}"
