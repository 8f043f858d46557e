"""A one-machine Slurm cluster (Debian's ``slurmctld``, ``slurmd``, ``munge``; 22.05) for tests and by hand.

:func:`local_slurm` writes a minimal ``slurm.conf`` and ``cgroup.conf`` for 127.0.0.1 into a folder (one
partition, one node with this machine's CPUs and memory and features naming its processor, so that
``--constraint`` is honoured), starts ``munged`` with its own key and socket, ``slurmctld -D`` and ``slurmd -D``
as child processes, waits until ``sinfo`` shows the node idle, and stops them on exit. Clients find the
cluster through ``SLURM_CONF`` (set in this process while the cluster runs, and printed by ``make slurm-up``).

No cgroups are needed (containers rarely delegate them): processes are tracked through their parent
(``proctrack/linuxproc``), tasks are not bound (``task/none``), nothing is accounted. So a job's cores are a
scheduling quantity here, not a fence; a real site confines jobs with cgroups.

``python -m harness.fleet.slurm_local up DIR`` / ``down DIR``: the same cluster, left running in the background.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

from harness.errors import ConfigError

BINARIES = {
    "munged": "munge",
    "slurmctld": "slurmctld",
    "slurmd": "slurmd",
    "sbatch": "slurm-client",
    "sinfo": "slurm-client",
    "scontrol": "slurm-client",
    "scancel": "slurm-client",
}
PARTITION = "edge"
DAEMONS = ("munged", "slurmctld", "slurmd")


class SlurmUnavailable(Exception):
    """Slurm cannot run here; the message says exactly why (tests skip with it)."""


@dataclass(frozen=True)
class LocalSlurm:
    folder: Path
    node: str
    partition: str
    cpus: int
    memory_mb: int
    features: tuple[str, ...]

    @property
    def conf(self) -> Path:
        return self.folder / "slurm.conf"

    def env(self) -> dict[str, str]:
        return {"SLURM_CONF": str(self.conf)}


def missing_binaries() -> list[str]:
    """Daemons and clients not installed, as ``binary (Debian package)``."""
    return [f"{name} (Debian package {package})" for name, package in BINARIES.items() if _which(name) is None]


def _which(name: str) -> str | None:
    return shutil.which(name) or next((str(p) for p in (Path("/usr/sbin") / name,) if p.exists()), None)


def _installed(name: str) -> str:
    path = _which(name)
    assert path is not None, f"{name} is missing: check_usable() says so first"
    return path


def processor_features() -> tuple[str, ...]:
    """Slurm node features naming this processor: its CPU brand as a token (``amd_epyc_9r14_96_core_processor``)
    and its vector ISA flags (``avx2``, ``avx512f``, ``avx512_bf16``, ``amx_tile`` …), read from the machine."""
    import cpuinfo

    from harness.measure import ISA_FLAGS

    info = cpuinfo.get_cpu_info()
    brand = re.sub(r"\((r|tm)\)", "", info.get("brand_raw", "") or "unknown", flags=re.IGNORECASE)
    token = re.sub(r"[^a-z0-9]+", "_", brand.lower()).strip("_") or "unknown_cpu"
    flags = set(info.get("flags", []))
    return (token, *(flag for flag in ISA_FLAGS if flag in flags))


def machine_memory_mb() -> int:
    return int(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20)


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def write_config(folder: Path, features: tuple[str, ...] | None = None) -> LocalSlurm:
    """``slurm.conf`` and ``cgroup.conf`` for one node on 127.0.0.1, state and logs under ``folder``."""
    folder = Path(folder).resolve()
    for sub in ("state", "spool", "munge", "log"):
        (folder / sub).mkdir(parents=True, exist_ok=True)
    (folder / "munge").chmod(0o700)
    node = socket.gethostname().split(".")[0]
    cpus, memory = len(os.sched_getaffinity(0)), machine_memory_mb()
    features = processor_features() if features is None else features
    text = "".join(f"{key}={value}\n" for key, value in _settings(folder, node, _user()).items())
    text += (
        f"NodeName={node} NodeHostname={socket.gethostname()} NodeAddr=127.0.0.1 CPUs={cpus} "
        f"RealMemory={memory} Features={','.join(features)} State=UNKNOWN\n"
        f"PartitionName={PARTITION} Nodes={node} Default=YES MaxTime=INFINITE State=UP\n"
    )
    (folder / "slurm.conf").write_text(text)
    # Read by slurmd even with the plugins above; nothing in it is enforced without the cgroup plugins.
    (folder / "cgroup.conf").write_text(
        "CgroupPlugin=autodetect\nCgroupAutomount=no\nConstrainCores=no\nConstrainRAMSpace=no\n"
    )
    return LocalSlurm(folder, node, PARTITION, cpus, memory, tuple(features))


def _settings(folder: Path, node: str, user: str) -> dict[str, object]:
    """slurm.conf's settings before the node and partition lines: free ports, munge, no cgroups."""
    return {
        "ClusterName": "edgebench",
        "SlurmctldHost": f"{node}(127.0.0.1)",
        "SlurmctldPort": free_port(),
        "SlurmdPort": free_port(),
        "SlurmUser": user,
        "SlurmdUser": user,
        "AuthType": "auth/munge",
        "CredType": "cred/munge",
        "AuthInfo": f"socket={folder / 'munge' / 'munge.socket'}",
        # no cgroups: track processes by parentage, do not bind tasks, account nothing
        "ProctrackType": "proctrack/linuxproc",
        "TaskPlugin": "task/none",
        "JobAcctGatherType": "jobacct_gather/none",
        "AccountingStorageType": "accounting_storage/none",
        "JobCompType": "jobcomp/none",
        "MpiDefault": "none",
        "SelectType": "select/cons_tres",
        "SelectTypeParameters": "CR_CPU",
        "SchedulerType": "sched/backfill",
        "StateSaveLocation": folder / "state",
        "SlurmdSpoolDir": folder / "spool",
        "SlurmctldPidFile": folder / "slurmctld.pid",
        "SlurmdPidFile": folder / "slurmd.pid",
        "SlurmctldLogFile": folder / "log" / "slurmctld.log",
        "SlurmdLogFile": folder / "log" / "slurmd.log",
        "ReturnToService": 2,
        "MailProg": "/bin/true",
        # a job past its time limit gets SIGTERM, then SIGKILL 5 s later; ended jobs stay visible to scontrol 10 min
        "KillWait": 5,
        "OverTimeLimit": 0,
        "MinJobAge": 600,
        "InactiveLimit": 0,
    }


