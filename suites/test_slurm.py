"""The fleet on a real Slurm (Debian's slurmctld/slurmd/munge 22.05) started on 127.0.0.1 for the session.

Jobs are submitted by ``sbatch`` through dask-jobqueue, cancelled by ``scancel`` and killed at their walltime
by Slurm itself. Each node runs the short node suite of the fleet suites (``fleet_helpers.py``) against the
artifact in the session's moto S3. Marked ``slurm`` (serial: one cluster per session; ``make test-slurm``, part of
``make test``); skipped, with the exact reason, where Slurm is not installed or cannot start.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import shlex
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from fleet_helpers import NULL_ONLY, QUICK_SUITE, download, first_worker_running_pytest, suite_node_spec
from harness import fleet, store
from harness.errors import ConfigError
from harness.fleet import clusters, slurm_local

pytestmark = pytest.mark.slurm


@pytest.fixture
def fleet_spec(s3_location: store.S3Location, suite_artifacts) -> fleet.NodeSpec:
    """The suite model and its images in the test bucket, and where node results go (fleet_helpers)."""
    return suite_node_spec(s3_location, suite_artifacts)


@pytest.fixture(scope="session")
def slurm_cluster(tmp_path_factory) -> slurm_local.LocalSlurm:
    """munged, slurmctld and slurmd for the session, one node with this machine's CPUs, memory and features."""
    try:
        with slurm_local.local_slurm(tmp_path_factory.mktemp("slurm")) as cluster:
            yield cluster
    except slurm_local.SlurmUnavailable as exc:
        pytest.skip(str(exc))


@pytest.fixture
def slurm_options(slurm_cluster, tmp_path) -> clusters.ClusterOptions:
    """Two one-core jobs, so both fit the node at once (its cores are the machine's); job output in tmp_path."""
    return clusters.ClusterOptions(
        "slurm", nodes=2, cores=1, memory="2GB", walltime="00:20:00", log_directory=str(tmp_path / "jobs")
    )


def _scontrol(job_id: str) -> dict[str, str]:
    return clusters.slurm_job_states([job_id])[job_id]


