"""Fleet: the edge suite on every node of a Dask cluster, results per node in (moto) S3, one merged report.

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
import zlib
from pathlib import Path

import pytest

from harness import clusters, fleet, report, store
from harness.errors import StoreError

# One node's share of the edge suite in these tests: both latency benchmarks and the FP32 parity case.
QUICK_SUITE = ("-k", "test_infer_latency_batch1 or FP32-b1")
NULL_ONLY = ("-k", "test_infer_latency_batch1 and null")


@pytest.fixture
def fleet_spec(s3_location: store.S3Location, suite_artifact) -> fleet.NodeSpec:
    """The suite model and its held-out images in the test bucket, and where node results go."""
    artifact, test_dir = suite_artifact
    s3 = store.S3Store(s3_location)
    artifact_uri = s3.upload_file(artifact, s3_location.key("artifacts", "model.tar.gz"))
    s3.upload_tree(test_dir, s3_location.key("artifacts", "test"))
    return fleet.NodeSpec(run_id="run-1", node_id="", artifact_uri=artifact_uri, results=s3_location,
                          test_images_uri=s3.location.uri(s3_location.key("artifacts", "test")),
                          pytest_args=QUICK_SUITE, timeout_s=600)


@pytest.fixture
def local_client():
    with clusters.open_cluster(clusters.ClusterOptions("local", nodes=2)) as client:
        yield client


def _download(spec: fleet.NodeSpec, tmp_path: Path) -> Path:
    return fleet.download_run(spec.results, spec.run_id, tmp_path / spec.run_id)


def test_two_local_nodes_land_in_s3_and_merge(fleet_spec, local_client, tmp_path):
    result = fleet.run_fleet(local_client, fleet_spec)
    assert [n.status for n in result.nodes] == ["complete", "complete"], result.nodes
    keys = store.S3Store(fleet_spec.results).list_keys(fleet.run_prefix(fleet_spec.results, "run-1"))
    for node in result.nodes:
        for name in ("benchmark.json", "report.json", "junit.xml", "log.txt", "manifest.json"):
            assert f"{fleet.run_prefix(fleet_spec.results, 'run-1')}/{node.node_id}/{name}" in keys

    merged = fleet.merge_run(_download(fleet_spec, tmp_path))
    assert not merged.failures and len(merged.nodes) == 2
    summary = merged.to_json()
    assert summary["openvino_ok"] == 2
    (processor,) = summary["processors"]  # both nodes are this machine
    assert processor["nodes"] == 2 and processor["tf_ms"] > 0 and processor["openvino_ms"] > 0
    assert processor["speedup"] == pytest.approx(processor["tf_ms"] / processor["openvino_ms"], rel=0.5)
    for row in summary["nodes"]:
        assert row["parity_ok"] is True and row["tests"]["failed"] == 0 and row["tests"]["passed"] >= 3
    json_path, html_path = fleet.write_merged(merged, tmp_path / "merged")
    page = html_path.read_text()
    assert "data:image/png;base64," in page and "Per processor" in page and processor["cpu"] in page
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
    victim = _first_worker_running_pytest(pids, psutil)
    os.kill(pids[victim], signal.SIGKILL)
    runner.join(timeout=600)
    result = outcome["result"]
    failed = [n for n in result.nodes if n.status == "failed"]
    assert len(failed) == 1 and failed[0].worker == victim, result.nodes
    assert "died" in failed[0].reason or "Killed" in failed[0].reason
    (survivor,) = [n for n in result.nodes if n.status == "complete"]

    merged = fleet.merge_run(_download(spec, tmp_path / "first"))
    assert [d["node_id"] for d in merged.nodes] == [survivor.node_id]
    assert [f["node_id"] for f in merged.failures] == [failed[0].node_id]

    local_client.wait_for_workers(2, timeout=120)  # the nanny restarts the killed worker under its name
    again = fleet.run_fleet(local_client, spec)
    statuses = {n.node_id: n.status for n in again.nodes}
    assert statuses == {survivor.node_id: "skipped", failed[0].node_id: "complete"}, again.nodes
    merged = fleet.merge_run(_download(spec, tmp_path / "resumed"))
    assert len(merged.nodes) == 2 and not merged.failures

    forced = fleet.run_fleet(local_client, dataclasses.replace(spec, force=True, timeout_s=1))
    assert {n.status for n in forced.nodes} == {"failed"}  # re-run on purpose, and it failed this time:
    merged = fleet.merge_run(_download(spec, tmp_path / "forced"))  # no stale manifest says "complete"
    assert not merged.nodes and len(merged.failures) == 2


def _first_worker_running_pytest(pids: dict[str, int], psutil, timeout: float = 120) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for address, pid in pids.items():
            try:
                children = psutil.Process(pid).children(recursive=True)
            except psutil.NoSuchProcess:
                continue
            if any("pytest" in " ".join(child.cmdline()) for child in children if child.is_running()):
                return address
        time.sleep(0.2)
    raise AssertionError("no worker started its node's suite within 120 s")


def test_node_timeout_and_suite_errors_are_failures_with_reason_and_log(fleet_spec, local_client, tmp_path):
    timed_out = fleet.run_fleet(local_client, dataclasses.replace(fleet_spec, run_id="run-timeout", timeout_s=2))
    assert {n.status for n in timed_out.nodes} == {"failed"}
    assert all("timed out after 2 s" in n.reason for n in timed_out.nodes)

    broken = dataclasses.replace(fleet_spec, run_id="run-broken", artifact_uri=fleet_spec.artifact_uri + "-missing")
    result = fleet.run_fleet(local_client, broken)
    assert {n.status for n in result.nodes} == {"failed"}
    merged = fleet.merge_run(_download(broken, tmp_path))
    assert not merged.nodes and len(merged.failures) == 2
    for failure in merged.failures:  # the reason names the missing object; the log tail is the suite's
        assert "wrote no benchmark.json" in failure["reason"] and "model.tar.gz-missing" in failure["reason"]
        assert "failed" in failure["log_tail"]


def test_job_scripts_select_the_processor_and_run_a_dask_worker():
    pbs = clusters.job_script(clusters.ClusterOptions("pbs", queue="edge", walltime="00:30:00", cores=4,
                                                      processor="skylake"))
    assert "#PBS -q edge" in pbs and "#PBS -l walltime=00:30:00" in pbs
    assert "#PBS -l nodes=1:ppn=4:skylake" in pbs
    assert "distributed.cli.dask_worker" in pbs and os.sys.executable in pbs
    slurm = clusters.job_script(clusters.ClusterOptions("slurm", queue="edge", walltime="02:00:00", cores=2,
                                                        processor="icelake", memory="16GB"))
    assert "#SBATCH -p edge" in slurm and "#SBATCH -t 02:00:00" in slurm
    assert "#SBATCH --constraint=icelake" in slurm and "#SBATCH --cpus-per-task=2" in slurm
    assert "distributed.cli.dask_worker" in slurm and os.sys.executable in slurm
    custom = clusters.job_script(clusters.ClusterOptions("pbs", resource_spec="select=1:ncpus=2:cpu_type=spr"))
    assert "#PBS -l select=1:ncpus=2:cpu_type=spr" in custom


def test_cluster_options_refuse_bad_input():
    with pytest.raises(Exception, match="choose one of local, ssh, pbs, slurm"):
        clusters.ClusterOptions("kubernetes")
    with pytest.raises(Exception, match="--hosts SCHEDULER,NODE"):
        clusters.ClusterOptions("ssh", hosts=("only-one",))


def test_failed_upload_never_leaves_a_manifest(s3_location, tmp_path):
    """S3 answers 500 for report.json: boto3 retries (standard mode), then the publish fails before the
    manifest, so the node folder never looks complete."""
    s3 = store.S3Store(s3_location).under("runs", "run-x", "node-a")
    files = {name: report.write_text(tmp_path / name, "{}\n" if name.endswith(".json") else "x\n")
             for name in ("benchmark.json", "report.json", "log.txt")}
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
    code = main(["upload", "--run-id", "run-up", "--node-id", "edge-01", "--benchmark", str(node / "benchmark.json"),
                 "--node-report", str(node / "report.json"), "--bucket", s3_location.bucket,
                 "--prefix", s3_location.prefix, "--endpoint-url", s3_location.endpoint_url])
    assert code == 0
    uri = f"s3://{s3_location.bucket}/{s3_location.prefix}/runs/run-up/"
    monkeypatch.chdir(tmp_path)
    assert main(["report", uri, "--endpoint-url", s3_location.endpoint_url]) == 0
    merged = json.loads((tmp_path / "reports" / "fleet" / "run-up" / "fleet-report.json").read_text())
    (row,) = merged["nodes"]
    assert row["node_id"] == "edge-01" and row["speedup"] == pytest.approx(4.0, rel=0.05)


# ------------------------------------------------------------------------------------------------
# Synthetic node results (for merge tests and the 200-node merge benchmark)

PROCESSORS = ("Intel(R) Xeon(R) Gold 6338N CPU @ 2.20GHz", "Intel(R) Core(TM) i7-1185G7 @ 3.00GHz",
              "Intel(R) Xeon(R) Platinum 8480+", "Intel(R) Atom(TM) x6425E CPU @ 2.00GHz")


def synthetic_node(node_dir: Path, cpu: str, tf_ms: float, ov_ms: float, samples: int = 100) -> Path:
    """A node folder as `pytest -m edge --benchmark-save-data --edgebench-node-report` would leave it."""
    import numpy as np

    rng = np.random.default_rng(zlib.crc32(f"{node_dir.name}/{cpu}".encode()))  # same data every run
    benchmarks = []
    for backend, ms in (("tf", tf_ms), ("openvino", ov_ms), ("null", 0.0003)):
        data = list(ms / 1e3 * rng.lognormal(0, 0.05, samples))
        benchmarks.append({"name": f"test_infer_latency_batch1[{backend}]", "params": {"latency_backend": backend},
                           "extra_info": {"backend": backend, "device": "CPU", "precision": "FP32"},
                           "stats": {"data": data, "median": float(np.median(data)), "min": min(data),
                                     "max": max(data), "mean": float(np.mean(data)), "rounds": samples}})
    machine = {"cpu_brand": cpu, "isa_flags": ["avx2", "avx512f"], "usable_cpus": 4,
               "openvino_devices": {"CPU": cpu}}
    report.write_json(node_dir / "benchmark.json", {"machine_info": {"edgebench": machine}, "benchmarks": benchmarks})
    report.write_json(node_dir / "report.json", fleet.node_summary(
        machine, [{"case": "given-openvino-CPU-FP32-b1", "backend": "openvino", "precision": "FP32",
                   "max_abs_prob": 1e-5, "max_rel_logit": 1e-5, "top1_agreement": 1.0, "within_tolerance": True}],
        {"passed": [{}] * 4, "failed": [], "skipped": []}, 0))
    return node_dir


def test_merged_fleet_report_in_a_browser_and_with_a_failed_node(tmp_path, headless_chromium):
    """Eight nodes of four processor kinds, one failed with its log, one that never finished publishing:
    one row per processor, the failures with reason and log tail, and the speedup plot, in Chromium."""
    run_dir = synthetic_run(tmp_path / "run-8", 8)
    report.write_json(run_dir / "node-broken" / fleet.FAILURE, {"node_id": "node-broken", "reason": "timed out "
                      "after 1800 s (per-node timeout)", "log_tail": "collected 9 items\nsuites/test_parity.py ..."})
    report.write_text(run_dir / "node-half" / "benchmark.json", "{}")  # files but no manifest
    merged = fleet.merge_run(run_dir)
    assert len(merged.nodes) == 8 and {f["node_id"] for f in merged.failures} == {"node-broken", "node-half"}
    assert "no manifest" in next(f["reason"] for f in merged.failures if f["node_id"] == "node-half")
    rows = merged.to_json()["processors"]
    assert [r["nodes"] for r in rows] == [2, 2, 2, 2] and all(r["speedup"] > 3 for r in rows)
    _, html_path = fleet.write_merged(merged, tmp_path / "out")
    dom, dark_fraction = headless_chromium(html_path)
    assert dom.count("<img") == 1 and "Xeon(R) Platinum 8480+" in dom and "timed out after 1800 s" in dom
    assert "suites/test_parity.py" in dom  # the log tail
    assert dark_fraction > 0.01, "the page rendered (almost) blank: the plot is missing"


def synthetic_run(run_dir: Path, nodes: int) -> Path:
    """``nodes`` published node folders (report.json as the fleet completes it, manifest last)."""
    for i in range(nodes):
        cpu = PROCESSORS[i % len(PROCESSORS)]
        node_dir = synthetic_node(run_dir / f"node-{i:03d}", cpu, tf_ms=20.0 + i % 7, ov_ms=4.0 + (i % 4) / 2)
        files = {name: node_dir / name for name in ("benchmark.json", "report.json")}
        fleet.complete_report(files, run_dir.name, node_dir.name, node_dir / "report.json")
        report.write_json(node_dir / fleet.MANIFEST, fleet.manifest_for(run_dir.name, node_dir.name, files))
    return run_dir


# ------------------------------------------------------------------------------------------------
# Benchmarks: figures printed in the terminal summary, serial pass (latency marker)


@pytest.mark.latency
def test_merging_200_node_result_sets(benchmark, tmp_path, record_property):
    run_dir = synthetic_run(tmp_path / "run-200", 200)

    def merge_and_write():
        merged = fleet.merge_run(run_dir)
        fleet.write_merged(merged, tmp_path / "out")
        return merged

    merged = benchmark.pedantic(merge_and_write, rounds=3, iterations=1)
    assert len(merged.nodes) == 200 and len(merged.to_json()["processors"]) == len(PROCESSORS)
    record_property("edgebench_figure", f"fleet merge of 200 node result sets (read, check manifests, per-processor "
                                        f"table, fleet-report.json, report.html): median "
                                        f"{benchmark.stats.stats.median:.2f} s (target < 5 s)")


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
    record_property("edgebench_figure", f"fleet fan-out: 2-node local run {timings['total']:.1f} s = cluster start "
                                        f"{timings['startup']:.1f} s + nodes; the suite run directly twice "
                                        f"{direct:.1f} s; overhead beyond start-up {overhead:+.1%} (target <= 10 %)")


# ------------------------------------------------------------------------------------------------
# SSH: a throwaway OpenSSH server on 127.0.0.1 (Debian's openssh-server; .ci/run installs it)


@pytest.fixture
def ssh_server(tmp_path):
    """sshd on a free loopback port with its own host key, accepting one throwaway client key."""
    import shutil
    import socket
    import subprocess

    sshd = shutil.which("sshd") or ("/usr/sbin/sshd" if Path("/usr/sbin/sshd").exists() else None)
    if sshd is None or shutil.which("ssh-keygen") is None:
        pytest.skip("OpenSSH server not installed (Debian: apt-get install openssh-server); the ssh cluster "
                    "test needs a real sshd on 127.0.0.1")
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    (keys / "authorized_keys").write_text((keys / "client_key.pub").read_text())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (keys / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host_key'}\nAuthorizedKeysFile {keys / 'authorized_keys'}\n"
        f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        f"StrictModes no\nUsePAM no\nPidFile {keys / 'sshd.pid'}\nAcceptEnv none\n")
    if os.geteuid() == 0:
        Path("/run/sshd").mkdir(exist_ok=True)  # privilege separation directory
    server = subprocess.Popen([sshd, "-D", "-e", "-f", str(keys / "sshd_config")], stderr=subprocess.PIPE)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.skip(f"sshd could not start here: {server.stderr.read().decode(errors='replace').strip()[-300:]}")
        with socket.socket() as attempt:
            if attempt.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.1)
    try:
        yield port, str(keys / "client_key")
    finally:
        server.terminate()
        server.wait(timeout=10)


def test_ssh_cluster_runs_a_node_over_ssh(fleet_spec, ssh_server, tmp_path):
    """SSHCluster: scheduler and one worker started over SSH on 127.0.0.1; the worker's environment is the
    login shell's, so S3 credentials travel in the node spec."""
    port, key = ssh_server
    options = clusters.ClusterOptions("ssh", hosts=("127.0.0.1", "127.0.0.1"), ssh_port=port, ssh_key=key)
    spec = dataclasses.replace(fleet_spec, run_id="run-ssh", pytest_args=NULL_ONLY,
                               credentials={"aws_access_key_id": "testing", "aws_secret_access_key": "testing"})
    with clusters.open_cluster(options) as client:
        result = fleet.run_fleet(client, spec)
    assert [n.status for n in result.nodes] == ["complete"], result.nodes
    merged = fleet.merge_run(_download(spec, tmp_path))
    assert len(merged.nodes) == 1 and merged.nodes[0]["backends"]["null"]["latency"]["n"] > 0
