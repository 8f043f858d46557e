"""Every S3 operation edgebench performs, under every fault the proxy in ``harness/s3_faults.py`` injects.

The operations are edgebench's own calls through boto3, pointed at a fault-injecting proxy in front of the
session's moto server: the training-channel upload (``upload_tree`` under ``channels/training``, as
``sagemaker_job.train_on_sagemaker``), the model upload (``upload_file`` to the job's artifact key, as
``LocalTrainer``), the test-image upload (``upload_tree`` under ``test``, as the workflow), the edge import
(``edge.import_from_s3``: model.tar.gz, multipart-sized, and the test images), the fleet publish
(``fleet.publish_node``: files, then the manifest) and the report download (``fleet.download_run``). Inputs
are seeded and outcomes checked straight against moto, past the proxy.

Each case must succeed after retries or fail with one line of edgebench's StoreError naming the object; and
whatever happened, nothing may be lost or corrupted: no object that differs from its file, no node manifest
without all of its files intact, no partial or differing file in an import or report folder. Transient faults
(the first 2 requests) must end in success; persistent ones (every request) may fail, cleanly. The default
run holds each fault transient on each operation plus persistent byte flips and truncations; ``-m slow``
adds every fault persistent and every fault at a rate of 1 in 3. The run prints the table.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest

from harness import contract, data, edge, fleet, store
from harness.errors import StoreError
from harness.s3_faults import KINDS, Fault, FaultProxy
from harness.training import trainers

UPLOADS = ("PutObject", "UploadPart")
DOWNLOADS = ("GetObject",)
CLASSES = ("cloudy", "sunny")
RUN_ID, NODES = "faultrun", ("node-a", "node-b")


@dataclass(frozen=True)
class Operation:
    name: str
    data_requests: tuple[str, ...]  # where a flip or a truncation lands: object bytes going up or coming down
    seed: Callable[[store.S3Store, Inputs], None]  # straight to moto, no faults
    run: Callable[[store.S3Store, Inputs, Path], None]  # through the proxy
    check: Callable[[store.S3Store, Inputs, Path, bool], None]  # nothing lost or corrupted; bool: it succeeded


@dataclass(frozen=True)
class Inputs:
    artifact: Path  # a model.tar.gz over the multipart threshold (the import downloads it in ranges)
    images: Path  # {class}/{image}: the training channel and the test images
    node_files: dict[str, Path]


@pytest.fixture(scope="module")
def inputs(tmp_path_factory: pytest.TempPathFactory) -> Inputs:
    root = tmp_path_factory.mktemp("s3-fault-inputs")
    model_dir = root / "model"
    (model_dir / contract.SAVED_MODEL_DIR).mkdir(parents=True)
    (model_dir / contract.SAVED_MODEL_DIR / "saved_model.pb").write_bytes(os.urandom(9 * 1024 * 1024))
    (model_dir / contract.LABEL_MAP_FILE).write_text(json.dumps({c: i for i, c in enumerate(CLASSES)}))
    artifact = contract.tar_model_dir(model_dir, root / "model.tar.gz")
    images = root / "images"
    for i, label in enumerate(CLASSES * 2):
        (images / label).mkdir(parents=True, exist_ok=True)
        data.generated_image(label, seed=i).save(images / label / f"{i}.jpg", quality=90)
    files = {}
    for name in fleet.NODE_FILES:
        files[name] = root / "node" / name
        files[name].parent.mkdir(exist_ok=True)
        files[name].write_bytes(os.urandom(2048))
    return Inputs(artifact, images, files)


def _same(direct: store.S3Store, key: str, path: Path) -> bool:
    body = direct.client.get_object(Bucket=direct.location.bucket, Key=key)["Body"].read()
    return body == path.read_bytes()


def _stored(direct: store.S3Store, prefix: str) -> list[str]:
    return direct.list_keys(prefix) if prefix else []


def _files(root: Path) -> dict[str, Path]:
    return {p.relative_to(root).as_posix(): p for p in sorted(root.rglob("*")) if p.is_file()}


# ------------------------------------------------------------------------------------------------
# The operations


def _check_tree(prefix: str) -> Callable[[store.S3Store, Inputs, Path, bool], None]:
    def check(direct: store.S3Store, inputs: Inputs, work: Path, succeeded: bool) -> None:
        sources = _files(inputs.images)
        stored = _stored(direct, direct.location.key(prefix))
        for key in stored:  # whatever is there is whole
            assert _same(direct, key, sources[key.split(f"{prefix}/", 1)[1]]), f"{key} differs from its file"
        if succeeded:
            assert len(stored) == len(sources), f"upload reported success, {len(sources) - len(stored)} lost"

    return check


def _check_model(direct: store.S3Store, inputs: Inputs, work: Path, succeeded: bool) -> None:
    key = trainers.artifact_key(direct, "fault-job")
    present = key in _stored(direct, direct.location.key("training-jobs"))
    if present:
        assert _same(direct, key, inputs.artifact), "model.tar.gz in S3 differs from the trained one"
    assert present or not succeeded, "upload reported success, the model is missing"


def _seed_import(direct: store.S3Store, inputs: Inputs) -> None:
    direct.upload_file(inputs.artifact, "in/model.tar.gz")
    direct.upload_tree(inputs.images, "in/test")


def _run_import(s3: store.S3Store, inputs: Inputs, work: Path) -> None:
    bucket = s3.location.bucket
    model = edge.import_from_s3(s3, f"s3://{bucket}/in/model.tar.gz", f"s3://{bucket}/in/test/", work / "edge")
    assert model.classes == CLASSES and len(model.test_images) == len(_files(inputs.images))


def _check_import(direct: store.S3Store, inputs: Inputs, work: Path, succeeded: bool) -> None:
    edge_dir = work / "edge"
    if not edge_dir.exists():
        return
    present = _files(edge_dir)
    assert not [n for n in present if n.endswith(".partial") or "/." in f"/{n}"], f"leftovers: {list(present)}"
    if "model.tar.gz" in present:
        assert present["model.tar.gz"].read_bytes() == inputs.artifact.read_bytes(), "partial model.tar.gz"
    sources = _files(inputs.images)
    tests = {n.removeprefix("test/"): p for n, p in present.items() if n.startswith("test/")}
    assert not tests or tests.keys() == sources.keys(), f"a partial test set: {sorted(tests)}"
    for name, path in tests.items():
        assert path.read_bytes() == sources[name].read_bytes(), f"test image {name} differs"
    assert succeeded or "model" not in {p.split("/")[0] for p in present}, "a failed import left a model"


def _node_store(s3: store.S3Store, node: str) -> store.S3Store:
    return store.S3Store(s3.location, store.FAKE_CREDENTIALS).under("runs", RUN_ID, node)


def _run_publish(s3: store.S3Store, inputs: Inputs, work: Path) -> None:
    fleet.publish_node(_node_store(s3, NODES[0]), RUN_ID, NODES[0], inputs.node_files)


def _check_publish(direct: store.S3Store, inputs: Inputs, work: Path, succeeded: bool) -> None:
    node = _node_store(direct, NODES[0])
    manifest_key = node.location.key(fleet.MANIFEST)
    stored = _stored(direct, node.location.prefix)
    assert succeeded <= (manifest_key in stored), "publish reported success without a manifest"
    if manifest_key not in stored:
        return
    manifest = json.loads(direct.client.get_object(Bucket=direct.location.bucket, Key=manifest_key)["Body"].read())
    for name, entry in manifest["files"].items():
        body = direct.client.get_object(Bucket=direct.location.bucket, Key=node.location.key(name))["Body"].read()
        assert hashlib.sha256(body).hexdigest() == entry["sha256"] and len(body) == entry["bytes"], (
            f"manifest lists {name}, S3 holds other bytes"
        )
    assert set(manifest["files"]) == set(inputs.node_files)


def _seed_run(direct: store.S3Store, inputs: Inputs) -> None:
    for node in NODES:
        fleet.publish_node(_node_store(direct, node), RUN_ID, node, inputs.node_files)


def _run_download(s3: store.S3Store, inputs: Inputs, work: Path) -> None:
    fleet.download_run(s3.location, RUN_ID, work / "report", store.FAKE_CREDENTIALS)


def _check_download(direct: store.S3Store, inputs: Inputs, work: Path, succeeded: bool) -> None:
    dest = work / "report"
    assert dest.exists() == succeeded, "a failed download left a report folder" if dest.exists() else "lost"
    assert [p for p in work.iterdir() if p.name != "report"] == [], "staging leftovers"
    if succeeded:
        present = _files(dest)
        assert set(present) == {f"{n}/{f}" for n in NODES for f in (*inputs.node_files, fleet.MANIFEST)}
        for name, path in present.items():
            if not name.endswith(fleet.MANIFEST):
                assert path.read_bytes() == inputs.node_files[name.split("/")[1]].read_bytes(), f"{name} differs"


def _nothing(direct: store.S3Store, inputs: Inputs) -> None:
    pass


OPERATIONS = {
    op.name: op
    for op in (
        Operation(
            "training upload",
            UPLOADS,
            _nothing,
            lambda s3, i, w: s3.upload_tree(i.images, s3.location.key("channels", "training")),
            _check_tree("channels/training"),
        ),
        Operation(
            "model upload",
            UPLOADS,
            _nothing,
            lambda s3, i, w: s3.upload_file(i.artifact, trainers.artifact_key(s3, "fault-job")),
            _check_model,
        ),
        Operation(
            "test-image upload",
            UPLOADS,
            _nothing,
            lambda s3, i, w: s3.upload_tree(i.images, s3.location.key("test")),
            _check_tree("test"),
        ),
        Operation("import", DOWNLOADS, _seed_import, _run_import, _check_import),
        Operation("fleet publish", UPLOADS, _nothing, _run_publish, _check_publish),
        Operation("report download", DOWNLOADS, _seed_run, _run_download, _check_download),
    )
}


# ------------------------------------------------------------------------------------------------
# The cases


def fault_for(kind: str, operation: Operation, mode: str) -> Fault:
    """Byte faults on the requests carrying object bytes; the others on any request (listings, HEADs,
    multipart starts and ends too). ``transient``: the first 2 matching requests (a 2 s delay: the first one);
    ``persistent``: all; ``rate``: 1 in 3."""
    targets = operation.data_requests if kind in ("flip", "truncate") else ("*",)
    how = {"transient": {"first": 1 if kind == "delay" else 2}, "persistent": {"rate": 1.0}, "rate": {"rate": 1 / 3}}[
        mode
    ]
    return Fault(kind, targets, delay_s=2.0, **how)


def cases() -> list:
    quick = [(kind, "transient") for kind in KINDS] + [("flip", "persistent"), ("truncate", "persistent")]
    slow = [(kind, "persistent") for kind in KINDS if kind not in ("flip", "truncate")] + [
        (kind, "rate") for kind in KINDS
    ]
    return [
        pytest.param(
            kind,
            mode,
            op,
            id=f"{kind}-{mode}-{op.replace(' ', '-')}",
            marks=[pytest.mark.slow] if (kind, mode) in slow else [],
        )
        for kind, mode in quick + slow
        for op in OPERATIONS
    ]


@pytest.fixture
def proxy(s3_endpoint: str):
    with FaultProxy(s3_endpoint) as running:
        yield running


@pytest.mark.parametrize("kind, mode, operation_name", cases())
def test_operation_under_fault(kind, mode, operation_name, inputs, proxy, s3_location, tmp_path, record_property):
    operation = OPERATIONS[operation_name]
    direct = store.S3Store(s3_location)
    operation.seed(direct, inputs)
    proxy.set_faults([fault_for(kind, operation, mode)])
    through_proxy = store.S3Store(dataclasses.replace(s3_location, endpoint_url=proxy.endpoint))
    started, error = time.monotonic(), None
    try:
        operation.run(through_proxy, inputs, tmp_path)
    except StoreError as exc:
        error = str(exc)
    seconds = time.monotonic() - started
    injected = len(proxy.injected)
    proxy.set_faults([])
    outcome = "lost"
    try:
        operation.check(direct, inputs, tmp_path, error is None)
        outcome = "retried" if error is None else "clean"
    finally:
        record_property(
            "s3_fault",
            {
                "fault": f"{kind} ({mode})",
                "operation": operation_name,
                "outcome": outcome,
                "injected": injected,
                "error": error,
            },
        )
    assert injected, f"no {kind} was injected: the case proves nothing"
    if error is not None:
        assert "\n" not in error and f"s3://{s3_location.bucket}/" in error, f"not one line naming the object: {error}"
    assert mode == "persistent" or error is None, f"a {mode} {kind} was not retried: {error}"
    assert seconds < 90, f"took {seconds:.0f} s"


def test_report_from_s3_under_persistent_corruption_is_one_line_from_the_cli(
    inputs, proxy, s3_location, tmp_path, capsys
):
    """``edgebench report s3://…/runs/<id>/``: every GetObject comes back with a flipped byte; the command
    exits 1 with one line naming the object, and leaves no fleet folder behind."""
    from harness import cli

    _seed_run(store.S3Store(s3_location), inputs)
    proxy.set_faults([Fault("flip", DOWNLOADS, rate=1.0)])
    run_uri = f"s3://{s3_location.bucket}/{s3_location.prefix}/runs/{RUN_ID}/"
    code = cli.main(["report", run_uri, "--endpoint-url", proxy.endpoint, "--reports-dir", str(tmp_path / "reports")])
    err = capsys.readouterr().err.strip()
    assert code == 1 and len(proxy.injected) >= 3
    assert err.count("\n") == 0 and err.startswith(f"edgebench: error: s3://{s3_location.bucket}/"), err
    assert "on each of 3 downloads" in err, err
    assert not (tmp_path / "reports" / "fleet" / RUN_ID).exists()
