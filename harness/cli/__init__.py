"""``edgebench run | train | predict | gate | ab | report``: each subcommand is a thin call into the harness.

Errors a user can act on (``EdgebenchError``) print as one line and exit 1; nothing else is caught.

One module per group of subcommands, each with ``add_<command>(subparsers)`` and its handler: ``run``
(run, train), ``predict``, ``gate`` (gate, ab, history), ``fleet`` (fleet run, upload), ``report``;
``options`` holds what they share (defaults and help read from the dataclass fields, the S3 options).
"""

from __future__ import annotations

import argparse
import logging
import os
import sys

from harness.errors import EdgebenchError

INTERRUPTED = "edgebench: interrupted"


def main(argv: list[str] | None = None) -> int:
    code = _main(argv)
    if argv is None:  # the program itself ends here: TensorFlow's and OpenVINO's teardown takes seconds, and Python
        sys.stdout.flush()  # no longer handles Ctrl-C in its last phase (no line, no exit 130)
        sys.stderr.flush()
        os._exit(code)
    return code


def _main(argv: list[str] | None) -> int:
    interrupted = False
    try:  # Ctrl-C while the parser's imports load is an interruption too: one line, exit 130
        args = build_parser().parse_args(argv)
        # Root stays at WARNING even with -v: botocore's DEBUG log carries request headers (access key id, token).
        logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
        if args.verbose:
            logging.getLogger("harness").setLevel(logging.DEBUG)
        os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")  # before TensorFlow is imported: keep C++ INFO off
        # No usage telemetry from an offline tool: OpenVINO's converter and NNCF then use their own stubs. Each
        # event otherwise forks a child that posts to Google Analytics (up to 3 s when offline) and prints a
        # traceback when Ctrl-C reaches it.
        sys.modules.setdefault("openvino_telemetry", None)  # type: ignore[arg-type]
        from rich.console import Console

        # Piped output (CI logs, tee) would otherwise wrap the summary table at 80 columns.
        console = Console() if sys.stdout.isatty() else Console(width=120)
        code: int = args.handler(args, console)  # the subcommand's cmd_* function
        return code
    except EdgebenchError as exc:
        print(f"edgebench: error: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print(INTERRUPTED, file=sys.stderr)
        interrupted = True
        return 130
    finally:
        if argv is None:  # the program itself, not a caller in-process: its exit may take a while (TF, OpenVINO)
            _exit_at_interrupt(printed=interrupted)


def _exit_at_interrupt(printed: bool) -> None:
    """From here on, Ctrl-C exits 130 at once with the one line (unless printed already) instead of a traceback
    from an exit handler. A SIGINT the shell ignores (a background job) stays ignored."""
    import signal

    def handler(signum: int, frame: object) -> None:
        try:
            sys.stdout.flush()  # what the command printed (the summary table) is kept
            if not printed:
                print(INTERRUPTED, file=sys.stderr, flush=True)
        finally:
            os._exit(130)

    if signal.getsignal(signal.SIGINT) is not signal.SIG_IGN:
        signal.signal(signal.SIGINT, handler)


def build_parser() -> argparse.ArgumentParser:
    from harness.cli import fleet, gate, predict, report, run

    parser = argparse.ArgumentParser(prog="edgebench", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)
    for add in (
        run.add_run,
        run.add_train,
        predict.add_predict,
        gate.add_gate,
        gate.add_ab,
        fleet.add_fleet,
        fleet.add_upload,
        report.add_report,
        gate.add_history,
    ):
        add(commands)
    return parser
