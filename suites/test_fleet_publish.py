"""Fleet node results into S3: a failed upload never leaves a manifest, and a node without a cluster uploads
its pytest files with `edgebench upload` for `edgebench report s3://…` to merge."""

from __future__ import annotations

import json

import pytest

from fleet_helpers import synthetic_node
from harness import fileio, fleet, store
from harness.errors import StoreError


def test_failed_upload_never_leaves_a_manifest(s3_location, tmp_path):
    """S3 answers 500 for report.json: boto3 retries (standard mode), then the publish fails before the
    manifest, so the node folder never looks complete."""
    s3 = store.S3Store(s3_location).under("runs", "run-x", "node-a")
    files = {
        name: fileio.write_text(tmp_path / name, "{}\n" if name.endswith(".json") else "x\n")
        for name in ("benchmark.json", "report.json", "log.txt")
    }
    attempts = []

    def fail_report(request, **_):
        if request.url.split("?")[0].endswith("/report.json") and request.method == "PUT":
            attempts.append(1)
            from botocore.awsrequest import AWSResponse

            class Raw:
                def stream(self, **_):
                    yield b""

            return AWSResponse(request.url, 500, {}, Raw())
        return None

    s3.client.meta.events.register("before-send.s3.PutObject", fail_report)
    with pytest.raises(StoreError):
        fleet.publish_node(s3, "run-x", "node-a", files)
    assert len(attempts) == store.RETRIES.retries["total_max_attempts"]  # retried, then given up
    assert not fleet.has_manifest(s3)


def test_upload_then_report_from_s3(s3_location, tmp_path, monkeypatch):
    """A node without a cluster: `edgebench upload` its pytest files, `edgebench report s3://…` merges."""
    from harness.cli import main

    node = synthetic_node(tmp_path / "node", "Intel(R) Xeon(R) Gold 6338N", tf_ms=20.0, ov_ms=5.0)
    code = main(
        [
            "upload",
            "--run-id",
            "run-up",
            "--node-id",
            "edge-01",
            "--benchmark",
            str(node / "benchmark.json"),
            "--node-report",
            str(node / "report.json"),
            "--bucket",
            s3_location.bucket,
            "--prefix",
            s3_location.prefix,
            "--endpoint-url",
            s3_location.endpoint_url,
        ]
    )
    assert code == 0
    uri = f"s3://{s3_location.bucket}/{s3_location.prefix}/runs/run-up/"
    monkeypatch.chdir(tmp_path)
    assert main(["report", uri, "--endpoint-url", s3_location.endpoint_url]) == 0
    merged = json.loads((tmp_path / "reports" / "fleet" / "run-up" / "fleet-report.json").read_text())
    (row,) = merged["nodes"]
    assert row["node_id"] == "edge-01" and row["verdict"] == "pass"
    assert row["ladder"]["openvino"]["speedup"] == pytest.approx(4.0, rel=0.05)
    assert row["ladder"]["openvino-int8"]["speedup"] == pytest.approx(8.0, rel=0.05)
