"""The gate step's commands: ``edgebench gate`` (stored results), ``ab`` (same-job A/B) and ``history``."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.options import add_field_option, add_region_endpoint, float_option, parse_assignment
from harness.errors import ConfigError

if TYPE_CHECKING:  # the gate (scipy) loads when the command runs, not when the parser is built
    from rich.console import Console

    from harness.numeric import FloatArray


def add_gate(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from harness.gate import FAIL_ON_CHOICES, GateOptions, format_fail_on

    gate = commands.add_parser("gate", help="latency regression gate: exit 0 ok, 1 regression, 2 unusable input")
    gate.add_argument("base", help="baseline: pytest-benchmark JSON (--benchmark-save-data) or a run dir")
    gate.add_argument("new", help="candidate, same kinds as BASE")
    add_field_option(gate, GateOptions, "threshold")
    gate.add_argument(
        "--threshold-for",
        action="append",
        default=[],
        metavar="NAME=T",
        help="per-benchmark minimum effect (NAME may use * and ?), repeatable",
    )
    add_field_option(gate, GateOptions, "alpha")
    add_field_option(gate, GateOptions, "allow_different_machines")
    fail_on = format_fail_on(GateOptions.fail_on)
    gate.add_argument(
        "--fail-on",
        default=fail_on,
        metavar="VERDICTS",
        help=f"also exit 1 on these verdicts, comma-separated: {', '.join(FAIL_ON_CHOICES)} (default: "
        f"{fail_on or 'none'}; a regression always fails)",
    )
    add_field_option(gate, GateOptions, "power")
    add_field_option(gate, GateOptions, "compensate", "--no-compensation", dest="compensate")
    gate.add_argument(
        "--rerun-inconclusive",
        type=int,
        default=0,
        metavar="N",
        help="when a benchmark is inconclusive, run --rerun-command (it must rewrite NEW) and judge "
        "again on the pooled samples, up to N times (default 0)",
    )
    gate.add_argument(
        "--rerun-command",
        metavar="CMD",
        help="the benchmark command that rewrites NEW, e.g. 'pytest -m edge --benchmark-save-data "
        "--benchmark-json=new.json' (split like a shell line, run without a shell)",
    )
    gate.set_defaults(handler=cmd_gate)


def add_ab(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from harness.gate import GateOptions
    from harness.gate.ab import INTERLEAVED_THRESHOLD, ABPlan
    from harness.gate.ab import Arm as ABArm

    ab = commands.add_parser(
        "ab",
        help="same-job A/B gate: BASE and NEW artifacts (or checkouts) measured "
        "interleaved in this job; exit 0 ok, 1 regression, 2 unusable input",
    )
    ab.add_argument("base", type=Path, help="baseline model.tar.gz")
    ab.add_argument(
        "new",
        type=Path,
        nargs="?",
        help="candidate model.tar.gz (default: BASE again, e.g. with --new-checkout or --inject-slowdown)",
    )
    ab.add_argument("--base-checkout", type=Path, help="edgebench checkout whose harness runs BASE (default: this)")
    ab.add_argument("--new-checkout", type=Path, help="edgebench checkout whose harness runs NEW (default: this)")
    for name in ("backend", "device", "precision"):
        add_field_option(ab, ABPlan, name)
    ab.add_argument("--batch", type=int, default=1, help="images per infer call (default 1)")
    ab.add_argument("--image", type=Path, help="input image (default: one generated weather image)")
    add_field_option(ab, ABPlan, "seconds")
    add_field_option(ab, ABPlan, "block")
    ab.add_argument(
        "--threshold",
        type=float,
        default=INTERLEAVED_THRESHOLD,
        help=f"minimum slowdown that counts (default {INTERLEAVED_THRESHOLD})",
    )
    add_field_option(ab, GateOptions, "alpha")
    add_field_option(ab, ABArm, "slowdown", "--inject-slowdown", dest="inject_slowdown", metavar="F")
    ab.add_argument("--json", type=Path, help="also write the verdict and raw samples here")
    ab.add_argument(
        "--rerun-inconclusive",
        type=int,
        default=0,
        metavar="N",
        help="when inconclusive, measure another --seconds and judge all turns again, up to N times",
    )
    ab.set_defaults(handler=cmd_ab)


def add_history(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from harness.gate.history_trend import HistoryOptions

    history = commands.add_parser(
        "history",
        help="every stored result (run reports, pytest-benchmark JSON, fleet "
        "runs) per machine key: change points, creep, HTML trend pages",
    )
    history.add_argument(
        "sources",
        nargs="+",
        metavar="DIR|s3://BUCKET/PREFIX",
        help="folders or files of stored results (reports/, .benchmarks/, a fleet run), or S3",
    )
    history.add_argument(
        "--out",
        type=Path,
        default=Path("reports/history"),
        help="where the trend pages and history.json go (default reports/history)",
    )
    add_field_option(history, HistoryOptions, "metric", choices=("auto", "raw", "compensated"))
    add_field_option(history, HistoryOptions, "threshold")
    add_field_option(history, HistoryOptions, "max_pvalue")
    history.add_argument(
        "--fail-on-regression",
        action="store_true",
        help="exit 1 when a series' latest change point is a regression or it creeps upward",
    )
    add_region_endpoint(history, "S3-compatible endpoint for s3:// sources")
    history.set_defaults(handler=cmd_history)


def cmd_gate(args: argparse.Namespace, console: Console) -> int:
    from harness import gate

    try:  # a bad option is unusable input (exit 2), not a regression (exit 1)
        base, new = _local_result(args.base), _local_result(args.new)
        thresholds = {
            name: float_option("--threshold-for", name, value)
            for name, value in (
                parse_assignment(item, "--threshold-for", "'latency*=0.1'") for item in args.threshold_for
            )
        }
        options = gate.GateOptions(
            threshold=args.threshold,
            thresholds=thresholds,
            alpha=args.alpha,
            allow_different_machines=args.allow_different_machines,
            fail_on=args.fail_on,
            power=args.power,
            compensate=args.compensate,
        )
        rerun = _rerun_command(args.rerun_inconclusive, args.rerun_command)
    except ConfigError as exc:
        outcome = gate.GateOutcome(gate.EXIT_UNUSABLE, error=str(exc))
    else:
        outcome = gate.run_gate(
            base,
            new,
            options,
            args.rerun_inconclusive,
            rerun,
            lambda line: print(f"edgebench gate: {line}", file=sys.stderr),
        )
    if outcome.error or outcome.result is None:  # run_gate gives a result or an error
        print(f"edgebench: error: {outcome.error}", file=sys.stderr)
    else:
        console.print(gate.render(outcome.result))
        console.print(gate.render_summary(outcome.result), soft_wrap=True)
    return outcome.exit_code


def _local_result(given: str) -> Path:
    if given.startswith("s3://"):
        raise ConfigError(
            f"{given}: the gate reads local files; download it first (aws s3 cp {given} .) and pass "
            "the file or run folder"
        )
    return Path(given)


def _rerun_command(reruns: int, command: str | None) -> Callable[[int], None] | None:
    """The re-measurement for ``--rerun-inconclusive``: runs ``command`` (no shell), one-line error if it fails."""
    import shlex
    import subprocess

    _check_reruns(reruns)
    if reruns == 0:
        return None
    if not command or not shlex.split(command):
        raise ConfigError("--rerun-inconclusive needs --rerun-command: the benchmark command that rewrites NEW")
    argv = shlex.split(command)

    def rerun(attempt: int) -> None:
        try:
            completed = subprocess.run(argv, check=False)
        except OSError as exc:
            raise ConfigError(f"--rerun-command {argv[0]!r}: cannot run it ({exc.strerror})") from None
        if completed.returncode != 0:
            raise ConfigError(
                f"--rerun-command exited with {completed.returncode} on re-measurement {attempt}: {command}"
            )

    return rerun


def _check_reruns(reruns: int) -> None:
    if reruns < 0:
        raise ConfigError(f"--rerun-inconclusive {reruns}: give a count >= 0")


def cmd_ab(args: argparse.Namespace, console: Console) -> int:
    from harness import fileio, gate
    from harness.backends import check_request
    from harness.gate import ab, drift

    check_request([args.backend], args.precision.upper())
    if args.batch < 1:
        raise ConfigError("--batch: must be at least 1")
    batch = _ab_batch(args.image, args.batch)
    _check_reruns(args.rerun_inconclusive)
    plan = ab.ABPlan(
        args.backend, args.device, args.precision.upper(), args.seconds, args.block, references=(drift.REFERENCE,)
    )
    base = ab.Arm("BASE", args.base, args.base_checkout)
    new = ab.Arm("NEW", args.new or args.base, args.new_checkout, args.inject_slowdown)
    options = gate.GateOptions(threshold=args.threshold, alpha=args.alpha)
    try:
        result, session = ab.run_ab(base, new, plan, batch, options, reruns=args.rerun_inconclusive)
    except ConfigError as exc:
        print(f"edgebench: error: {exc}", file=sys.stderr)
        return gate.EXIT_UNUSABLE
    console.print(gate.render(result))
    console.print(f"{session.turns} turns of {args.block} calls per arm, {session.seconds:.1f} s of measurement")
    if args.json:
        fileio.write_json(
            args.json,
            {**result.to_json(), "seconds": session.seconds, "turns": session.turns, "blocks_s": session.blocks},
        )
    return result.exit_code


def _ab_batch(image: Path | None, size: int) -> FloatArray:
    """``size`` copies of the image (default: one generated weather image), preprocessed."""
    import numpy as np

    from harness import data

    tensor = data.load_image(image) if image else data.to_tensor(data.generated_image("sunny", seed=0))
    return np.repeat(tensor[None], size, axis=0)


def cmd_history(args: argparse.Namespace, console: Console) -> int:
    from harness.gate import history
    from harness.gate.history_trend import HistoryOptions

    options = HistoryOptions(metric=args.metric, threshold=args.threshold, max_pvalue=args.max_pvalue)
    result = history.run_history(args.sources, args.out, options, args.endpoint_url, args.region)
    for table in history.render_tables(result.analyses):
        console.print(table)
    for line in history.skipped_lines(result.skipped):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(f"Trend pages: {result.index}")
    return 1 if args.fail_on_regression and result.regressions else 0
