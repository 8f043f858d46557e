"""The whole workflow end to end on a moto S3 server, through the same boto3 path a real bucket uses."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path

import boto3
import pytest

from harness import contract, data, edge, store, workflow
from harness.backends import PRECISIONS, result_label
from harness.backends.openvino import native_precisions
from harness.measure import TimingPlan
from harness.progress import SilentProgress
from harness.training import train


@pytest.fixture(scope="module")
def tiny_run_config():
    return {
        "generator": data.GeneratorConfig(images_per_class=6, seed=3),
        "validation_per_class": 4,
        "hyperparameters": train.Hyperparameters(epochs=1, batch_size=8, train_only_top_layer=False),
        "timing": TimingPlan(warmup=1, min_calls=5, min_seconds=0.0),
    }


class _Notes(SilentProgress):
    def __init__(self) -> None:
        self.lines: list[str] = []

    def note(self, line: str) -> None:
        self.lines.append(line)


def test_run_end_to_end_against_a_bucket(tmp_path, s3_location, tiny_run_config):
    """OpenVINO alone over its precision ladder: the TF FP32 reference is added, every rung gets a verdict."""
    notes = _Notes()
    result = workflow.run(
        workflow.RunConfig(
            s3=s3_location,
            reports_dir=tmp_path / "reports",
            cache_dir=tmp_path / "cache",
            run_id="e2e",
            backends=("openvino",),
            ladder=True,
            **tiny_run_config,
        ),
        notes,
    )
    report = result.report
    assert json.loads((tmp_path / "reports" / "e2e" / "report.json").read_text()) == report
    _assert_stored_and_imported(tmp_path, s3_location, report)
    candidates = {result_label("openvino", p): p for p in native_precisions("CPU")}
    _assert_planned_and_timed(report, notes, candidates)
    _assert_parity_verdicts(report, candidates)
    assert report["validation"]["images"] == 4 * len(data.WEATHER_CLASSES)
    assert set(report["validation"]["accuracy"]) == set(report["backends"])
    assert len(report["predictions"]) == len(data.WEATHER_CLASSES)
    assert report["machine"]["cpu_brand"] and report["machine"]["packages"]["openvino"]
    assert "aws_secret_access_key" not in json.dumps(report).lower() and "testing" not in json.dumps(report["s3"])


def _assert_stored_and_imported(tmp_path: Path, s3_location: store.S3Location, report: dict) -> None:
    # S3 holds the artifact where a SageMaker training job would put it, plus one test image per class.
    client = boto3.client("s3", endpoint_url=s3_location.endpoint_url)
    keys = sorted(o["Key"] for o in client.list_objects_v2(Bucket=s3_location.bucket)["Contents"])
    artifact_key = "suite/e2e/training-jobs/edgebench-e2e/output/model.tar.gz"
    assert artifact_key in keys
    test_keys = [k for k in keys if k.startswith("suite/e2e/test/")]
    assert sorted(k.split("/")[3] for k in test_keys) == list(data.WEATHER_CLASSES)
    # Beside them, INT8 calibration images for edge nodes: training images only, every class, at most the cap.
    calibration_keys = [k for k in keys if k.startswith("suite/e2e/calibration/")]
    assert {k.split("/")[3] for k in calibration_keys} == set(data.WEATHER_CLASSES)
    assert len(calibration_keys) == min(edge.CALIBRATION_IMAGES, report["dataset"]["train_images"])
    assert not {k.rsplit("/", 1)[1] for k in calibration_keys} & {k.rsplit("/", 1)[1] for k in test_keys}
    assert report["s3"]["calibration_images"] == f"s3://{s3_location.bucket}/suite/e2e/calibration/"
    head = client.head_object(Bucket=s3_location.bucket, Key=artifact_key)
    assert len(head["Metadata"][store.SHA256_METADATA]) == 64

    # The artifact is laid out as a JumpStart TF IC fine-tuning job writes it.
    with tarfile.open(tmp_path / "reports" / "e2e" / "work" / "training-output" / "model.tar.gz") as tar:
        names = set(tar.getnames())
    assert {"1/saved_model.pb", "1/variables/variables.index", contract.LABEL_MAP_FILE} <= names
    # The edge import is a separate download: it produced its own extracted copy and label map.
    edge_dir = tmp_path / "reports" / "e2e" / "work" / "edge"
    assert (edge_dir / "model" / "1" / "saved_model.pb").is_file()
    assert report["edge"]["classes"] == list(data.WEATHER_CLASSES)
    assert len(report["edge"]["test_images"]) == len(data.WEATHER_CLASSES)


def _assert_planned_and_timed(report: dict, notes: _Notes, candidates: dict[str, str]) -> None:
    # The reference was added (and said so), OpenVINO ran every precision this CPU runs natively, the others
    # are listed as skipped with a reason; each was timed.
    assert set(report["backends"]) == {"tf", *candidates}
    assert report["plan"]["reference_added"] and any("Reference tf FP32 added" in line for line in notes.lines)
    assert {s["precision"] for s in report["plan"]["skipped"]} == set(PRECISIONS) - set(candidates.values())
    assert all(s["reason"] for s in report["plan"]["skipped"])
    for name, result_ in report["backends"].items():
        assert result_["latency"]["n"] >= 5 and len(result_["latency"]["samples_ns"]) == result_["latency"]["n"]
        assert result_["describe"]["precision"] == candidates.get(name, "FP32")
    # Speedup per backend x precision: TF FP32 median / its median.
    medians = {name: r["latency"]["median_ms"] for name, r in report["backends"].items()}
    assert report["speedup"] == {name: pytest.approx(medians["tf"] / medians[name], abs=1e-3) for name in candidates}
    # INT8 was calibrated on the training split, never on held-out images.
    if "openvino-int8" in candidates:
        assert (
            report["backends"]["openvino-int8"]["describe"]["calibration_images"] == report["dataset"]["train_images"]
        )


def _assert_parity_verdicts(report: dict, candidates: dict[str, str]) -> None:
    # Every candidate has a verdict against TF FP32 on held-out + validation images, with accuracy against the
    # labels: each side's accuracy there is the image-weighted mean of its held-out and validation accuracy.
    assert set(report["parity"]) == set(candidates), report["parity"]
    assert report["parity"]["openvino"]["within_tolerance"], report["parity"]
    held_out, validation = len(data.WEATHER_CLASSES), report["validation"]["images"]
    for name, verdict in report["parity"].items():
        assert verdict["precision"] == candidates[name] and verdict["images"] == held_out + validation
        for side, label in (("reference_accuracy", "tf"), ("candidate_accuracy", name)):
            expected = report["accuracy"][label] * held_out + report["validation"]["accuracy"][label] * validation
            assert verdict[side] == pytest.approx(expected / (held_out + validation)), (name, side)
        assert verdict["accuracy_ratio"] is not None or verdict["reference_accuracy"] == 0


def test_embedded_s3_store_round_trips(tmp_path):
    """The offline default: `edgebench run` with no --bucket starts its own S3 and uses it."""
    source = tmp_path / "blob.bin"
    source.write_bytes(b"edgebench" * 1000)
    with workflow._s3_store(None, "r1") as s3:
        s3.upload_file(source, s3.location.key("blob.bin"))
        assert s3.location.key("blob.bin") == "edgebench/r1/blob.bin"
        assert s3.download_file("edgebench/r1/blob.bin", tmp_path / "copy.bin").read_bytes() == source.read_bytes()
        assert s3.location.endpoint_url.startswith("http://127.0.0.1:")


def test_predict_prints_jumpstart_verbose_json(suite_artifact, capsys):
    from harness import cli

    artifact, test_dir = suite_artifact
    images = sorted(p for p in test_dir.rglob("*") if p.is_file())[:2]
    answers = {}
    for backend in ("tf", "openvino"):
        assert cli.main(["predict", "--model", str(artifact), "--backend", backend, *map(str, images)]) == 0
        answers[backend] = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    for tf_answer, ov_answer in zip(*answers.values(), strict=True):
        assert set(tf_answer) == {"image", "probabilities", "labels", "predicted_label"}
        assert tf_answer["labels"] == list(data.WEATHER_CLASSES)
        assert abs(sum(tf_answer["probabilities"]) - 1) < 1e-6
        best = max(range(5), key=tf_answer["probabilities"].__getitem__)
        assert tf_answer["predicted_label"] == tf_answer["labels"][best] == ov_answer["predicted_label"]
    assert len(answers["tf"]) == 2


def test_sagemaker_trainer_through_the_cli_offline(tmp_path, capsys):
    """`edgebench train --trainer sagemaker` offline: moto records the job, the container is played here."""
    from harness import cli

    code = cli.main(
        [
            "train",
            "--trainer",
            "sagemaker",
            "--images-per-class",
            "4",
            "--epochs",
            "1",
            "--hp",
            "batch_size=8",
            "--reports-dir",
            str(tmp_path / "r"),
            "--cache-dir",
            str(tmp_path / "c"),
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "/training-jobs/edgebench-" in out and "/output/model.tar.gz" in out
    [run_dir] = (tmp_path / "r").iterdir()
    document = json.loads((run_dir / "report.json").read_text())
    assert document["training"]["trainer"] == "sagemaker" and document["training"]["job"]["status"] == "Completed"
    assert tarfile.is_tarfile(run_dir / "model.tar.gz")