def _user() -> str:
    import pwd

    return pwd.getpwuid(os.geteuid()).pw_name


def check_usable() -> None:
    """Raise :class:`SlurmUnavailable` with the exact reason when a local Slurm cannot run here."""
    missing = missing_binaries()
    if missing:
        raise SlurmUnavailable(
            f"Slurm is not installed: missing {', '.join(missing)} "
            "(apt-get install slurmctld slurmd munge slurm-client; .ci/run installs them)"
        )
    if os.geteuid() != 0:
        raise SlurmUnavailable(
            "slurmd must run as root to start jobs (it switches to the job's user); "
            "run the Slurm tests as root, as .ci/run does"
        )


@contextmanager
def local_slurm(folder: Path, timeout_s: float = 60.0) -> Iterator[LocalSlurm]:
    """Start munged, slurmctld and slurmd as children; yield once ``sinfo`` shows the node idle; stop them.
    ``SLURM_CONF`` points at the cluster for as long as it runs (restored afterwards)."""
    check_usable()
    cluster = write_config(folder)
    previous = os.environ.get("SLURM_CONF")
    with ExitStack() as stack:
        stack.callback(_restore_env, previous)
        os.environ["SLURM_CONF"] = str(cluster.conf)
        for process in start_daemons(cluster, timeout_s):
            stack.callback(_stop, process)  # stopped in reverse order: slurmd, slurmctld, munged
        wait_until_idle(cluster, timeout_s)
        yield cluster


def start_daemons(cluster: LocalSlurm, timeout_s: float) -> list[subprocess.Popen[bytes]]:
    """munged (its own key and socket), then ``slurmctld -D`` and ``slurmd -D``, each in its own session with
    its output in ``log/<daemon>.out``; stops what it started if one cannot start."""
    munge = cluster.folder / "munge"
    key = munge / "munge.key"
    if not key.exists():
        key.write_bytes(os.urandom(1024))
        key.chmod(0o600)
    commands = [
        [
            _installed("munged"),
            "-F",
            "--force",
            f"--key-file={key}",
            f"--socket={munge / 'munge.socket'}",
            f"--pid-file={munge / 'munged.pid'}",
            f"--log-file={cluster.folder / 'log' / 'munged.log'}",
            f"--seed-file={munge / 'munged.seed'}",
        ],
        [_installed("slurmctld"), "-D", "-i", "-f", str(cluster.conf)],
        [_installed("slurmd"), "-D", "-N", cluster.node, "-f", str(cluster.conf)],
    ]
    started: list[subprocess.Popen[bytes]] = []
    try:
        for command in commands:
            name = Path(command[0]).name
            with (cluster.folder / "log" / f"{name}.out").open("ab") as out:
                started.append(
                    subprocess.Popen(
                        command,
                        stdout=out,
                        stderr=subprocess.STDOUT,
                        start_new_session=True,
                        env={**os.environ, **cluster.env()},
                    )
                )
            if name == "munged":
                _wait_for(lambda: (munge / "munge.socket").exists(), timeout_s, "munged socket", cluster)
    except BaseException:
        for process in reversed(started):
            _stop(process)
        raise
    return started


