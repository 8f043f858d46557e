"""Fleet INT8 calibration images: beside the artifact in S3, imported on the node (validated, or refused in
one line naming the source), and the inputs `edgebench fleet run` stages before any node runs."""

from __future__ import annotations

from pathlib import Path

import pytest

from harness import data, edge, fileio, fleet, store
from harness.errors import DatasetError, StoreError


@pytest.fixture
def training_images(tmp_path) -> Path:
    """A small {class}/{image} folder of generated training images (5 classes, 2 images each)."""
    return data.generate_weather_dataset(tmp_path / "training", data.GeneratorConfig(images_per_class=2, seed=3))


def _files(root: Path) -> dict[str, bytes]:
    return {p.relative_to(root).as_posix(): p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def test_calibration_images_from_s3_land_in_the_edge_folder_validated(
    s3_location, training_images, tmp_path, monkeypatch
):
    s3 = store.S3Store(s3_location)
    s3.upload_tree(training_images, s3_location.key("artifacts", "run-c", "calibration"))
    uri = s3_location.uri(s3_location.key("artifacts", "run-c", "calibration"))
    dest = tmp_path / "edge" / "calibration"
    (dest / "old").mkdir(parents=True)
    (dest / "old" / "stale.png").write_bytes(b"from an earlier run")
    assert edge.import_calibration(uri, dest, s3) == dest
    assert _files(dest) == _files(training_images)  # replaced, not merged; bytes as uploaded
    assert data.load_dataset(dest).classes == data.WEATHER_CLASSES

    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_location.endpoint_url)  # no store given: the standard chain
    assert edge.import_calibration(uri + "/", tmp_path / "again", None) == tmp_path / "again"
    assert _files(tmp_path / "again") == _files(training_images)

    local = tmp_path / "not-touched"
    assert edge.import_calibration(str(training_images), local, s3) == training_images and not local.exists()


def test_calibration_errors_name_the_source_and_leave_no_folder(s3_location, training_images, tmp_path):
    s3 = store.S3Store(s3_location)
    base = s3_location.key("calibration")
    s3.upload_tree(training_images, f"{base}/mixed")
    fileio.write_text(tmp_path / "notes.txt", "not an image\n")
    s3.upload_file(tmp_path / "notes.txt", f"{base}/mixed/cloudy/notes.txt")
    s3.upload_file(next((training_images / "sunny").iterdir()), f"{base}/one-class/sunny/a.png")
    uri = s3_location.uri(base)
    dest = tmp_path / "edge" / "calibration"
    cases = [
        (f"{uri}/mixed", DatasetError, f"calibration images: {uri}/mixed/cloudy/notes.txt: not an image file"),
        (f"{uri}/one-class", DatasetError, f"calibration images: dataset {uri}/one-class: found 1 class folder"),
        (f"{uri}/missing", StoreError, f"calibration images: {uri}/missing/: no objects under this prefix"),
        (f"s3://{s3_location.bucket}-gone/x", StoreError, "bucket does not exist"),
        (f"s3://{s3_location.bucket}", StoreError, "no prefix; pass s3://BUCKET/PREFIX"),
        (str(tmp_path / "nowhere"), DatasetError, f"dataset {tmp_path / 'nowhere'}: not a directory"),
    ]
    for source, error, message in cases:
        with pytest.raises(error) as caught:
            edge.import_calibration(source, dest, s3)
        text = str(caught.value)
        assert message in text and "\n" not in text and str(tmp_path / "edge") not in text, text
        assert not dest.exists() and not list(tmp_path.glob("edge/.calibration*")), "a partial download was left"


def test_fleet_run_uploads_a_capped_calibration_subset_beside_the_artifact(s3_location, tmp_path):
    """A local --calibration-images folder: validated before anything is uploaded, then at most
    CALIBRATION_IMAGES of it, the classes taking turns, under artifacts/<run-id>/calibration/; the nodes get
    that prefix with --edgebench-calibration."""
    import tarfile

    per_class = fleet.CALIBRATION_IMAGES // len(data.WEATHER_CLASSES) + 3  # more than the cap allows
    training = data.generate_weather_dataset(tmp_path / "training", data.GeneratorConfig(images_per_class=per_class))
    readme = fileio.write_text(tmp_path / "README.txt", "stands in for a model; the nodes are not run here\n")
    with tarfile.open(tmp_path / "model.tar.gz", "w:gz") as tar:
        tar.add(readme, "README.txt")
    notes: list[str] = []

    def inputs(calibration: str, run_id: str = "run-c"):
        given = fleet.FleetInputs(str(tmp_path / "model.tar.gz"), calibration_images=calibration)
        staged = fleet.stage_inputs(store.S3Store(s3_location), run_id, given, train=pytest.fail, note=notes.append)
        return staged.artifact_uri, staged.test_uri, staged.calibration_uri

    artifact_uri, test_uri, calibration_uri = inputs(str(training))
    s3 = store.S3Store(s3_location)
    prefix = s3_location.key("artifacts", "run-c", "calibration")
    assert calibration_uri == s3_location.uri(prefix) and test_uri is None
    keys = s3.list_keys(prefix)
    per_class_uploaded = {c: sum(1 for k in keys if k.startswith(f"{prefix}/{c}/")) for c in data.WEATHER_CLASSES}
    assert len(keys) == fleet.CALIBRATION_IMAGES
    assert set(per_class_uploaded.values()) == {fleet.CALIBRATION_IMAGES // len(data.WEATHER_CLASSES)}
    assert any(f"{fleet.CALIBRATION_IMAGES} of the {per_class * 5} images" in line for line in notes)
    spec = fleet.NodeSpec("run-c", "n", artifact_uri, s3_location, test_uri, calibration_uri)
    assert f"--edgebench-calibration={calibration_uri}" in fleet.suite_command(spec, tmp_path)

    fileio.write_text(training / "README.txt", "a stray file\n")
    with pytest.raises(DatasetError, match=f"calibration images: dataset {training}: file 'README.txt'"):
        inputs(str(training), run_id="run-bad")
    assert not s3.list_keys(s3_location.key("artifacts", "run-bad"))  # refused before any upload
    assert inputs("s3://elsewhere/calibration")[2] == "s3://elsewhere/calibration"
    # a local artifact with test images already in S3: the artifact is uploaded, the images stay where they are
    given = fleet.FleetInputs(str(tmp_path / "model.tar.gz"), test_images="s3://elsewhere/test")
    staged = fleet.stage_inputs(store.S3Store(s3_location), "run-t", given, train=pytest.fail)
    assert staged.test_uri == "s3://elsewhere/test"
    assert staged.artifact_uri == s3_location.uri(s3_location.key("artifacts", "run-t", "model.tar.gz"))


def test_fleet_run_refuses_local_images_with_an_s3_artifact_in_one_line(tmp_path, capsys):
    from harness.cli import main

    for option in ("--test-images", "--calibration-images"):
        code = main(["fleet", "run", "--artifact", "s3://bucket/model.tar.gz", option, str(tmp_path)])
        err = capsys.readouterr().err
        assert code == 1 and err.count("\n") == 1, err
        assert err.startswith(f"edgebench: error: {option}: with an s3:// --artifact") and "s3://BUCKET/PREFIX" in err
