"""Results are values: truthy when the check holds, rendered as the message a user reads."""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class CheckResult:
    """The verdict of one check on one artifact.

    `ok` False is a failure; `skipped` set means the check does not apply (with the reason).
    `details` are the lines under the headline; `figures` are numbers for reports.
    """

    check: str
    ok: bool
    headline: str
    details: tuple[str, ...] = ()
    skipped: str | None = None
    figures: dict[str, float | str | None] = field(default_factory=dict)

    def __bool__(self) -> bool:
        """True when the check holds; a skip does not hold (it did not apply), so it is never read as a pass."""
        return self.ok and self.skipped is None

    def __str__(self) -> str:
        return "\n".join((self.headline, *self.details))

    def reason(self, subject: str = "", width: int = 80) -> str:
        """The failure in a few words, for a table cell: the first problem of a list (and how many more), else
        the headline, without the `<check>: <subject>: ` that heads it."""
        text, more = self.headline, ""
        problems = [d.strip()[2:] for d in self.details if d.strip().startswith("- ")]
        if problems and text.endswith(("problem", "problems")):
            text, more = problems[0], (f" (+{len(problems) - 1} more)" if len(problems) > 1 else "")
        for prefix in (f"{self.check}: ", f"{subject}: " if subject else None):
            if prefix and text.startswith(prefix):
                text = text[len(prefix) :]
        text = " ".join(text.split())
        return (text if len(text) <= width else text[: width - 1].rstrip() + "…") + more

    @classmethod
    def skip(cls, check: str, reason: str) -> CheckResult:
        return cls(check=check, ok=True, headline=f"skipped: {reason}", skipped=reason)

    @classmethod
    def from_problems(
        cls,
        check: str,
        subject: str,
        problems: list[str],
        passed: str,
        figures: dict | None = None,
        notes: list[str] | None = None,
    ) -> CheckResult:
        """A check that collects independent problems: failing lists them all, passing says what held."""
        figures = figures or {}
        if problems:
            head = f"{check}: {subject}: {len(problems)} problem{'s' if len(problems) > 1 else ''}"
            return cls(check, False, head, tuple(f"  - {p}" for p in problems) + tuple(notes or ()), figures=figures)
        return cls(check, True, f"{check}: {subject}: {passed}", tuple(notes or ()), figures=figures)
