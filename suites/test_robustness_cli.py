"""Bad hyperparameters and CLI options get one clear line before any work; every command names the input the
user gave; the node command stops once on an undecodable test image."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import cli
from harness.errors import ConfigError
from harness.training import train
from robustness_helpers import write_image, write_tarball

# -- hyperparameters and CLI -----------------------------------------------------------------------


def test_hyperparameters_accept_jumpstart_strings_and_legacy_names():
    hp = train.Hyperparameters.from_mapping(
        {"epochs": "3", "batch-size": "16", "adam-learning-rate": "0.01", "train_only_top_layer": "False"}
    )
    assert (hp.epochs, hp.batch_size, hp.learning_rate, hp.train_only_top_layer) == (3, 16, 0.01, False)
    assert train.Hyperparameters.from_mapping(hp.to_jumpstart()) == hp


@pytest.mark.parametrize(
    "values,pattern",
    [
        ({"epoch": "3"}, "'epoch': unknown"),
        ({"epochs": "three"}, "epochs='three': not a valid int"),
        ({"epochs": "2.5"}, "not a valid int"),
        ({"epochs": "0"}, r"epochs: must be an integer in \[1, 1000\]"),
        ({"optimizer": "lion"}, "optimizer: must be one of"),
        ({"augmentation": "maybe"}, "not a valid bool"),
        ({"dropout_rate": "1.5"}, r"dropout_rate: must be a number in \[0, 1\)"),
    ],
)
def test_bad_hyperparameters(values, pattern):
    with pytest.raises(ConfigError, match=pattern):
        train.Hyperparameters.from_mapping(values)


def test_cli_prints_one_line_and_exits_nonzero(tmp_path, capsys):
    (tmp_path / "ds" / "sunny").mkdir(parents=True)
    code = cli.main(["run", "--dataset", str(tmp_path / "ds"), "--reports-dir", str(tmp_path / "r")])
    err = capsys.readouterr().err.strip()
    assert code == 1
    assert err.startswith("edgebench: error: dataset") and "\n" not in err


@pytest.mark.parametrize(
    "argv,pattern",
    [
        (["--backend", "onnx"], "backend 'onnx': unknown"),
        (["--precision", "int4"], "precision 'INT4'"),
        (["--endpoint-url", "http://127.0.0.1:1"], "--endpoint-url needs --bucket"),
        (["--min-calls", "0"], "--min-calls"),
    ],
)
def test_cli_rejects_bad_options_before_any_work(capsys, tmp_path, argv, pattern):
    assert cli.main(["run", "--reports-dir", str(tmp_path / "r"), *argv]) == 1
    assert pattern in capsys.readouterr().err
    assert not (tmp_path / "r").exists()


def test_cli_rejects_bad_hp_syntax(capsys, tmp_path):
    assert cli.main(["run", "--hp", "epochs", "--reports-dir", str(tmp_path)]) == 1
    assert "expected NAME=VALUE" in capsys.readouterr().err


def test_cli_defaults_are_the_dataclass_defaults(capsys):
    """One source for every default: what argparse fills in is the field default of the dataclass the option
    feeds, and the help says so."""
    from harness.data import GeneratorConfig
    from harness.fleet import NodeSpec
    from harness.fleet.clusters import ClusterOptions
    from harness.gate.ab import ABPlan
    from harness.measure import TimingPlan
    from harness.training.sagemaker_job import SageMakerJob
    from harness.workflow import RunConfig

    parser = cli.build_parser()
    run, fleet_run = parser.parse_args(["run"]), parser.parse_args(["fleet", "run"])
    ab = parser.parse_args(["ab", "base.tar.gz"])
    assert (run.min_calls, run.device, run.holdout, run.images_per_class, run.instance_type, run.reports_dir) == (
        TimingPlan.min_calls,
        RunConfig.device,
        RunConfig.holdout_per_class,
        GeneratorConfig.images_per_class,
        SageMakerJob.instance_type,
        RunConfig.reports_dir,
    )
    assert (ab.seconds, ab.block, ab.backend, ab.device, ab.precision) == (
        ABPlan.seconds,
        ABPlan.block,
        ABPlan.backend,
        ABPlan.device,
        ABPlan.precision,
    )
    assert (
        fleet_run.nodes,
        fleet_run.walltime,
        fleet_run.cores,
        fleet_run.memory,
        fleet_run.cluster,
        fleet_run.node_timeout,
        fleet_run.min_calls,
    ) == (
        ClusterOptions.nodes,
        ClusterOptions.walltime,
        ClusterOptions.cores,
        ClusterOptions.memory,
        ClusterOptions.kind,
        NodeSpec.timeout_s,
        TimingPlan.min_calls,
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["fleet", "run", "--help"])
    assert f"pbs/slurm walltime (default {ClusterOptions.walltime})" in " ".join(capsys.readouterr().out.split())


# -- every command names the input the user gave ---------------------------------------------------


@pytest.fixture
def bad_inputs(tmp_path, monkeypatch) -> Path:
    """A working directory of bad inputs, each given to the CLI by its relative name."""
    monkeypatch.chdir(tmp_path)
    write_image(tmp_path / "img.png")
    (tmp_path / "empty.tar.gz").write_bytes(b"")
    (tmp_path / "notatar.tar.gz").write_bytes(b"plain text, no archive")
    write_tarball(tmp_path / "nolabels.tar.gz", {"1/saved_model.pb": b"x"})
    (tmp_path / "bad.json").write_text("{not json")
    (tmp_path / "empty.json").write_text("")
    return tmp_path


# argv, and the one error line's words naming the input as the user typed it
NAMED_INPUTS = [
    (["predict", "--model", "empty.tar.gz", "img.png"], "empty.tar.gz: not a safe, readable tarball (empty file)"),
    (["predict", "--model", "notatar.tar.gz", "img.png"], "notatar.tar.gz: not a safe, readable tarball (not a tar"),
    (["predict", "--model", "nolabels.tar.gz", "img.png"], "nolabels.tar.gz: found neither"),
    (["predict", "--model", "missing.tar.gz", "img.png"], "missing.tar.gz: no such model.tar.gz"),
    (["predict", "--model", "s3://", "img.png"], "'s3://': not an S3 URI"),
    (["predict", "--model", "empty.tar.gz", "missing.png"], "missing.png: no such image file"),
    (["gate", "missing.json", "bad.json"], "missing.json: not a readable JSON result"),
    (["gate", "bad.json", "bad.json"], "bad.json: not a readable JSON result"),
    (["gate", "empty.json", "bad.json"], "empty.json: not a readable JSON result"),
    (["gate", "s3://bucket/base.json", "bad.json"], "s3://bucket/base.json: the gate reads local files"),
    (["report", "missing"], "missing: no report.json here"),
    (["report", "bad.json"], "bad.json: not a readable report"),
    (["report", "s3://bucket/base"], "s3://bucket/base: expected s3://BUCKET/runs/<run-id>/"),
    (["history", "missing"], "missing: no such folder or file"),
    (["history", "bad.json"], "bad.json: no stored results in it"),
    (["history", "s3://"], "'s3://': not an S3 URI"),
    (["run", "--dataset", "missing"], "dataset missing: not a directory"),
    (["train", "--dataset", "bad.json"], "dataset bad.json: not a directory"),
    (["fleet", "run", "--artifact", "missing.tar.gz"], "--artifact missing.tar.gz: no such file"),
    (["fleet", "run", "--artifact", "empty.tar.gz"], "empty.tar.gz: not a safe, readable tarball (empty file)"),
    (["fleet", "run", "--artifact", "s3://"], "--artifact 's3://': not an S3 URI"),
    (
        ["fleet", "run", "--artifact", "nolabels.tar.gz", "--test-images", "missing"],
        "test images: dataset missing: not a directory",
    ),
    (
        ["fleet", "run", "--artifact", "nolabels.tar.gz", "--calibration-images", "bad.json"],
        "calibration images: dataset bad.json: not a directory",
    ),
    (["upload", "--run-id", "r", "--bucket", "b", "--benchmark", "missing.json"], "missing.json: no such file"),
    (["upload", "--run-id", "r", "--bucket", "b", "--benchmark", "bad.json"], "bad.json: not readable JSON"),
    (["ab", "missing.tar.gz", "--seconds", "1"], "missing.tar.gz: no such model.tar.gz"),
]


@pytest.mark.parametrize(
    "argv,named",
    NAMED_INPUTS,
    ids=lambda value: "-".join(value) if isinstance(value, list) else None,
)
def test_every_command_names_the_users_input_in_one_line(bad_inputs, capsys, argv, named):
    """Each bad input (missing, empty, not a tarball, bad JSON, a bad s3:// URI) ends in exactly one stderr line
    naming it as the user typed it: no traceback, no temporary copy (``/tmp/edgebench-predict-…/edge/…``), no
    absolute path the user did not give."""
    code = cli.main(argv)
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code in (1, 2) and len(lines) == 1, captured.err
    assert lines[0].startswith("edgebench: error: ") and named in lines[0], lines[0]
    assert "Traceback" not in captured.err and str(bad_inputs) not in lines[0] and "/edge/" not in lines[0]


# -- the node command ----------------------------------------------------------------------------


def test_an_undecodable_test_image_stops_the_node_run_once_naming_the_file(suite_artifact, tmp_path, pytestconfig):
    """`pytest -m edge` with a broken held-out image: one line naming the file, before any test runs (not the
    same error repeated by every test)."""
    import shutil
    import subprocess
    import sys

    artifact, test_dir = suite_artifact
    broken = tmp_path / "test"
    shutil.copytree(test_dir, broken)
    victim = next(broken.rglob("*.*"))
    victim.write_bytes(b"not an image at all")
    completed = subprocess.run(
        [
            sys.executable,
            "-m",
            "pytest",
            "-m",
            "edge",
            "-p",
            "no:xdist",
            "-p",
            "no:cacheprovider",
            "-q",
            f"--edgebench-artifact={artifact}",
            f"--edgebench-test-images={broken}",
        ],
        cwd=pytestconfig.rootpath,
        capture_output=True,
        text=True,
        timeout=300,
    )
    errors = [line for line in completed.stderr.splitlines() + completed.stdout.splitlines() if "ERROR" in line]
    assert completed.returncode == pytest.ExitCode.USAGE_ERROR, completed.stdout[-2000:] + completed.stderr[-2000:]
    assert len(errors) == 1 and str(victim) in errors[0] and "not a readable image" in errors[0], errors
    assert "passed" not in completed.stdout and "failed" not in completed.stdout
