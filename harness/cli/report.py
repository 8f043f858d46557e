"""``edgebench report``: the summary table and report.html of finished runs, or a merged fleet run."""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.fleet import show_fleet
from harness.cli.options import add_field_option, add_region_endpoint, bucket_location
from harness.errors import ConfigError

if TYPE_CHECKING:
    from rich.console import Console


def add_report(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from harness.workflow import RunConfig

    show = commands.add_parser("report", help="summary table and report.html for finished runs, or a merged fleet run")
    show.add_argument(
        "run_dirs",
        nargs="+",
        metavar="RUN",
        help="reports/<run-id> folders (or their report.json), e.g. one per edge node; or a fleet "
        "run: s3://BUCKET/runs/<run-id>/ or a local folder of node folders",
    )
    add_region_endpoint(show, "S3-compatible endpoint for an s3:// fleet run")
    add_field_option(show, RunConfig, "reports_dir")
    show.add_argument(
        "--html",
        type=Path,
        help="where to write the HTML report (default: RUN_DIR/report.html for "
        "one run, reports/merged/report.html for several)",
    )
    show.set_defaults(handler=cmd_report)


def cmd_report(args: argparse.Namespace, console: Console) -> int:
    from harness import fileio, html_report, report

    fleet_runs = [r for r in args.run_dirs if r.startswith("s3://") or _is_fleet_dir(Path(r))]
    if fleet_runs:
        if len(args.run_dirs) != 1:
            raise ConfigError("a fleet run is merged on its own: pass one s3://BUCKET/runs/<run-id>/ or one folder")
        return _show_fleet_run(args, fleet_runs[0], console)
    run_dirs = [Path(r) for r in args.run_dirs]
    documents = []
    for run_dir in run_dirs:
        path = run_dir / "report.json" if run_dir.is_dir() else run_dir
        if not path.is_file():
            raise ConfigError(f"{path}: no report.json here; pass a reports/<run-id> folder")
        documents.append(report.read_run_report(path))
    for document in documents:
        console.print(report.summary_table(document))
    single = run_dirs[0] if run_dirs[0].is_dir() else run_dirs[0].parent
    out = args.html or (single / "report.html" if len(documents) == 1 else Path("reports/merged/report.html"))
    if len(documents) > 1:
        fileio.write_json(out.parent / "report.json", {"schema": "edgebench.merged/1", "runs": documents})
    console.print(f"HTML report: {html_report.render_html(documents, out)}")
    return 0


def _show_fleet_run(args: argparse.Namespace, given: str, console: Console) -> int:
    """A fleet run folder as it is, or one downloaded from s3://BUCKET/[PREFIX/]runs/<run-id>/ first."""
    from harness import fleet

    if not given.startswith("s3://"):
        return show_fleet(Path(given), console)
    bucket, prefix, run_id = fleet.parse_run_uri(given)
    location = bucket_location(args, bucket, prefix)
    return show_fleet(fleet.download_run(location, run_id, args.reports_dir / "fleet" / run_id), console)


def _is_fleet_dir(path: Path) -> bool:
    return (
        path.is_dir()
        and not (path / "report.json").is_file()
        and any(
            (child / "manifest.json").is_file() or (child / "failure.json").is_file()
            for child in path.iterdir()
            if child.is_dir()
        )
    )
