"""What localisation found, as a value: rows in topological order, the hint, what was not comparable,
and for quantized artifacts the worst tensors by SQNR. It renders itself for a failure message and as JSON."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

from model_checks.safety.text import printable

MAX_ROWS = 12
WORST_SQNR = 5


@dataclass(frozen=True)
class Row:
    tensor: str
    reference: str
    node: str
    op: str
    rel_l2: float
    introduced: float  # rel_l2 here minus the worst rel_l2 of the tensors it is computed from
    note: str = ""


@dataclass(frozen=True)
class Sqnr:
    tensor: str
    kind: str  # "activation" or "weight"
    db: float
    node: str = ""  # the node that produced an activation: what `quantize --exclude` takes


@dataclass(frozen=True)
class Localization:
    case: str
    rows: tuple[Row, ...]
    skipped: tuple[tuple[str, str], ...]  # (tensor, why it is not comparable)
    absent: int  # computed tensors of the artifact with no counterpart in the reference
    unmeasured: int = 0  # pairs the time cap left
    limit: float | None = None  # the rel_l2 tolerance an introduced error is held against
    limit_source: str = ""
    sqnr: tuple[Sqnr, ...] = ()
    caps: dict = field(default_factory=dict)
    seconds: float = 0.0
    optimizations: str = "off"  # "off" on both sides, or "on" as the failing check ran them
    final: dict = field(default_factory=dict)  # {"output", "on", "off"}: that output's rel_l2 with and without them
    fused: tuple[str, ...] = ()  # nodes onnxruntime fused, where the error appears only with optimizations on
    stopped: str = ""  # "matching" or "time" (the time cap), "first" (at the first node over the limit)

    @property
    def hint(self) -> Row | None:
        """The first node whose introduced error crosses the limit; without a limit, the largest introduced."""
        if not self.rows:
            return None
        if self.limit is not None:
            return next((r for r in self.rows if r.introduced > self.limit), None)
        return max(self.rows, key=lambda r: r.introduced)

    def shown(self) -> list[Row]:
        """At most MAX_ROWS rows, in order: the hint, the largest introduced errors and the last row."""
        if len(self.rows) <= MAX_ROWS:
            return list(self.rows)
        keep = {id(r) for r in sorted(self.rows, key=lambda r: -r.introduced)[: MAX_ROWS - 2] if r.introduced > 0}
        keep |= {id(self.rows[-1])} | ({id(self.hint)} if self.hint else set())
        return [r for r in self.rows if id(r) in keep]

    def render(self, indent: str = "  ") -> list[str]:
        """The table as a user reads it; every name from the models escaped (`printable`): a node name can
        neither colour the terminal nor start a line of its own."""
        where = (
            "runtime graph optimizations off on both sides"
            if self.optimizations == "off"
            else "runtime graph optimizations on, as the check ran them"
        )
        lines = [
            f"{indent}localisation (case: {printable(self.case)}; {where}): {len(self.rows)} tensor(s) compared, "
            f"{len(self.skipped)} not comparable, {self.absent} without a counterpart in the reference "
            f"({self.seconds:.2f} s)"
        ]
        add = lines.append
        final, source, full = self.final, printable(self.limit_source), "model-checks localize ARTIFACT_DIR"
        tolerance = f"the tolerance rel_l2 <= {self.limit:g} ({source})" if self.limit is not None else ""
        if self.optimizations == "on" and self.limit is not None:
            add(
                f"{indent}  the divergence appears only with runtime graph optimizations on: output "
                f"'{printable(final['output'])}' rel_l2 {final['on']:.3g} with them (as the check ran), "
                f"{final['off']:.3g} with them off, against {tolerance}: onnxruntime's rewritten kernels compute "
                f"differently"
            )
            if self.fused:
                more = f"; and {len(self.fused) - 3} more" if len(self.fused) > 3 else ""
                add(
                    f"{indent}  fused nodes: {printable('; '.join(self.fused[:3]))}{more}: look there first; with "
                    f"graph_optimization_level ORT_DISABLE_ALL at deployment the artifact stays within the tolerance"
                )
        if self.stopped == "matching":
            add(f"{indent}  stopped at the time cap of {self._cap()} while matching the two graphs: nothing measured")
            return lines
        if not self.rows:
            add(
                f"{indent}  no tensor of the artifact stands for one of the reference: are both derived from the same "
                f"source?"
            )
        shown = self.shown()
        if shown:
            cells = [(printable(r.tensor), printable(f"{r.node} ({r.op})"), r) for r in shown]
            w = min(max(len(t) for t, _, _ in cells), 48)
            wn = min(max(len(n) for _, n, _ in cells), 48)
            add(f"{indent}    {'tensor':<{w}}  {'node (op)':<{wn}}  {'rel_l2':>10}  {'introduced':>10}")
            for t, n, r in cells:
                mark = "   <-- first over the limit" if r is self.hint and self.limit is not None else ""
                note = f"   ({printable(r.note)})" if r.note else ""
                add(
                    f"{indent}    {_cut(t, w):<{w}}  {_cut(n, wn):<{wn}}  {r.rel_l2:>10.3g}  {r.introduced:>+10.3g}"
                    f"{mark}{note}"
                )
            if len(shown) < len(self.rows):
                add(f"{indent}    ({len(self.rows) - len(shown)} more row(s): {full})")
        if self.stopped == "time":
            add(
                f"{indent}  stopped at the time cap of {self._cap()}: {self.unmeasured} tensor(s) not measured "
                f"(the full table: {full} --time-cap S)"
            )
        elif self.stopped == "first":
            add(
                f"{indent}  stopped at the first node over the tolerance: {self.unmeasured} later tensor(s) not "
                f"measured (the full table: {full})"
            )
        hint = self.hint
        # the run's own final error where it measured the output, else the figure it chose the configuration by
        last = next(
            (r.rel_l2 for r in self.rows if r.tensor == final.get("output")),
            final.get("on" if self.optimizations == "on" else "off"),
        )
        if hint is not None and self.limit is not None:
            add(
                f"{indent}  hint: node '{printable(hint.node)}' ({printable(hint.op)}) raises rel_l2 by "
                f"{hint.introduced:.3g} over its inputs, above {tolerance}: look there first"
            )
        elif hint is not None and self.rows:
            what = f"above {tolerance}" if self.limit is not None else "the largest rise"
            add(
                f"{indent}  hint: no node crosses a rel_l2 limit on its own; node '{printable(hint.node)}' "
                f"({printable(hint.op)}) adds {hint.introduced:.3g}, {what}"
            )
        elif self.rows and self.limit is not None and self.stopped:
            pass  # a stopped table proves nothing about the tensors it did not reach
        elif self.rows and self.limit is not None and last is not None and last <= self.limit:
            add(
                f"{indent}  hint: this run's final rel_l2 {last:.3g} (output '{printable(final['output'])}') is "
                f"within {tolerance}: it does not reproduce the failure as rel_l2; the failing metric is in the "
                f"lines above"
            )
        elif self.rows and self.limit is not None:
            add(
                f"{indent}  hint: no single node raises rel_l2 by more than {self.limit:g} ({source}): the error "
                f"accumulates"
            )
        if self.skipped:
            first = "; ".join(f"{printable(t)}: {printable(why)}" for t, why in self.skipped[:3])
            more = f"; and {len(self.skipped) - 3} more" if len(self.skipped) > 3 else ""
            add(f"{indent}  not comparable: {first}{more}")
        if self.sqnr:
            add(
                f"{indent}  SQNR, {min(WORST_SQNR, len(self.sqnr))} worst tensor(s) (lower is worse): "
                f"{self.sqnr_summary()}; to keep a node in float: model-checks quantize ... --exclude NODE"
            )
        return lines

    def _cap(self) -> str:
        basis = self.caps.get("basis")
        return f"{self.caps.get('time_s'):g} s" + (f" ({basis})" if basis else "")

    def sqnr_summary(self) -> str:
        return ", ".join(
            printable(f"{s.tensor} ({s.kind}{', node ' + s.node if s.node else ''})") + f" {s.db:.1f} dB"
            for s in self.sqnr[:WORST_SQNR]
        )

    def __str__(self) -> str:
        return "\n".join(self.render(""))

    def to_json(self) -> dict:
        d = asdict(self)
        hint = self.hint
        d["hint"] = asdict(hint) if hint is not None else None
        return d


def _cut(text: str, width: int) -> str:
    return text if len(text) <= width else "..." + text[-(width - 3) :]
