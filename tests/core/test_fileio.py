"""Every file the package writes goes through core.fileio: an interrupted write leaves the previous file whole."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from model_checks.core.fileio import write_text

OLD = "# the previous report\n"


def test_a_failing_write_leaves_the_old_file_and_no_temporary(tmp_path: Path) -> None:
    target = tmp_path / "summary.md"
    target.write_text(OLD)
    with pytest.raises(UnicodeEncodeError):
        write_text(target, "x" * 100_000 + "\ud800")  # fails after bytes have gone to the temporary file
    assert target.read_text() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["summary.md"]


def test_an_interrupt_before_the_rename_leaves_the_old_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    target = tmp_path / "baseline.json"
    target.write_text(OLD)

    def interrupted(*_: object) -> None:
        raise KeyboardInterrupt

    monkeypatch.setattr(os, "replace", interrupted)
    with pytest.raises(KeyboardInterrupt):
        write_text(target, '{"new": true}\n')
    assert target.read_text() == OLD
    assert sorted(p.name for p in tmp_path.iterdir()) == ["baseline.json"]


def test_a_killed_writer_leaves_the_old_file(tmp_path: Path) -> None:
    """A real interruption: the writing process is SIGKILLed half-way (after writing, before the rename)."""
    target = tmp_path / "summary.md"
    target.write_text(OLD)
    script = (
        "import os, sys, time\n"
        "from pathlib import Path\n"
        "from model_checks.core.fileio import write_text\n"
        "os.fsync = lambda fd: time.sleep(60)\n"  # stop between writing the temporary file and renaming it
        "write_text(Path(sys.argv[1]), 'new report ' * 100000)\n"
    )
    proc = subprocess.Popen([sys.executable, "-c", script, str(target)])
    try:
        deadline = time.monotonic() + 30
        while not [p for p in tmp_path.iterdir() if p.name.startswith(".summary.md.") and p.stat().st_size > 0]:
            assert time.monotonic() < deadline and proc.poll() is None, "the writer never started its temporary file"
            time.sleep(0.05)
    finally:
        proc.send_signal(signal.SIGKILL)
        proc.wait(10)
    assert target.read_text() == OLD


def test_the_file_gets_the_permissions_a_plain_write_would(tmp_path: Path) -> None:
    """mkstemp makes owner-only files; a report that CI uploads or a teammate reads must not be one."""
    umask = os.umask(0o022)
    try:
        write_text(tmp_path / "nightly.md", "# report\n")
        (tmp_path / "plain.md").write_text("# report\n")
    finally:
        os.umask(umask)
    assert (tmp_path / "nightly.md").stat().st_mode & 0o777 == (tmp_path / "plain.md").stat().st_mode & 0o777 == 0o644
