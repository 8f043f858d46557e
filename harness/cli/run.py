"""``edgebench run`` (the whole workflow) and ``edgebench train`` (dataset and training only)."""

from __future__ import annotations

import argparse
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypedDict

from harness.cli.options import add_field_option, add_s3_options, parse_assignment, s3_location
from harness.errors import ConfigError

if TYPE_CHECKING:  # the modules behind the commands load when a command runs, not when the parser is built
    from rich.console import Console

    from harness.store import S3Location
    from harness.training.sagemaker_job import SageMakerJob
    from harness.training.train import Hyperparameters
    from harness.workflow import RunConfig


class _TrainerJob(TypedDict, total=False):
    """``RunConfig``'s ``sagemaker`` field when the options set it; absent, its default applies."""

    sagemaker: SageMakerJob


def add_run(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    from harness.measure import TimingPlan
    from harness.workflow import RunConfig

    run = commands.add_parser(
        "run",
        help="the whole workflow end to end (offline by default); exit 0 ok, 1 error "
        "(e.g. a candidate without a parity verdict), 3 parity out of bounds",
    )
    add_training_options(run)
    run.add_argument(
        "--backend",
        action="append",
        dest="backends",
        metavar="NAME",
        help=f"backend to compare, repeatable (default: {' and '.join(RunConfig.backends)}); the TF "
        f"FP32 reference runs whenever a candidate does",
    )
    add_field_option(run, RunConfig, "device")
    precision = run.add_mutually_exclusive_group()
    precision.add_argument(
        "--precision",
        action="append",
        dest="precisions",
        metavar="P",
        help=f"candidate precision, repeatable: FP32 FP16 BF16 INT8 (default "
        f"{' '.join(RunConfig.precisions)}); INT8 is NNCF post-training quantization "
        f"calibrated on the training split",
    )
    add_field_option(precision, RunConfig, "ladder")
    add_field_option(run, TimingPlan, "min_calls")
    run.set_defaults(handler=cmd_run)


def add_train(commands: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    train_cmd = commands.add_parser("train", help="dataset and training only; model.tar.gz in S3 and locally")
    add_training_options(train_cmd)
    train_cmd.set_defaults(handler=cmd_train, **measurement_defaults())


def measurement_defaults() -> dict[str, Any]:
    """What ``run_config`` reads that only ``edgebench run`` sets: their defaults, for commands that train."""
    from harness.measure import TimingPlan
    from harness.workflow import RunConfig

    return {"backends": None, "device": RunConfig.device, "precisions": None, "min_calls": TimingPlan.min_calls}


def add_training_options(parser: argparse.ArgumentParser, prefix_default: str | None = None) -> None:
    from harness.data import GeneratorConfig
    from harness.store import S3Location
    from harness.training.sagemaker_job import SageMakerJob
    from harness.workflow import TRAINERS, RunConfig

    parser.add_argument(
        "--dataset",
        type=Path,
        help="a {root}/{class}/{images} folder (default: generate the procedural 5-class weather set)",
    )
    add_field_option(parser, GeneratorConfig, "images_per_class")
    add_field_option(parser, GeneratorConfig, "seed")
    add_field_option(parser, RunConfig, "holdout_per_class", "--holdout")
    add_field_option(parser, RunConfig, "model_id")
    parser.add_argument("--epochs", type=int, help="shortcut for --hp epochs=N")
    parser.add_argument(
        "--hp",
        action="append",
        default=[],
        metavar="NAME=VALUE",
        help="JumpStart hyperparameter, repeatable (e.g. --hp batch_size=16)",
    )
    add_field_option(parser, RunConfig, "trainer", choices=TRAINERS)
    parser.add_argument(
        "--role",
        default=os.environ.get("EDGEBENCH_SAGEMAKER_ROLE"),
        help="SageMaker execution role ARN for --trainer sagemaker with --bucket (default $EDGEBENCH_SAGEMAKER_ROLE)",
    )
    add_field_option(parser, SageMakerJob, "instance_type")
    add_s3_options(parser, S3Location.prefix if prefix_default is None else prefix_default)
    add_field_option(parser, RunConfig, "reports_dir")
    add_field_option(parser, RunConfig, "cache_dir")


def run_config(args: argparse.Namespace) -> RunConfig:
    """The ``RunConfig`` the options describe; every option is checked here, before any work."""
    from harness import data, workflow
    from harness.backends import check_request
    from harness.measure import TimingPlan

    hyperparameters = _hyperparameters(args)
    location = s3_location(args)
    if args.min_calls < 1:
        raise ConfigError("--min-calls: must be at least 1")
    backends = tuple(args.backends or workflow.RunConfig.backends)
    precisions = tuple(dict.fromkeys(p.upper() for p in (args.precisions or workflow.RunConfig.precisions)))
    for precision in precisions:
        check_request(backends, precision)
    job = _sagemaker_job(args, location)
    return workflow.RunConfig(
        dataset=args.dataset,
        generator=data.GeneratorConfig(images_per_class=args.images_per_class, seed=args.seed),
        holdout_per_class=args.holdout,
        split_seed=args.seed,
        model_id=args.model_id or workflow.RunConfig.model_id,
        hyperparameters=hyperparameters,
        s3=location,
        trainer=args.trainer,
        **job,
        backends=backends,
        device=args.device,
        precisions=precisions,
        ladder=getattr(args, "ladder", workflow.RunConfig.ladder),
        timing=TimingPlan(min_calls=args.min_calls),
        reports_dir=args.reports_dir,
        cache_dir=args.cache_dir,
    )


def _hyperparameters(args: argparse.Namespace) -> Hyperparameters:
    from harness import workflow
    from harness.training import train

    overrides = dict(parse_assignment(item) for item in args.hp)
    if args.epochs is not None:
        overrides["epochs"] = args.epochs
    hp = workflow.RUN_HYPERPARAMETERS
    return train.Hyperparameters.from_mapping({**hp.to_jumpstart(), **overrides}) if overrides else hp


def _sagemaker_job(args: argparse.Namespace, location: S3Location | None) -> _TrainerJob:
    """``{"sagemaker": SageMakerJob}`` for ``--trainer sagemaker``: the user's role at AWS, the fake's offline."""
    from harness.training import sagemaker_job

    if args.trainer != "sagemaker":
        return {}
    if location is None:  # the embedded fake completes at once: poll it often
        return {
            "sagemaker": sagemaker_job.SageMakerJob(
                role_arn=sagemaker_job.OFFLINE_ROLE_ARN, instance_type=args.instance_type, poll_seconds=0.2
            )
        }
    if not args.role:
        raise ConfigError(
            "--trainer sagemaker with --bucket needs an execution role: --role ARN or EDGEBENCH_SAGEMAKER_ROLE"
        )
    return {"sagemaker": sagemaker_job.SageMakerJob(role_arn=args.role, instance_type=args.instance_type)}


def cmd_run(args: argparse.Namespace, console: Console) -> int:
    from harness import report, workflow
    from harness.progress import RichProgress

    result = workflow.run(run_config(args), RichProgress(console))
    console.print(report.summary_table(result.report))
    console.print(f"Report: {result.run_dir / 'report.json'}")
    return _parity_exit(result.report, console)


def _parity_exit(document: dict[str, Any], console: Console) -> int:
    """0 when every candidate has a verdict within bounds; 3 (one line per failing candidate) when one is out
    of bounds; a candidate without a verdict raises ParityError (exit 1)."""
    from rich.markup import escape

    from harness import report

    failing = report.check_parity(document)
    for label, unchecked in report.unchecked_bounds(document).items():
        console.print(f"Parity of {escape(label)}: unchecked {escape('; '.join(unchecked))}", soft_wrap=True)
    for label, failures in failing.items():
        console.print(
            f"[red]Parity outside tolerance: {escape(label)}[/red]: {escape('; '.join(failures))}",
            highlight=False,
            soft_wrap=True,
        )
    return 3 if failing else 0


def cmd_train(args: argparse.Namespace, console: Console) -> int:
    from harness import workflow
    from harness.progress import RichProgress

    result = workflow.train_only(run_config(args), RichProgress(console))
    training = result.report["training"]
    console.print(f"Model: {training['artifact']}")
    console.print(f"Local copy: {result.report['artifact_local']}")
    console.print(f"Metrics: {training['metrics']}")
    return 0
