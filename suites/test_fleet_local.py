"""Fleet on a local Dask cluster: the edge suite on every node, results per node in (moto) S3, one merged report.

The local cluster's worker processes are the nodes; each runs a real ``pytest -m edge`` child against the
suite model uploaded to the session's moto server, restricted with ``-k`` to keep the suite short here.
"""

from __future__ import annotations

import dataclasses
import json
import os
import signal
import threading
import time

import pytest

from fleet_helpers import NULL_ONLY, download, first_worker_running_pytest, suite_node_spec
from harness import fleet, store
from harness.fleet import clusters


@pytest.fixture
def fleet_spec(s3_location: store.S3Location, suite_artifacts) -> fleet.NodeSpec:
    """The suite model and its images in the test bucket, and where node results go (fleet_helpers)."""
    return suite_node_spec(s3_location, suite_artifacts)


@pytest.fixture
def local_client():
    with clusters.open_cluster(clusters.ClusterOptions("local", nodes=2)) as client:
        yield client


def test_two_local_nodes_land_in_s3_and_merge(fleet_spec, local_client, tmp_path):
    result = fleet.run_fleet(local_client, fleet_spec)
    assert [n.status for n in result.nodes] == ["complete", "complete"], result.nodes
    keys = store.S3Store(fleet_spec.results).list_keys(fleet.run_prefix(fleet_spec.results, "run-1"))
    for node in result.nodes:
        for name in ("benchmark.json", "report.json", "junit.xml", "log.txt", "manifest.json"):
            assert f"{fleet.run_prefix(fleet_spec.results, 'run-1')}/{node.node_id}/{name}" in keys

    merged = fleet.merge_run(download(fleet_spec, tmp_path))
    assert not merged.failures and len(merged.nodes) == 2
    summary = merged.to_json()
    assert summary["openvino_ok"] == 2
    (processor,) = summary["processors"]  # both nodes are this machine
    rungs = {rung["label"]: rung for rung in processor["ladder"]}
    assert processor["nodes"] == 2 and {"tf", "openvino", "openvino-int8"} <= set(rungs) and "null" not in rungs
    for label in ("tf", "openvino", "openvino-int8"):  # INT8 ran on every node: calibration came with the artifact
        assert rungs[label]["nodes_ran"] == 2 and rungs[label]["median_ms"] > 0 and rungs[label]["accuracy"] > 0.5
    assert rungs["openvino-int8"]["precision"] == "INT8" and rungs["openvino-int8"]["judged"] == 2
    assert rungs["openvino"]["within_tolerance"] == 2 and rungs["openvino"]["top1_agreement"] == 1.0
    for row in summary["nodes"]:
        tf, ov = row["ladder"]["tf"]["median_ms"], row["ladder"]["openvino"]["median_ms"]
        assert row["ladder"]["openvino"]["speedup"] == pytest.approx(tf / ov)
        assert row["tests"]["failed"] == 0 and row["tests"]["passed"] >= 4 and row["rungs_not_run"] == []
        assert row["tests"]["not_run"] == len(row["not_run_tests"])  # precisions this processor does not run
    json_path, html_path = fleet.write_merged(merged, tmp_path / "merged")
    page = html_path.read_text()
    assert "data:image/png;base64," in page and "Precision ladder" in page and processor["cpu"] in page
    assert json.loads(json_path.read_text())["schema"] == fleet.FLEET_SCHEMA


