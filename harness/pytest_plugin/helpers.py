"""Helpers the suites import: skip on a device that cannot run a precision natively, and a child command's
wall time and peak memory."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import time
from pathlib import Path

import pytest


def skip_unless_native(device: str, precision: str) -> None:
    """Skip, saying why, where OpenVINO lists no such device or the device does not run the precision
    natively (it would run another precision under this one's name)."""
    import openvino as ov

    from harness.backends.openvino import native_precisions

    core = ov.Core()
    if device != "AUTO" and device not in core.available_devices:
        pytest.skip(f"OpenVINO lists no {device} on this node (available: {', '.join(core.available_devices)})")
    if precision not in native_precisions(device):
        physical = "CPU" if device == "AUTO" else device
        pytest.skip(
            f"{physical} on this node does not run {precision} natively (OPTIMIZATION_CAPABILITIES: "
            f"{', '.join(core.get_property(physical, 'OPTIMIZATION_CAPABILITIES'))})"
        )


@dataclasses.dataclass(frozen=True)
class ChildRun:
    seconds: float
    peak_rss_mib: float  # the child's own peak resident set (ru_maxrss), not the test process's
    exit: int
    log: Path

    def tail(self, chars: int = 1500) -> str:
        return self.log.read_text(errors="replace")[-chars:]


def run_measured(command: list[str], cwd: Path, log: Path, env: dict[str, str] | None = None) -> ChildRun:
    """Run ``command`` to the end with its output in ``log``: wall time, peak RSS and exit code."""
    started = time.perf_counter()
    with log.open("w") as out:
        child = subprocess.Popen(command, cwd=cwd, stdout=out, stderr=subprocess.STDOUT, env=env)
        _, status, usage = os.wait4(child.pid, 0)
    return ChildRun(time.perf_counter() - started, usage.ru_maxrss / 1024, os.waitstatus_to_exitcode(status), log)
