"""Runtime errors reach the user in full, their cause line first (issue 10, point 5)."""

from model_checks.core.errors import runtime_error_text

TORCHSCRIPT = (
    """The following operation failed in the TorchScript interpreter.
Traceback of TorchScript (most recent call last):
  File "code/__torch__/model.py", line 12, in forward
    _0 = self.fc
"""
    + "    padding line of the interpreter traceback\n" * 20
    + """RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x5 and 4x3)"""
)


def test_the_cause_comes_first_and_nothing_is_cut():
    # cut at 400 characters, the cause at the end of TorchScript's traceback was lost
    text = runtime_error_text(RuntimeError(TORCHSCRIPT))
    lines = text.splitlines()
    assert lines[0] == "RuntimeError: mat1 and mat2 shapes cannot be multiplied (2x5 and 4x3)"
    assert lines[1] == "    The following operation failed in the TorchScript interpreter."
    assert len(lines) == 1 + len(TORCHSCRIPT.splitlines())


def test_a_one_line_error_is_one_line():
    assert runtime_error_text(ValueError("bad feed")) == "ValueError: bad feed"