def _stop(process: subprocess.Popen[bytes]) -> None:
    if process.poll() is None:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()


def _restore_env(previous: str | None) -> None:
    if previous is None:
        os.environ.pop("SLURM_CONF", None)
    else:
        os.environ["SLURM_CONF"] = previous


def node_state(cluster: LocalSlurm) -> str:
    """``sinfo``'s state of the node (``idle``, ``mixed``, ``alloc``, ``down*`` …), "" when unanswered."""
    result = subprocess.run(
        ["sinfo", "-h", "-N", "-n", cluster.node, "-o", "%t"],
        capture_output=True,
        text=True,
        env={**os.environ, **cluster.env()},
        timeout=30,
    )
    return result.stdout.strip() if result.returncode == 0 else ""


def wait_until_idle(cluster: LocalSlurm, timeout_s: float) -> None:
    _wait_for(lambda: node_state(cluster) == "idle", timeout_s, f"node {cluster.node} idle in sinfo", cluster)


def _wait_for(condition: Callable[[], bool], timeout_s: float, what: str, cluster: LocalSlurm) -> None:
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if condition():
            return
        time.sleep(0.5)
    raise SlurmUnavailable(f"no {what} within {timeout_s:g} s; logs: {log_tails(cluster)}")


def log_tails(cluster: LocalSlurm, lines: int = 3) -> str:
    tails = []
    for log in sorted((cluster.folder / "log").glob("*")):
        text = log.read_text(errors="replace").strip().splitlines()[-lines:]
        if text:
            tails.append(f"{log.name}: " + " | ".join(text))
    return "; ".join(tails) or "(empty)"


# ------------------------------------------------------------------------------------------------
# By hand: `make slurm-up` / `make slurm-down`


def up(folder: Path, timeout_s: float = 60.0) -> LocalSlurm:
    """Start the daemons in the background (they outlive this process); ``down`` stops them."""
    check_usable()
    if any(_running_pid(Path(folder), name) for name in DAEMONS):
        raise ConfigError(f"{folder}: a local Slurm already runs from this folder; `make slurm-down` first")
    cluster = write_config(folder)
    processes = start_daemons(cluster, timeout_s)
    for name, process in zip(DAEMONS, processes, strict=True):
        (cluster.folder / f"{name}.daemon-pid").write_text(str(process.pid))
    try:
        wait_until_idle(cluster, timeout_s)
    except SlurmUnavailable:
        down(folder)
        raise
    return cluster


def down(folder: Path) -> list[str]:
    """Stop the daemons ``up`` started from ``folder`` (by their recorded pids); returns the ones stopped."""
    stopped = []
    for name in reversed(DAEMONS):
        pid = _running_pid(Path(folder), name)
        if pid is None:
            continue
        os.kill(pid, signal.SIGTERM)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and _alive(pid):
            time.sleep(0.2)
        if _alive(pid):
            os.kill(pid, signal.SIGKILL)
        stopped.append(name)
        (Path(folder) / f"{name}.daemon-pid").unlink(missing_ok=True)
    return stopped


def _running_pid(folder: Path, name: str) -> int | None:
    path = folder / f"{name}.daemon-pid"
    if not path.is_file():
        return None
    pid = int(path.read_text().strip())
    return pid if _alive(pid) else None


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:  # a zombie is not alive
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except (OSError, IndexError):
        return True


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m harness.fleet.slurm_local", description="a one-machine Slurm cluster on 127.0.0.1"
    )
    parser.add_argument("action", choices=("up", "down"))
    parser.add_argument("folder", type=Path, help="where slurm.conf, state and logs live")
    args = parser.parse_args(argv)
    try:
        if args.action == "up":
            cluster = up(args.folder)
            print(
                f"Slurm is up: node {cluster.node} ({cluster.cpus} CPUs, {cluster.memory_mb} MB, features "
                f"{','.join(cluster.features)}), partition {cluster.partition}\n"
                f"export SLURM_CONF={cluster.conf}"
            )
        else:
            stopped = down(args.folder)
            print(f"stopped {', '.join(stopped)}" if stopped else f"{args.folder}: no local Slurm running")
    except (SlurmUnavailable, ConfigError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