def test_a_real_sbatch_job_runs_on_the_local_node(slurm_cluster, tmp_path):
    out = tmp_path / "job.out"
    feature = slurm_cluster.features[0]
    submitted = subprocess.run(
        [
            "sbatch",
            "--wait",
            "--parsable",
            f"--constraint={feature}",
            "-t",
            "1",
            "-o",
            str(out),
            "--wrap",
            "echo job=$SLURM_JOB_ID node=$SLURMD_NODENAME; python3 -c 'print(6*7)'",
        ],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert submitted.returncode == 0, submitted.stderr
    job_id = submitted.stdout.strip().split(";")[0]
    assert out.read_text().split() == [f"job={job_id}", f"node={slurm_cluster.node}", "42"]
    state = _scontrol(job_id)
    assert state["JobState"] == "COMPLETED" and state["Features"] == feature and state["ExitCode"] == "0:0"
    info = subprocess.run(["sinfo", "-h", "-N", "-o", "%N %c %m %f %t"], capture_output=True, text=True).stdout.split()
    assert info == [
        slurm_cluster.node,
        str(slurm_cluster.cpus),
        str(slurm_cluster.memory_mb),
        ",".join(slurm_cluster.features),
        "idle",
    ]


def test_fleet_run_through_slurm_two_nodes_complete_and_merge(
    slurm_cluster, fleet_spec, tmp_path, monkeypatch, capsys, record_property
):
    """`edgebench fleet run --cluster slurm --nodes 2 --processor <this CPU's feature>`: two sbatch jobs with a
    real --constraint, each running the short node suite against the artifact in S3; merged. Prints the
    scheduler's overhead: submission to the workers connecting, and the fan-out against a direct run."""
    from harness.cli import main

    feature = slurm_cluster.features[0]
    monkeypatch.chdir(tmp_path)
    code = main(_two_node_fleet_run_argv(fleet_spec, feature))
    printed = capsys.readouterr().out
    assert code == 0, printed
    connect_s = float(re.search(r"2 worker\(s\) connected ([\d.]+) s after", printed).group(1))
    fleet_s = float(re.search(r"2 node\(s\) in (\d+) s, 0 failed", printed).group(1))
    summary = json.loads((tmp_path / "reports" / "fleet" / "run-slurm" / "fleet-report.json").read_text())
    assert len(summary["nodes"]) == 2 and not summary["failed"] and summary["openvino_ok"] == 2
    (processor,) = summary["processors"]
    rungs = {rung["label"]: rung for rung in processor["ladder"]}
    for label in ("tf", "openvino", "openvino-int8"):
        assert rungs[label]["nodes_ran"] == 2 and rungs[label]["median_ms"] > 0
    jobs = sorted((tmp_path / "reports" / "jobs" / "run-slurm").glob("edgebench-node-*.err"))
    assert len(jobs) == 2  # each job's output, under the run's reports
    job_ids = [re.search(r"-(\d+)\.err$", p.name).group(1) for p in jobs]
    for job_id in job_ids:  # the constraint was Slurm's, and the jobs ended when the run closed the cluster
        state = _scontrol(job_id)
        assert state["Features"] == feature and state["JobState"] in ("CANCELLED", "COMPLETED"), state

    direct = _direct_suite_seconds(fleet_spec, tmp_path / "direct")
    overhead = fleet_s / (2 * direct) - 1  # the two nodes share this host and take turns
    record_property(
        "edgebench_figure",
        f"Slurm fan-out: sbatch to both Dask workers connected {connect_s:.1f} s; "
        f"2 nodes through Slurm {fleet_s:.0f} s against the node suite run directly "
        f"{direct:.1f} s (x2 = {2 * direct:.0f} s): overhead beyond the submission "
        f"{overhead:+.1%}",
    )


def _slurm_fleet_run_argv(spec: fleet.NodeSpec, nodes: int, processor: str, *more: str) -> list[str]:
    """`edgebench fleet run` through Slurm: ``nodes`` one-core nodes constrained to ``processor``, results and
    ``spec``'s artifact in the test bucket, then ``more`` options."""
    location = spec.results
    return [
        *("fleet", "run", "--cluster", "slurm", "--nodes", str(nodes), "--cores", "1", "--processor", processor),
        *("--bucket", location.bucket, "--endpoint-url", location.endpoint_url, "--artifact", spec.artifact_uri),
        *more,
    ]


def _two_node_fleet_run_argv(spec: fleet.NodeSpec, feature: str) -> list[str]:
    """Two nodes on ``feature``, run id run-slurm, the short node suite against ``spec``'s images."""
    return _slurm_fleet_run_argv(
        spec,
        2,
        feature,
        *("--memory", "2GB", "--run-id", "run-slurm", "--prefix", spec.results.prefix),
        *("--test-images", spec.test_images_uri, "--calibration-images", spec.calibration_uri),
        *("--pytest-args", shlex.join(QUICK_SUITE), "--node-timeout", "600"),
    )


def _direct_suite_seconds(fleet_spec: fleet.NodeSpec, out: Path) -> float:
    """Seconds the node suite takes run directly (no scheduler, no Dask), results in ``out``."""
    spec = dataclasses.replace(fleet_spec, node_id="direct")
    env = {**os.environ, **fleet.job_environment(spec.results, None)}
    out.mkdir()
    started = time.perf_counter()
    subprocess.run(fleet.suite_command(spec, out), cwd=spec.suite_dir, env=env, check=True, capture_output=True)
    return time.perf_counter() - started


def test_scancel_fails_that_node_with_slurms_reason_and_resume_runs_only_it(
    slurm_options, fleet_spec, tmp_path, record_property
):
    spec = dataclasses.replace(fleet_spec, run_id="run-scancel", pytest_args=NULL_ONLY)
    ended = lambda job_id, gone: clusters.job_end_reason("slurm", job_id, gone)  # noqa: E731
    with clusters.open_cluster(slurm_options) as client:
        jobs = client.run(clusters.batch_job_id)
        outcome: dict[str, fleet.FleetResult] = {}
        runner = threading.Thread(
            target=lambda: outcome.setdefault("r", fleet.run_fleet(client, spec, job_ended=ended))
        )
        runner.start()
        import psutil

        victim = first_worker_running_pytest(client.run(os.getpid), psutil, timeout=180)
        subprocess.run(["scancel", jobs[victim]], check=True)
        runner.join(timeout=600)
    result = outcome["r"]
    (failed,) = result.failed
    assert failed.worker == victim, result.nodes
    assert failed.reason.startswith(
        f"Slurm job {jobs[victim]} was cancelled (scancel or an administrator; JobState=CANCELLED"
    ), failed.reason
    (survivor,) = [n for n in result.nodes if n.status == "complete"]
    record_property("edgebench_figure", f"Slurm scancel mid-run: {failed.node_id} failed: {failed.reason}")
    merged = fleet.merge_run(download(spec, tmp_path / "first"))
    assert [d["node_id"] for d in merged.nodes] == [survivor.node_id]
    assert [(f["node_id"], f["reason"]) for f in merged.failures] == [(failed.node_id, failed.reason)]

    with clusters.open_cluster(slurm_options) as client:  # the same run id, new jobs: only the failed node runs
        again = fleet.run_fleet(client, spec, job_ended=ended)
    assert {n.node_id: n.status for n in again.nodes} == {survivor.node_id: "skipped", failed.node_id: "complete"}
    merged = fleet.merge_run(download(spec, tmp_path / "resumed"))
    assert len(merged.nodes) == 2 and not merged.failures


def test_a_walltime_shorter_than_the_suite_is_a_clean_walltime_failure(
    slurm_options, fleet_spec, tmp_path, record_property
):
    """One node, a one-minute walltime, the whole edge suite (minutes): Slurm kills the job at its limit; the
    node is failed with "walltime exceeded" and Slurm's state, and no manifest."""
    options = dataclasses.replace(slurm_options, nodes=1, walltime="00:01:00")
    spec = dataclasses.replace(fleet_spec, run_id="run-walltime", pytest_args=())
    started = time.monotonic()
    with clusters.open_cluster(options) as client:
        result = fleet.run_fleet(client, spec, job_ended=lambda j, g: clusters.job_end_reason("slurm", j, g))
    (node,) = result.nodes
    assert node.status == "failed" and node.reason.startswith("walltime exceeded: Slurm ended job "), node.reason
    assert "JobState=TIMEOUT" in node.reason and "time limit of 00:01:00" in node.reason
    elapsed = time.monotonic() - started
    assert elapsed < 300
    record_property(
        "edgebench_figure", f"Slurm walltime: {node.node_id} failed {elapsed:.0f} s after submission: {node.reason}"
    )
    merged = fleet.merge_run(download(spec, tmp_path))
    assert not merged.nodes and merged.failures[0]["reason"] == node.reason


def test_an_unsatisfiable_processor_is_a_one_line_error_not_a_hang(
    slurm_cluster, fleet_spec, tmp_path, monkeypatch, capsys
):
    options = clusters.ClusterOptions("slurm", nodes=1, cores=1, memory="1GB", processor="no_such_processor")
    started = time.monotonic()
    refused = r"Slurm refuses the node job \(allocation failure: Invalid feature specification\); requested: "
    with pytest.raises(ConfigError, match=refused + "--processor no_such_processor"), clusters.open_cluster(options):
        pass
    too_big = dataclasses.replace(options, processor=slurm_cluster.features[0], cores=slurm_cluster.cpus + 1)
    with (
        pytest.raises(ConfigError, match="Requested node configuration is not available"),
        clusters.open_cluster(too_big),
    ):
        pass
    assert time.monotonic() - started < 60

    with monkeypatch.context() as patch:  # as for PBS: no check beforehand; sbatch itself refuses the job
        patch.setattr(clusters, "check_job_script", lambda options: None)
        started = time.monotonic()
        with (
            pytest.raises(ConfigError, match="1 of 1 node jobs could not be submitted"),
            clusters.open_cluster(options),
        ):
            pass
        assert time.monotonic() - started < 90  # an error, not a wait

    from harness.cli import main

    monkeypatch.chdir(tmp_path)
    code = main(_slurm_fleet_run_argv(fleet_spec, 1, "skylake_nope"))  # a processor no node has
    captured = capsys.readouterr()
    lines = [line for line in captured.err.splitlines() if line.strip()]
    assert code != 0 and len(lines) == 1 and "--processor skylake_nope" in lines[0], captured
    assert "Traceback" not in captured.err + captured.out


def test_the_nodes_environment_reaches_the_job(slurm_options, fleet_spec):
    """The job script exports what the node needs (S3 endpoint, region and the run's dummy credentials, TF's log
    level); the worker runs the configured python. The endpoint and credentials are not in this process's
    environment, so only the job script can have put them there."""
    credentials = {"aws_access_key_id": "slurm-test-key", "aws_secret_access_key": "slurm-test-secret"}
    wanted = fleet.job_environment(fleet_spec.results, credentials)
    assert os.environ.get("AWS_ENDPOINT_URL") != wanted["AWS_ENDPOINT_URL"]
    assert os.environ.get("AWS_ACCESS_KEY_ID") != "slurm-test-key"
    options = dataclasses.replace(slurm_options, nodes=1, environment=tuple(wanted.items()))

    def seen() -> dict:
        import os
        import sys

        return {"python": sys.executable, "env": {k: os.environ.get(k) for k in (*wanted, "SLURM_JOB_ID")}}

    with clusters.open_cluster(options) as client:
        ((_, job),) = client.run(seen).items()
    assert job["python"] == sys.executable
    assert {k: job["env"][k] for k in wanted} == wanted and job["env"]["SLURM_JOB_ID"]
