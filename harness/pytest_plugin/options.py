"""The node's command-line options, in pytest's ``edgebench`` group (``pytest --help``)."""

from __future__ import annotations

import pytest

from harness.pytest_plugin.cases import SUITE_HYPERPARAMETERS


def add_options(parser: pytest.Parser) -> None:
    group = parser.getgroup("edgebench")
    group.addoption(
        "--edgebench-artifact",
        default=None,
        metavar="PATH|s3://BUCKET/KEY",
        help="model.tar.gz to test (local path or S3 URI; S3 uses the standard AWS credential chain "
        "and AWS_ENDPOINT_URL if set). Default: train a small model once and cache it.",
    )
    group.addoption(
        "--edgebench-test-images",
        default=None,
        metavar="DIR|s3://BUCKET/PREFIX",
        help="held-out {class}/{image} folder for the artifact (default: the cached model's)",
    )
    group.addoption(
        "--edgebench-calibration",
        default=None,
        metavar="DIR|s3://BUCKET/PREFIX",
        help="training images ({class}/{images}) to calibrate INT8 for --edgebench-artifact "
        "(never the held-out images); without it INT8 cases skip and say so",
    )
    group.addoption(
        "--backend",
        action="append",
        default=None,
        dest="edgebench_backends",
        metavar="NAME",
        help="backend(s) to test against TF, repeatable (default: openvino)",
    )
    group.addoption("--device", default="CPU", dest="edgebench_device", help="OpenVINO device (default CPU)")
    group.addoption(
        "--edgebench-train-seed",
        type=int,
        default=SUITE_HYPERPARAMETERS.random_seed,
        metavar="N",
        help="training seed of the suite model trained without an artifact (default "
        f"{SUITE_HYPERPARAMETERS.random_seed}); another seed is an independent training",
    )
    group.addoption(
        "--edgebench-node-report",
        default=None,
        metavar="PATH",
        help="write this node's summary (processor, parity figures, test outcomes) as JSON; "
        "`edgebench upload` and the fleet publish it beside --benchmark-json",
    )
