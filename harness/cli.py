"""``edgebench run | train | predict | gate | ab | report``: each subcommand is a thin call into the harness.

Errors a user can act on (``EdgebenchError``) print as one line and exit 1; nothing else is caught.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
from pathlib import Path

from harness.errors import ConfigError, EdgebenchError


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
        return args.handler(args, console)
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


INTERRUPTED = "edgebench: interrupted"


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
    from harness.gate.ab import INTERLEAVED_THRESHOLD

    parser = argparse.ArgumentParser(prog="edgebench", description=__doc__.splitlines()[0])
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    commands = parser.add_subparsers(dest="command", required=True)

    from harness.measure import TimingPlan
    from harness.workflow import RunConfig

    run = commands.add_parser("run", help="the whole workflow end to end (offline by default); exit 0 ok, 1 error "
                                          "(e.g. a candidate without a parity verdict), 3 parity out of bounds")
    _add_training_options(run)
    run.add_argument("--backend", action="append", dest="backends", metavar="NAME",
                     help=f"backend to compare, repeatable (default: {' and '.join(RunConfig.backends)}); the TF "
                          f"FP32 reference runs whenever a candidate does")
    run.add_argument("--device", default=RunConfig.device, help=f"OpenVINO device (default {RunConfig.device})")
    precision = run.add_mutually_exclusive_group()
    precision.add_argument("--precision", action="append", dest="precisions", metavar="P",
                           help=f"candidate precision, repeatable: FP32 FP16 BF16 INT8 (default "
                                f"{' '.join(RunConfig.precisions)}); INT8 is NNCF post-training quantization "
                                f"calibrated on the training split")
    precision.add_argument("--ladder", action="store_true", default=RunConfig.ladder,
                           help="every precision the OpenVINO device runs natively (FP32, and FP16/BF16/INT8 where "
                                "its OPTIMIZATION_CAPABILITIES list them); report.json lists the skipped ones")
    run.add_argument("--min-calls", type=int, default=TimingPlan.min_calls,
                     help=f"timed infer calls per backend, at least (default {TimingPlan.min_calls})")
    run.set_defaults(handler=_cmd_run)

    train_cmd = commands.add_parser("train", help="dataset and training only; model.tar.gz in S3 and locally")
    _add_training_options(train_cmd)
    train_cmd.set_defaults(handler=_cmd_train, backends=None, device="CPU", precisions=None, min_calls=30)

    predict = commands.add_parser("predict", help="classify images on this node; JumpStart verbose JSON, one "
                                                  "line per image")
    predict.add_argument("images", nargs="+", type=Path, metavar="IMAGE")
    predict.add_argument("--model", required=True, help="model.tar.gz: local path or s3://BUCKET/KEY")
    predict.add_argument("--backend", default="openvino", help="tf or openvino (default openvino)")
    predict.add_argument("--device", default="CPU")
    predict.add_argument("--precision", default="FP32")
    predict.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                         or "us-east-1")
    predict.add_argument("--endpoint-url", help="S3-compatible endpoint for an s3:// model")
    predict.set_defaults(handler=_cmd_predict)

    from harness.gate import FAIL_ON_CHOICES, GateOptions, format_fail_on

    gate = commands.add_parser("gate", help="latency regression gate: exit 0 ok, 1 regression, 2 unusable input")
    gate.add_argument("base", type=Path, help="baseline: pytest-benchmark JSON (--benchmark-save-data) or a run dir")
    gate.add_argument("new", type=Path, help="candidate, same kinds as BASE")
    gate.add_argument("--threshold", type=float, default=GateOptions.threshold,
                      help=f"minimum slowdown that counts (default {GateOptions.threshold})")
    gate.add_argument("--threshold-for", action="append", default=[], metavar="NAME=T",
                      help="per-benchmark minimum effect (NAME may use * and ?), repeatable")
    gate.add_argument("--alpha", type=float, default=GateOptions.alpha,
                      help=f"significance level (default {GateOptions.alpha})")
    gate.add_argument("--allow-different-machines", action="store_true",
                      help="compare results from different processors anyway")
    gate.add_argument("--fail-on", default=format_fail_on(GateOptions.fail_on), metavar="VERDICTS",
                      help=f"also exit 1 on these verdicts, comma-separated: {', '.join(FAIL_ON_CHOICES)} (default: "
                           f"{format_fail_on(GateOptions.fail_on) or 'none'}; a regression always fails)")
    gate.add_argument("--power", type=float, default=GateOptions.power,
                      help=f"power for the smallest detectable slowdown printed per benchmark (default {GateOptions.power})")
    gate.add_argument("--no-compensation", dest="compensate", action="store_false",
                      help="judge raw per-call samples even where both files carry the drift reference series")
    gate.add_argument("--rerun-inconclusive", type=int, default=0, metavar="N",
                      help="when a benchmark is inconclusive, run --rerun-command (it must rewrite NEW) and judge "
                           "again on the pooled samples, up to N times (default 0)")
    gate.add_argument("--rerun-command", metavar="CMD",
                      help="the benchmark command that rewrites NEW, e.g. 'pytest -m edge --benchmark-save-data "
                           "--benchmark-json=new.json' (split like a shell line, run without a shell)")
    gate.set_defaults(handler=_cmd_gate)

    ab = commands.add_parser("ab", help="same-job A/B gate: BASE and NEW artifacts (or checkouts) measured "
                                        "interleaved in this job; exit 0 ok, 1 regression, 2 unusable input")
    ab.add_argument("base", type=Path, help="baseline model.tar.gz")
    ab.add_argument("new", type=Path, nargs="?", help="candidate model.tar.gz (default: BASE again, e.g. with "
                                                     "--new-checkout or --inject-slowdown)")
    ab.add_argument("--base-checkout", type=Path, help="edgebench checkout whose harness runs BASE (default: this)")
    ab.add_argument("--new-checkout", type=Path, help="edgebench checkout whose harness runs NEW (default: this)")
    ab.add_argument("--backend", default="openvino", help="tf or openvino (default openvino)")
    ab.add_argument("--device", default="CPU")
    ab.add_argument("--precision", default="FP32")
    ab.add_argument("--batch", type=int, default=1, help="images per infer call (default 1)")
    ab.add_argument("--image", type=Path, help="input image (default: one generated weather image)")
    ab.add_argument("--seconds", type=float, default=10.0, help="measurement budget, both arms (default 10)")
    ab.add_argument("--block", type=int, default=5, help="timed calls per arm per turn (default 5)")
    ab.add_argument("--threshold", type=float, default=INTERLEAVED_THRESHOLD,
                    help=f"minimum slowdown that counts (default {INTERLEAVED_THRESHOLD})")
    ab.add_argument("--alpha", type=float, default=0.05, help="significance level (default 0.05)")
    ab.add_argument("--inject-slowdown", type=float, default=0.0, metavar="F",
                    help="make NEW slower by this fraction with calibrated extra work (checks the gate)")
    ab.add_argument("--json", type=Path, help="also write the verdict and raw samples here")
    ab.add_argument("--rerun-inconclusive", type=int, default=0, metavar="N",
                    help="when inconclusive, measure another --seconds and judge all turns again, up to N times")
    ab.set_defaults(handler=_cmd_ab)

    from harness.fleet import CALIBRATION_IMAGES

    fleet = commands.add_parser("fleet", help="the edge suite on every node of a Dask cluster")
    fleet_commands = fleet.add_subparsers(dest="fleet_command", required=True)
    fleet_run = fleet_commands.add_parser("run", help="run the edge suite once per node; results under "
                                                      "s3://BUCKET/runs/<run-id>/<node-id>/, then merge them")
    fleet_run.add_argument("--cluster", default="local", help="local (default), ssh, pbs or slurm")
    fleet_run.add_argument("--nodes", type=int, default=2, help="local: worker processes; pbs/slurm: jobs (default 2)")
    fleet_run.add_argument("--hosts", default="", help="ssh: SCHEDULER,NODE[,NODE...] (one node per host)")
    fleet_run.add_argument("--ssh-port", type=int, default=22)
    fleet_run.add_argument("--ssh-key", help="private key for ssh (default: the ssh agent / ~/.ssh)")
    fleet_run.add_argument("--ssh-known-hosts", help="known_hosts file to check host keys against")
    fleet_run.add_argument("--remote-python", help="python on the nodes (default: this interpreter's path)")
    fleet_run.add_argument("--queue", help="pbs/slurm queue or partition")
    fleet_run.add_argument("--walltime", default="01:00:00", help="pbs/slurm walltime (default 01:00:00)")
    fleet_run.add_argument("--cores", type=int, default=2, help="pbs/slurm cores per node (default 2)")
    fleet_run.add_argument("--memory", default="8GB", help="pbs/slurm memory per node (default 8GB)")
    fleet_run.add_argument("--processor", help="node property selecting the processor kind, e.g. skylake "
                                               "(pbs: -l nodes=1:ppn=N:PROP, slurm: --constraint=PROP)")
    fleet_run.add_argument("--resource-spec", help="pbs -l request verbatim (overrides --processor)")
    fleet_run.add_argument("--account", help="pbs/slurm account")
    fleet_run.add_argument("--dry-run", action="store_true", help="pbs/slurm: print the job script, submit nothing")
    fleet_run.add_argument("--artifact", help="model.tar.gz: s3://BUCKET/KEY or a local file (default: train the "
                                              "offline default model first)")
    fleet_run.add_argument("--test-images", help="held-out {class}/{image} folder: s3://BUCKET/PREFIX or local")
    fleet_run.add_argument("--calibration-images", metavar="DIR|s3://BUCKET/PREFIX",
                           help="INT8 calibration images, {class}/{image} training images (never the held-out "
                                f"ones): s3://BUCKET/PREFIX used as is, or a local folder of which at most "
                                f"{CALIBRATION_IMAGES} spread over the classes are uploaded (default without "
                                f"--artifact: from the training split; otherwise none, and INT8 does not run)")
    fleet_run.add_argument("--run-id", help="run id (default: a new one); an existing one resumes")
    fleet_run.add_argument("--force", action="store_true", help="re-run nodes that are already complete")
    fleet_run.add_argument("--node-timeout", type=float, default=1800.0, help="seconds per node (default 1800)")
    fleet_run.add_argument("--suite-dir", default=None, help="checkout with suites/ on the nodes (default: this one)")
    fleet_run.add_argument("--pytest-args", default="", help="extra pytest arguments per node, e.g. \"-k latency\"")
    _add_training_options(fleet_run, prefix_default="")
    fleet_run.set_defaults(handler=_cmd_fleet_run, backends=None, device="CPU", precisions=None, min_calls=30)

    upload = commands.add_parser("upload", help="publish one node's pytest results to s3://BUCKET/runs/<run-id>/"
                                                "<node-id>/ (manifest last), as a fleet node does")
    upload.add_argument("--run-id", required=True)
    upload.add_argument("--node-id", default=None, help="default: this host's name")
    upload.add_argument("--benchmark", type=Path, required=True, help="pytest --benchmark-json output "
                                                                      "(with --benchmark-save-data)")
    upload.add_argument("--node-report", type=Path, help="pytest --edgebench-node-report output")
    upload.add_argument("--junit", type=Path, help="pytest --junitxml output")
    upload.add_argument("--log", type=Path, help="the pytest log")
    _add_s3_options(upload, prefix_default="", required=True)
    upload.set_defaults(handler=_cmd_upload)

    show = commands.add_parser("report", help="summary table and report.html for finished runs, or a merged "
                                              "fleet run")
    show.add_argument("run_dirs", nargs="+", metavar="RUN",
                      help="reports/<run-id> folders (or their report.json), e.g. one per edge node; or a fleet "
                           "run: s3://BUCKET/runs/<run-id>/ or a local folder of node folders")
    show.add_argument("--endpoint-url", help="S3-compatible endpoint for an s3:// fleet run")
    show.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                      or "us-east-1")
    show.add_argument("--reports-dir", type=Path, default=Path("reports"))
    show.add_argument("--html", type=Path, help="where to write the HTML report (default: RUN_DIR/report.html for "
                                                "one run, reports/merged/report.html for several)")
    show.set_defaults(handler=_cmd_report)

    from harness.gate.history_trend import HistoryOptions

    history = commands.add_parser("history", help="every stored result (run reports, pytest-benchmark JSON, fleet "
                                                   "runs) per machine key: change points, creep, HTML trend pages")
    history.add_argument("sources", nargs="+", metavar="DIR|s3://BUCKET/PREFIX",
                         help="folders or files of stored results (reports/, .benchmarks/, a fleet run), or S3")
    history.add_argument("--out", type=Path, default=Path("reports/history"),
                         help="where the trend pages and history.json go (default reports/history)")
    history.add_argument("--metric", default=HistoryOptions.metric, choices=("auto", "raw", "compensated"),
                         help="series to analyse: drift-compensated where every run has it (auto), or raw medians")
    history.add_argument("--threshold", type=float, default=HistoryOptions.threshold,
                         help=f"the pairwise gate's minimum effect, for creep and missed steps (default "
                              f"{HistoryOptions.threshold})")
    history.add_argument("--max-pvalue", type=float, default=HistoryOptions.max_pvalue,
                         help=f"change-point significance (Otava; default {HistoryOptions.max_pvalue})")
    history.add_argument("--fail-on-regression", action="store_true",
                         help="exit 1 when a series' latest change point is a regression or it creeps upward")
    history.add_argument("--endpoint-url", help="S3-compatible endpoint for s3:// sources")
    history.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                         or "us-east-1")
    history.set_defaults(handler=_cmd_history)
    return parser


def _add_training_options(parser: argparse.ArgumentParser, prefix_default: str = "edgebench") -> None:
    parser.add_argument("--dataset", type=Path, help="a {root}/{class}/{images} folder (default: generate the "
                                                     "procedural 5-class weather set)")
    parser.add_argument("--images-per-class", type=int, default=50, help="generated images per class (default 50)")
    parser.add_argument("--seed", type=int, default=0, help="seed for the generated dataset and the split")
    parser.add_argument("--holdout", type=int, default=1, help="test images held out per class (default 1)")
    parser.add_argument("--model-id", default=None, help="JumpStart model id (default MobileNetV2 224)")
    parser.add_argument("--epochs", type=int, help="shortcut for --hp epochs=N")
    parser.add_argument("--hp", action="append", default=[], metavar="NAME=VALUE",
                        help="JumpStart hyperparameter, repeatable (e.g. --hp batch_size=16)")
    parser.add_argument("--trainer", choices=("local", "sagemaker"), default="local",
                        help="local Keras trainer, or a SageMaker JumpStart training job (offline: on the "
                             "embedded fake, container played here)")
    parser.add_argument("--role", default=os.environ.get("EDGEBENCH_SAGEMAKER_ROLE"),
                        help="SageMaker execution role ARN for --trainer sagemaker with --bucket "
                             "(default $EDGEBENCH_SAGEMAKER_ROLE)")
    parser.add_argument("--instance-type", default="ml.m5.xlarge", help="SageMaker training instance type")
    _add_s3_options(parser, prefix_default)
    parser.add_argument("--reports-dir", type=Path, default=Path("reports"))
    parser.add_argument("--cache-dir", type=Path, default=Path(".cache/edgebench"))


def _add_s3_options(parser: argparse.ArgumentParser, prefix_default: str = "edgebench", required: bool = False) -> None:
    group = parser.add_argument_group("S3" if required else "S3 (default: an embedded offline S3 on 127.0.0.1)")
    group.add_argument("--bucket", required=required, help="S3 bucket; credentials come from the standard AWS chain")
    group.add_argument("--prefix", default=prefix_default, help=f"key prefix (default {prefix_default!r})")
    group.add_argument("--region", default=os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")
                       or "us-east-1", help="AWS region (default $AWS_REGION or us-east-1)")
    group.add_argument("--endpoint-url", help="S3-compatible endpoint (MinIO, a moto server, ...)")


def _run_config(args: argparse.Namespace):
    from harness import data, store, workflow
    from harness.training import sagemaker_job, train
    from harness.backends import check_request
    from harness.measure import TimingPlan

    overrides = dict(_parse_assignment(item) for item in args.hp)
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    hp = workflow.RUN_HYPERPARAMETERS
    if overrides:
        hp = train.Hyperparameters.from_mapping({**hp.to_jumpstart(), **overrides})
    if args.endpoint_url and not args.bucket:
        raise ConfigError("--endpoint-url needs --bucket (without both, the embedded offline S3 is used)")
    location = store.S3Location(args.bucket, args.prefix, args.region, args.endpoint_url) if args.bucket else None
    if args.min_calls < 1:
        raise ConfigError("--min-calls: must be at least 1")
    backends = tuple(args.backends or workflow.RunConfig.backends)
    precisions = tuple(dict.fromkeys(p.upper() for p in (args.precisions or workflow.RunConfig.precisions)))
    for precision in precisions:
        check_request(backends, precision)
    job: dict = {}
    if args.trainer == "sagemaker":
        if location is not None and not args.role:
            raise ConfigError("--trainer sagemaker with --bucket needs an execution role: --role ARN or "
                              "EDGEBENCH_SAGEMAKER_ROLE")
        job["sagemaker"] = sagemaker_job.SageMakerJob(
            role_arn=args.role if location is not None else sagemaker_job.OFFLINE_ROLE_ARN,
            instance_type=args.instance_type, poll_seconds=30.0 if location is not None else 0.2)
    return workflow.RunConfig(
        dataset=args.dataset,
        generator=data.GeneratorConfig(images_per_class=args.images_per_class, seed=args.seed),
        holdout_per_class=args.holdout, split_seed=args.seed,
        model_id=args.model_id or train.DEFAULT_MODEL_ID, hyperparameters=hp, s3=location,
        trainer=args.trainer, **job,
        backends=backends, device=args.device,
        precisions=precisions, ladder=getattr(args, "ladder", workflow.RunConfig.ladder),
        timing=TimingPlan(min_calls=args.min_calls),
        reports_dir=args.reports_dir, cache_dir=args.cache_dir,
    )


def _parse_assignment(item: str) -> tuple[str, str]:
    name, sep, value = item.partition("=")
    if not sep or not name:
        raise ConfigError(f"--hp {item!r}: expected NAME=VALUE, e.g. --hp batch_size=16")
    return name.strip(), value.strip()


def _cmd_run(args: argparse.Namespace, console) -> int:
    from harness import report, workflow
    from harness.progress import RichProgress

    result = workflow.run(_run_config(args), RichProgress(console))
    console.print(report.summary_table(result.report))
    console.print(f"Report: {result.run_dir / 'report.json'}")
    return _parity_exit(result.report, console)


def _parity_exit(document: dict, console) -> int:
    """0 when every candidate has a verdict within bounds; 3 (one line per failing candidate) when one is out
    of bounds; a candidate without a verdict raises ParityError (exit 1)."""
    from rich.markup import escape

    from harness import report

    failing = report.check_parity(document)
    for label, failures in failing.items():
        console.print(f"[red]Parity outside tolerance: {escape(label)}[/red]: {escape('; '.join(failures))}",
                      highlight=False, soft_wrap=True)
    return 3 if failing else 0


def _cmd_train(args: argparse.Namespace, console) -> int:
    from harness import workflow
    from harness.progress import RichProgress

    result = workflow.train_only(_run_config(args), RichProgress(console))
    training = result.report["training"]
    console.print(f"Model: {training['artifact']}")
    console.print(f"Local copy: {result.report['artifact_local']}")
    console.print(f"Metrics: {training['metrics']}")
    return 0


def _cmd_predict(args: argparse.Namespace, console) -> int:
    import json
    import tempfile

    from harness import data, edge, store
    from harness.backends import BackendConfig, check_request
    from harness.errors import ArtifactError
    from harness.backends import infer_each, load_backend

    check_request([args.backend], args.precision.upper())
    with tempfile.TemporaryDirectory(prefix="edgebench-predict-") as tmp:
        if args.model.startswith("s3://"):
            bucket, _ = store.parse_s3_uri(args.model)
            s3 = store.S3Store(store.S3Location(bucket, "", args.region, args.endpoint_url))
            model = edge.import_from_s3(s3, args.model, None, Path(tmp) / "edge")
        else:
            model = edge.import_local(Path(args.model), Path(tmp) / "edge")
        backend = load_backend(args.backend, model, BackendConfig(args.device, args.precision.upper()))
        for path in args.images:
            try:  # a label map of another width than the model's output is refused, not zipped short
                logits = infer_each(backend, data.load_image(path)[None], model.classes)[0]
            except ArtifactError as exc:
                raise ArtifactError(f"{args.model}: {exc}") from None
            print(json.dumps({"image": str(path), **edge.jumpstart_verbose(model.classes, logits)}))
    return 0


def _cmd_gate(args: argparse.Namespace, console) -> int:
    from harness import gate

    try:  # a bad option is unusable input (exit 2), not a regression (exit 1)
        thresholds = {name: _float_option("--threshold-for", name, value)
                      for name, value in map(_parse_assignment, args.threshold_for)}
        options = gate.GateOptions(threshold=args.threshold, thresholds=thresholds, alpha=args.alpha,
                                   allow_different_machines=args.allow_different_machines, fail_on=args.fail_on,
                                   power=args.power, compensate=args.compensate)
        rerun = _rerun_command(args.rerun_inconclusive, args.rerun_command)
    except ConfigError as exc:
        outcome = gate.GateOutcome(gate.EXIT_UNUSABLE, error=str(exc))
    else:
        outcome = gate.run_gate(args.base, args.new, options, args.rerun_inconclusive, rerun,
                                lambda line: print(f"edgebench gate: {line}", file=sys.stderr))
    if outcome.error:
        print(f"edgebench: error: {outcome.error}", file=sys.stderr)
    else:
        console.print(gate.render(outcome.result))
        console.print(gate.render_summary(outcome.result), soft_wrap=True)
    return outcome.exit_code


def _rerun_command(reruns: int, command: str | None):
    """The re-measurement for ``--rerun-inconclusive``: runs ``command`` (no shell), one-line error if it fails."""
    import shlex
    import subprocess

    if reruns < 0:
        raise ConfigError(f"--rerun-inconclusive {reruns}: give a count >= 0")
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
            raise ConfigError(f"--rerun-command exited with {completed.returncode} on re-measurement {attempt}: "
                              f"{command}")
    return rerun


def _cmd_ab(args: argparse.Namespace, console) -> int:
    import numpy as np

    from harness import data, fileio, gate
    from harness.backends import check_request
    from harness.gate import ab

    check_request([args.backend], args.precision.upper())
    if args.batch < 1:
        raise ConfigError("--batch: must be at least 1")
    image = data.load_image(args.image) if args.image else data.to_tensor(data.generated_image("sunny", seed=0))
    batch = np.repeat(image[None], args.batch, axis=0)
    from harness.gate import drift

    if args.rerun_inconclusive < 0:
        raise ConfigError(f"--rerun-inconclusive {args.rerun_inconclusive}: give a count >= 0")
    plan = ab.ABPlan(args.backend, args.device, args.precision.upper(), args.seconds, args.block,
                     references=(drift.REFERENCE,))
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
        fileio.write_json(args.json, {**result.to_json(), "seconds": session.seconds, "turns": session.turns,
                                      "blocks_s": session.blocks})
    return result.exit_code


def _float_option(option: str, name: str, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise ConfigError(f"{option} {name}={value}: not a number") from None


def _cmd_fleet_run(args: argparse.Namespace, console) -> int:
    import dataclasses
    import functools
    import shlex
    import time

    from harness import fleet, workflow
    from harness.fleet import clusters

    logging.getLogger("distributed").setLevel(logging.WARNING)  # the scheduler runs here and logs every worker
    options = clusters.ClusterOptions(
        kind=args.cluster, nodes=args.nodes, hosts=tuple(h for h in args.hosts.split(",") if h),
        ssh_port=args.ssh_port, ssh_key=args.ssh_key, ssh_known_hosts=args.ssh_known_hosts,
        remote_python=args.remote_python, queue=args.queue, walltime=args.walltime, cores=args.cores,
        memory=args.memory, processor=args.processor, resource_spec=args.resource_spec, account=args.account)
    if args.dry_run:
        if args.cluster not in ("pbs", "slurm"):
            raise ConfigError("--dry-run prints the job script of a batch scheduler: use it with --cluster pbs or slurm")
        print(clusters.job_script(options))
        return 0
    if args.node_timeout <= 0:
        raise ConfigError("--node-timeout: must be a positive number of seconds")
    run_id = args.run_id or workflow.new_run_id()
    with fleet.results_store(_fleet_location(args)) as (location, credentials):
        artifact_uri, test_uri, calibration_uri = _fleet_inputs(args, location, credentials, run_id, console)
        spec = fleet.NodeSpec(run_id, "", artifact_uri, location, test_uri, calibration_uri,
                              pytest_args=tuple(shlex.split(args.pytest_args)),
                              timeout_s=args.node_timeout, force=args.force, credentials=credentials,
                              **({"suite_dir": args.suite_dir} if args.suite_dir else {}))
        console.print(f"Fleet run {run_id}: {options.kind} cluster, artifact {artifact_uri}")
        if options.kind in ("pbs", "slurm"):  # the jobs export what the nodes need; their output goes beside
            options = dataclasses.replace(options, environment=tuple(fleet.job_environment(location, credentials)
                                                                     .items()),
                                          log_directory=str((args.reports_dir / "jobs" / run_id).resolve()))
            console.print(f"  {options.nodes} job(s); job output in {options.log_directory}")
        started = time.monotonic()
        with clusters.open_cluster(options) as client:
            console.print(f"  {len(client.scheduler_info()['workers'])} worker(s) connected "
                          f"{time.monotonic() - started:.1f} s after the cluster started")
            result = fleet.run_fleet(client, spec, on_update=lambda node: console.print(
                f"  node {node.node_id}: {node.status}" + (f" ({node.reason})" if node.reason else "")
                + (f" in {node.seconds:.0f} s" if node.seconds else ""), highlight=False),
                job_ended=functools.partial(clusters.job_end_reason, options.kind))
        console.print(f"{len(result.nodes)} node(s) in {result.seconds:.0f} s, {len(result.failed)} failed")
        local = fleet.download_run(location, run_id, args.reports_dir / "fleet" / run_id, credentials)
    return _show_fleet(local, console, exit_code=1 if result.failed else 0)


def _fleet_location(args: argparse.Namespace):
    from harness import store

    if args.endpoint_url and not args.bucket:
        raise ConfigError("--endpoint-url needs --bucket (without both, the embedded offline S3 is used)")
    return store.S3Location(args.bucket, args.prefix, args.region, args.endpoint_url) if args.bucket else None


def _fleet_inputs(args: argparse.Namespace, location, credentials, run_id: str,
                  console) -> tuple[str, str | None, str | None]:
    """The artifact, test images and INT8 calibration images as S3 URIs the nodes can read: given, uploaded
    beside the artifact (``artifacts/<run-id>/{model.tar.gz,test/,calibration/}``), or trained first (then the
    calibration images are a capped subset of the training split)."""
    from harness import fleet, store, workflow
    from harness.progress import RichProgress

    if args.artifact and args.artifact.startswith("s3://"):
        for option, value in (("--test-images", args.test_images), ("--calibration-images", args.calibration_images)):
            if value and not value.startswith("s3://"):
                raise ConfigError(f"{option}: with an s3:// --artifact the nodes read these images from S3 too; "
                                  "pass s3://BUCKET/PREFIX")
        return args.artifact, args.test_images, args.calibration_images
    calibration = args.calibration_images
    if calibration and not calibration.startswith("s3://"):  # checked before any training or upload
        calibration = fleet.calibration_subset(Path(calibration))
    if args.artifact:
        artifact, tests = Path(args.artifact), Path(args.test_images) if args.test_images else None
        if not artifact.is_file():
            raise ConfigError(f"--artifact {artifact}: no such file; pass a model.tar.gz or an s3:// URI")
    else:
        console.print("No --artifact: training the offline default model first")
        trained = workflow.train_only(_run_config(args), RichProgress(console)).report
        artifact, tests = Path(trained["artifact_local"]), Path(trained["test_local"])
        calibration = calibration or fleet.calibration_subset(Path(trained["training_local"]))
    s3 = store.S3Store(location, dict(credentials) if credentials else None)
    base = location.key("artifacts", run_id)
    artifact_uri = s3.upload_file(artifact, f"{base}/model.tar.gz")
    test_uri = None
    if tests is not None:
        s3.upload_tree(tests, f"{base}/test")
        test_uri = s3.location.uri(f"{base}/test")
    if isinstance(calibration, fleet.CalibrationSubset):
        console.print(f"Calibration: {calibration.describe()}")
        calibration = fleet.upload_images(s3, calibration.images, f"{base}/calibration")
    return artifact_uri, test_uri, calibration


def _cmd_upload(args: argparse.Namespace, console) -> int:
    import socket

    from harness import fleet, store

    files = {name: path for name, path in (("benchmark.json", args.benchmark), ("report.json", args.node_report),
                                           ("junit.xml", args.junit), ("log.txt", args.log)) if path is not None}
    location = store.S3Location(args.bucket, args.prefix, args.region, args.endpoint_url)
    node_id = args.node_id or fleet.node_id_for(socket.gethostname(), "manual")
    console.print(f"Uploaded: {fleet.upload_results(location, args.run_id, node_id, files)}")
    return 0


def _show_fleet(run_dir: Path, console, exit_code: int = 0) -> int:
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


def _is_fleet_dir(path: Path) -> bool:
    return path.is_dir() and not (path / "report.json").is_file() and any(
        (child / "manifest.json").is_file() or (child / "failure.json").is_file() for child in path.iterdir()
        if child.is_dir())


def _cmd_report(args: argparse.Namespace, console) -> int:
    from harness import fileio, fleet, html_report, report, store

    fleet_runs = [r for r in args.run_dirs if r.startswith("s3://") or _is_fleet_dir(Path(r))]
    if fleet_runs:
        if len(args.run_dirs) != 1:
            raise ConfigError("a fleet run is merged on its own: pass one s3://BUCKET/runs/<run-id>/ or one folder")
        if not fleet_runs[0].startswith("s3://"):
            return _show_fleet(Path(fleet_runs[0]), console)
        bucket, prefix, run_id = fleet.parse_run_uri(fleet_runs[0])
        location = store.S3Location(bucket, prefix, args.region, args.endpoint_url)
        return _show_fleet(fleet.download_run(location, run_id, args.reports_dir / "fleet" / run_id), console)
    args.run_dirs = [Path(r) for r in args.run_dirs]
    documents = []
    for run_dir in args.run_dirs:
        path = run_dir / "report.json" if run_dir.is_dir() else run_dir
        if not path.is_file():
            raise ConfigError(f"{path}: no report.json here; pass a reports/<run-id> folder")
        documents.append(report.read_run_report(path))
    for document in documents:
        console.print(report.summary_table(document))
    single = args.run_dirs[0] if args.run_dirs[0].is_dir() else args.run_dirs[0].parent
    out = args.html or (single / "report.html" if len(documents) == 1 else Path("reports/merged/report.html"))
    if len(documents) > 1:
        fileio.write_json(out.parent / "report.json", {"schema": "edgebench.merged/1", "runs": documents})
    console.print(f"HTML report: {html_report.render_html(documents, out)}")
    return 0


def _cmd_history(args: argparse.Namespace, console) -> int:
    from harness.gate import history

    options = history.HistoryOptions(metric=args.metric, threshold=args.threshold, max_pvalue=args.max_pvalue)
    result = history.run_history(args.sources, args.out, options, args.endpoint_url, args.region)
    for table in history.render_tables(result.analyses):
        console.print(table)
    for line in history.skipped_lines(result.skipped):
        console.print(line, markup=False, highlight=False, soft_wrap=True)
    console.print(f"Trend pages: {result.index}")
    return 1 if args.fail_on_regression and result.regressions else 0


if __name__ == "__main__":
    sys.exit(main())
