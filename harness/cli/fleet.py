"""``edgebench fleet run`` (the edge suite on every node of a Dask cluster) and ``edgebench upload`` (one
node's results published by hand, as a fleet node does)."""

from __future__ import annotations

import argparse
import logging
from pathlib import Path
from typing import TYPE_CHECKING

from harness.cli.options import add_field_option, add_s3_options, s3_location
from harness.cli.run import add_training_options, measurement_defaults, run_config
from harness.errors import ConfigError

if TYPE_CHECKING:  # the fleet (Dask) loads when the command runs, not when the parser is built
    from rich.console import Console

    from harness.fleet import FleetResult, NodeSpec, StagedInputs, TrainedInputs
    from harness.fleet.clusters import ClusterOptions
    from harness.store import S3Store

# ``fleet run`` options that are ClusterOptions fields of the same name (``--cluster`` is ``kind``)
CLUSTER_FIELDS = (
    "ssh_port",
    "ssh_key",
    "ssh_known_hosts",
    "remote_python",
    "queue",
    "walltime",
    "cores",
    "memory",
    "processor",
    "resource_spec",
    "account",
)


def add_fleet(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from harness.fleet import CALIBRATION_IMAGES, NodeSpec
    from harness.fleet.clusters import ClusterOptions

    fleet = commands.add_parser("fleet", help="the edge suite on every node of a Dask cluster")
    fleet_commands = fleet.add_subparsers(dest="fleet_command", required=True)
    run = fleet_commands.add_parser(
        "run",
        help="run the edge suite once per node; results under s3://BUCKET/runs/<run-id>/<node-id>/, then merge them",
    )
    add_field_option(run, ClusterOptions, "kind", "--cluster")
    add_field_option(run, ClusterOptions, "nodes")
    run.add_argument("--hosts", default="", help="ssh: SCHEDULER,NODE[,NODE...] (one node per host)")
    for name in CLUSTER_FIELDS:
        add_field_option(run, ClusterOptions, name)
    run.add_argument("--dry-run", action="store_true", help="pbs/slurm: print the job script, submit nothing")
    run.add_argument(
        "--artifact",
        help="model.tar.gz: s3://BUCKET/KEY or a local file (default: train the offline default model first)",
    )
    run.add_argument("--test-images", help="held-out {class}/{image} folder: s3://BUCKET/PREFIX or local")
    run.add_argument(
        "--calibration-images",
        metavar="DIR|s3://BUCKET/PREFIX",
        help="INT8 calibration images, {class}/{image} training images (never the held-out "
        f"ones): s3://BUCKET/PREFIX used as is, or a local folder of which at most "
        f"{CALIBRATION_IMAGES} spread over the classes are uploaded (default without "
        f"--artifact: from the training split; otherwise none, and INT8 does not run)",
    )
    run.add_argument("--run-id", help="run id (default: a new one); an existing one resumes")
    add_field_option(run, NodeSpec, "force")
    add_field_option(run, NodeSpec, "timeout_s", "--node-timeout")
    run.add_argument("--suite-dir", default=None, help="checkout with suites/ on the nodes (default: this one)")
    run.add_argument("--pytest-args", default="", help='extra pytest arguments per node, e.g. "-k latency"')
    add_training_options(run, prefix_default="")
    run.set_defaults(handler=cmd_fleet_run, **measurement_defaults())


def add_upload(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    upload = commands.add_parser(
        "upload",
        help="publish one node's pytest results to s3://BUCKET/runs/<run-id>/"
        "<node-id>/ (manifest last), as a fleet node does",
    )
    upload.add_argument("--run-id", required=True)
    upload.add_argument("--node-id", default=None, help="default: this host's name")
    upload.add_argument(
        "--benchmark", type=Path, required=True, help="pytest --benchmark-json output (with --benchmark-save-data)"
    )
    upload.add_argument("--node-report", type=Path, help="pytest --edgebench-node-report output")
    upload.add_argument("--junit", type=Path, help="pytest --junitxml output")
    upload.add_argument("--log", type=Path, help="the pytest log")
    add_s3_options(upload, prefix_default="", required=True)
    upload.set_defaults(handler=cmd_upload)


def cluster_options(args: argparse.Namespace) -> ClusterOptions:
    from harness.fleet.clusters import ClusterOptions

    return ClusterOptions(
        kind=args.cluster,
        nodes=args.nodes,
        hosts=tuple(h for h in args.hosts.split(",") if h),
        **{name: getattr(args, name) for name in CLUSTER_FIELDS},
    )


def cmd_fleet_run(args: argparse.Namespace, console: Console) -> int:
    from harness import fleet, workflow
    from harness.fleet import clusters

    logging.getLogger("distributed").setLevel(logging.WARNING)  # the scheduler runs here and logs every worker
    options = cluster_options(args)
    if args.dry_run:
        if args.cluster not in ("pbs", "slurm"):
            raise ConfigError(
                "--dry-run prints the job script of a batch scheduler: use it with --cluster pbs or slurm"
            )
        print(clusters.job_script(options))
        return 0
    if args.node_timeout <= 0:
        raise ConfigError("--node-timeout: must be a positive number of seconds")
    run_id = args.run_id or workflow.new_run_id()
    with fleet.results_store(s3_location(args)) as s3:
        given = fleet.FleetInputs(args.artifact, args.test_images, args.calibration_images)
        staged = fleet.stage_inputs(s3, run_id, given, lambda: _train_default(args, console), console.print)
        spec = _node_spec(args, run_id, s3, staged)
        console.print(f"Fleet run {run_id}: {options.kind} cluster, artifact {staged.artifact_uri}")
        result = _run_on_cluster(args, options, spec, console)
        local = fleet.download_run(s3.location, run_id, args.reports_dir / "fleet" / run_id, s3.credentials)
    return show_fleet(local, console, exit_code=1 if result.failed else 0)


def _train_default(args: argparse.Namespace, console: Console) -> TrainedInputs:
    """``edgebench train`` with the fleet run's training options, for a run without ``--artifact``."""
    from harness import fleet, workflow
    from harness.progress import RichProgress

    trained = workflow.train_only(run_config(args), RichProgress(console)).report
    return fleet.TrainedInputs(
        Path(trained["artifact_local"]), Path(trained["test_local"]), Path(trained["training_local"])
    )


def _node_spec(args: argparse.Namespace, run_id: str, s3: S3Store, staged: StagedInputs) -> NodeSpec:
    import shlex

    from harness import fleet

    return fleet.NodeSpec(
        run_id,
        "",
        staged.artifact_uri,
        s3.location,
        staged.test_uri,
        staged.calibration_uri,
        pytest_args=tuple(shlex.split(args.pytest_args)),
        timeout_s=args.node_timeout,
        force=args.force,
        credentials=s3.credentials,
        **({"suite_dir": args.suite_dir} if args.suite_dir else {}),
    )


def _run_on_cluster(args: argparse.Namespace, options: ClusterOptions, spec: NodeSpec, console: Console) -> FleetResult:
    """Start the cluster, run ``spec`` on every node, print each node's outcome as it ends."""
    import dataclasses
    import functools
    import time

    from harness import fleet
    from harness.fleet import clusters

    if options.kind in ("pbs", "slurm"):  # the jobs export what the nodes need; their output goes beside
        options = dataclasses.replace(
            options,
            environment=tuple(fleet.job_environment(spec.results, spec.credentials).items()),
            log_directory=str((args.reports_dir / "jobs" / spec.run_id).resolve()),
        )
        console.print(f"  {options.nodes} job(s); job output in {options.log_directory}")
    started = time.monotonic()
    with clusters.open_cluster(options) as client:
        console.print(
            f"  {len(client.scheduler_info()['workers'])} worker(s) connected "
            f"{time.monotonic() - started:.1f} s after the cluster started"
        )
        result = fleet.run_fleet(
            client,
            spec,
            on_update=lambda node: console.print(
                f"  node {node.node_id}: {node.status}"
                + (f" ({node.reason})" if node.reason else "")
                + (f" in {node.seconds:.0f} s" if node.seconds else ""),
                highlight=False,
            ),
            job_ended=functools.partial(clusters.job_end_reason, options.kind),
        )
    console.print(f"{len(result.nodes)} node(s) in {result.seconds:.0f} s, {len(result.failed)} failed")
    return result


def cmd_upload(args: argparse.Namespace, console: Console) -> int:
    import socket

    from harness import fleet

    files = {
        name: path
        for name, path in (
            ("benchmark.json", args.benchmark),
            ("report.json", args.node_report),
            ("junit.xml", args.junit),
            ("log.txt", args.log),
        )
        if path is not None
    }
    node_id = args.node_id or fleet.node_id_for(socket.gethostname(), "manual")
    location = s3_location(args)
    assert location is not None  # add_upload makes --bucket required
    console.print(f"Uploaded: {fleet.upload_results(location, args.run_id, node_id, files)}")
    return 0


def show_fleet(run_dir: Path, console: Console, exit_code: int = 0) -> int:
    """The merged fleet run's tables, failures and report paths; exit 1 when a node failed."""
    from harness import fleet

    merged = fleet.merge_run(run_dir)
    json_path, html_path = fleet.write_merged(merged, run_dir)
    console.print(fleet.fleet_table(merged))
    for failure in merged.failures:
        console.print(f"[red]failed node {failure['node_id']}[/red]: {failure['reason']}", highlight=False)
        if failure["log_tail"]:
            console.print("    " + "\n    ".join(failure["log_tail"].splitlines()[-5:]), markup=False, highlight=False)
    console.print(f"Merged report: {json_path}\nHTML report: {html_path}")
    return exit_code or (1 if merged.failures else 0)
