"""Fleet cluster kinds: the PBS and Slurm job scripts dask-jobqueue writes, bad cluster options, and an
SSHCluster node against a throwaway OpenSSH server on 127.0.0.1 (Debian's openssh-server; .ci/run installs
it)."""

from __future__ import annotations

import dataclasses
import os
import time
from pathlib import Path

import pytest

from fleet_helpers import NULL_ONLY, download, suite_node_spec
from harness import fleet, store
from harness.fleet import clusters


@pytest.fixture
def fleet_spec(s3_location: store.S3Location, suite_artifacts) -> fleet.NodeSpec:
    """The suite model and its images in the test bucket, and where node results go (fleet_helpers)."""
    return suite_node_spec(s3_location, suite_artifacts)


def test_job_scripts_select_the_processor_and_run_a_dask_worker():
    pbs = clusters.job_script(
        clusters.ClusterOptions("pbs", queue="edge", walltime="00:30:00", cores=4, processor="skylake")
    )
    assert "#PBS -q edge" in pbs and "#PBS -l walltime=00:30:00" in pbs
    assert "#PBS -l nodes=1:ppn=4:skylake" in pbs
    assert "distributed.cli.dask_worker" in pbs and os.sys.executable in pbs
    slurm = clusters.job_script(
        clusters.ClusterOptions("slurm", queue="edge", walltime="02:00:00", cores=2, processor="icelake", memory="16GB")
    )
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
        pytest.skip(
            "OpenSSH server not installed (Debian: apt-get install openssh-server); the ssh cluster "
            "test needs a real sshd on 127.0.0.1"
        )
    keys = tmp_path / "ssh"
    keys.mkdir(mode=0o700)
    for name in ("host_key", "client_key"):
        subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(keys / name)], check=True)
    (keys / "authorized_keys").write_text((keys / "client_key.pub").read_text())
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (keys / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {keys / 'host_key'}\n"
        f"AuthorizedKeysFile {keys / 'authorized_keys'}\n"
        f"PasswordAuthentication no\nKbdInteractiveAuthentication no\nPermitRootLogin prohibit-password\n"
        f"StrictModes no\nUsePAM no\nPidFile {keys / 'sshd.pid'}\nAcceptEnv none\n"
    )
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
    spec = dataclasses.replace(
        fleet_spec,
        run_id="run-ssh",
        pytest_args=NULL_ONLY,
        credentials={"aws_access_key_id": "testing", "aws_secret_access_key": "testing"},
    )
    with clusters.open_cluster(options) as client:
        result = fleet.run_fleet(client, spec)
    assert [n.status for n in result.nodes] == ["complete"], result.nodes
    merged = fleet.merge_run(download(spec, tmp_path))
    assert len(merged.nodes) == 1 and merged.nodes[0]["backends"]["null"]["latency"]["n"] > 0
