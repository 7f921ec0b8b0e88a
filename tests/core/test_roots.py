"""core/roots.python_files: the files pytest would import under a root, matched as fnmatch matches them."""

from __future__ import annotations

import fnmatch
from pathlib import Path

import pytest

from model_checks.core.roots import python_files

NAMES = ["conftest.py", "test_a.py", "a_test.py", "x.py", "check_me.py", "abc.py", "aXc.py", "test_.pyc", "Conftest.py"]


@pytest.mark.parametrize(
    "patterns", [["test_*.py", "*_test.py"], ["check*.py"], [], ["*.py"], ["[tc]*.py", "a?c.py", "*[!x].py"]]
)
def test_python_files_are_what_fnmatch_matches(tmp_path: Path, patterns: list[str]) -> None:
    (tmp_path / "art" / ".hidden").mkdir(parents=True)
    for name in NAMES:
        (tmp_path / "art" / name).write_text("")
        (tmp_path / "art" / ".hidden" / name).write_text("")  # hidden folders are not walked
    expected = [
        tmp_path / "art" / n for n in sorted(NAMES) if any(fnmatch.fnmatch(n, p) for p in ["conftest.py", *patterns])
    ]
    assert python_files(tmp_path, patterns) == expected