def test_a_worker_killed_mid_run_fails_its_node_only_and_resume_completes_it(fleet_spec, local_client, tmp_path):
    """Kill one worker while its node's suite runs: that node is failed with a reason, the other node's
    results are intact; the same run id again skips the complete node and runs the failed one."""
    import psutil

    spec = dataclasses.replace(fleet_spec, pytest_args=NULL_ONLY, run_id="run-kill")
    pids = local_client.run(os.getpid)  # worker address -> pid
    outcome: dict[str, fleet.FleetResult] = {}
    runner = threading.Thread(target=lambda: outcome.setdefault("result", fleet.run_fleet(local_client, spec)))
    runner.start()
    victim = first_worker_running_pytest(pids, psutil)
    os.kill(pids[victim], signal.SIGKILL)
    runner.join(timeout=600)
    result = outcome["result"]
    failed = [n for n in result.nodes if n.status == "failed"]
    assert len(failed) == 1 and failed[0].worker == victim, result.nodes
    assert "died" in failed[0].reason or "Killed" in failed[0].reason
    (survivor,) = [n for n in result.nodes if n.status == "complete"]

    merged = fleet.merge_run(download(spec, tmp_path / "first"))
    assert [d["node_id"] for d in merged.nodes] == [survivor.node_id]
    assert [f["node_id"] for f in merged.failures] == [failed[0].node_id]

    local_client.wait_for_workers(2, timeout=120)  # the nanny restarts the killed worker under its name
    again = fleet.run_fleet(local_client, spec)
    statuses = {n.node_id: n.status for n in again.nodes}
    assert statuses == {survivor.node_id: "skipped", failed[0].node_id: "complete"}, again.nodes
    merged = fleet.merge_run(download(spec, tmp_path / "resumed"))
    assert len(merged.nodes) == 2 and not merged.failures

    forced = fleet.run_fleet(local_client, dataclasses.replace(spec, force=True, timeout_s=1))
    assert {n.status for n in forced.nodes} == {"failed"}  # re-run on purpose, and it failed this time:
    merged = fleet.merge_run(download(spec, tmp_path / "forced"))  # no stale manifest says "complete"
    assert not merged.nodes and len(merged.failures) == 2


def test_node_timeout_and_suite_errors_are_failures_with_reason_and_log(fleet_spec, local_client, tmp_path):
    timed_out = fleet.run_fleet(local_client, dataclasses.replace(fleet_spec, run_id="run-timeout", timeout_s=2))
    assert {n.status for n in timed_out.nodes} == {"failed"}
    assert all("timed out after 2 s" in n.reason for n in timed_out.nodes)

    broken = dataclasses.replace(fleet_spec, run_id="run-broken", artifact_uri=fleet_spec.artifact_uri + "-missing")
    result = fleet.run_fleet(local_client, broken)
    assert {n.status for n in result.nodes} == {"failed"}
    merged = fleet.merge_run(download(broken, tmp_path))
    assert not merged.nodes and len(merged.failures) == 2
    for failure in merged.failures:  # the reason names the missing object; the log tail is the suite's
        assert "model.tar.gz-missing" in failure["reason"], failure["reason"]
        assert "model.tar.gz-missing" in failure["log_tail"]


# ------------------------------------------------------------------------------------------------
# Benchmark: figure printed in the terminal summary, serial pass (latency marker)


@pytest.mark.latency
def test_fan_out_overhead_of_a_two_node_local_run(benchmark, fleet_spec, tmp_path, record_property):
    """The same node suite run directly twice (as a user would, `pytest -m edge ...`) and through a 2-node
    local fleet: overhead = fleet time without cluster start-up ÷ (both direct runs) − 1 (the nodes share
    this host and take turns). Printed with the cluster start-up seconds."""
    import subprocess

    spec = dataclasses.replace(fleet_spec, run_id="run-overhead", node_id="direct")
    env = {**os.environ, "AWS_ENDPOINT_URL": spec.results.endpoint_url, "TF_CPP_MIN_LOG_LEVEL": "2"}
    out = tmp_path / "direct"
    out.mkdir()
    start = time.perf_counter()
    for _ in range(2):
        subprocess.run(fleet.suite_command(spec, out), cwd=spec.suite_dir, env=env, check=True, capture_output=True)
    direct = time.perf_counter() - start
    timings = {}

    def fleet_run():
        started = time.perf_counter()
        with clusters.open_cluster(clusters.ClusterOptions("local", nodes=2)) as client:
            timings["startup"] = time.perf_counter() - started
            result = fleet.run_fleet(client, dataclasses.replace(spec, force=True))
        timings["total"] = time.perf_counter() - started
        return result

    result = benchmark.pedantic(fleet_run, rounds=1, iterations=1)
    assert [n.status for n in result.nodes] == ["complete", "complete"]
    overhead = (timings["total"] - timings["startup"]) / direct - 1
    benchmark.extra_info.update({"direct_s": direct, "startup_s": timings["startup"], "overhead": overhead})
    record_property(
        "edgebench_figure",
        f"fleet fan-out: 2-node local run {timings['total']:.1f} s = cluster start "
        f"{timings['startup']:.1f} s + nodes; the suite run directly twice "
        f"{direct:.1f} s; overhead beyond start-up {overhead:+.1%} (target <= 10 %)",
    )
