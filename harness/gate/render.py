"""The gate's terminal output: the table of comparisons and the summary lines under it."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text

from harness.gate.verdicts import Comparison, GateResult, Verdict, percent

_STYLES = {
    Verdict.REGRESSION: "bold red",
    Verdict.IMPROVEMENT: "green",
    Verdict.INSUFFICIENT: "yellow",
    Verdict.INCONCLUSIVE: "yellow",
    Verdict.ADDED: "cyan",
    Verdict.REMOVED: "cyan",
}


def render_summary(result: GateResult) -> Text:
    """:meth:`GateResult.summary` for the terminal, failing lines in red; print it with ``soft_wrap=True`` to keep
    each line whole in CI logs."""
    text = Text()
    for line in result.summary():
        text.append(line + "\n", style="bold red" if line.startswith(("FAIL", "gate: FAIL")) else "")
    text.rstrip()
    return text


def render(result: GateResult) -> Table:
    options = result.options
    table = Table(
        title="edgebench gate: NEW vs BASE",
        caption=f"BASE {result.base_cpu or '?'} | NEW {result.new_cpu or '?'} | regression: {result.test} "
        f"p < {options.alpha:g} and the {options.confidence:.0%} CI of the median ratio above "
        "1 + min effect; ok: CI at most 1 + min effect; inconclusive: in between",
    )
    table.add_column("benchmark", overflow="fold", ratio=1)
    for column in (
        "base median",
        "new median",
        "judged on",
        f"ratio [{options.confidence:.0%} CI]",
        "p",
        "min effect",
        f"detectable ({options.power:.0%} power)",
        "verdict",
    ):
        table.add_column(column, justify="right")
    for c in result.comparisons:  # Text, not markup: pytest ids hold brackets ("test_x[openvino]")
        table.add_row(
            Text(c.name.rsplit("::", 1)[-1]),
            _duration(c.base_median, c.n_base),
            _duration(c.new_median, c.n_new),
            c.mode if c.ratio is not None else "–",
            _ratio(c),
            "–" if c.p_value is None else f"{c.p_value:.2g}",
            f"{c.threshold:.0%}",
            percent(c.mde),
            Text(_verdict_text(c), style=_STYLES.get(c.verdict, "")),
        )
    return table


def _verdict_text(c: Comparison) -> str:
    """The outcome, with the finer verdict where it adds something: "ok (no change)", "regression"."""
    detail = str(c.verdict)
    return detail if c.outcome in (detail, "-") else f"{c.outcome} ({detail})"


def _duration(seconds: float | None, n: int) -> str:
    if seconds is None:
        return "–"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit} (n={n})"
    return f"{seconds / 1e-9:.3g} ns (n={n})"


def _ratio(c: Comparison) -> str:
    if c.ratio is None or c.ci is None:
        return "–"
    return f"{c.ratio:.3f} [{c.ci[0]:.3f}, {c.ci[1]:.3f}]"
