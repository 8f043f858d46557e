"""Concurrency (issue 14, item 5): ``pytest -n 2`` and a serial run give identical parity verdicts.

The parity suite runs twice in subprocesses, restricted to a subset (the edge model's FP32, BF16 and plain
INT8 cases, and the reference check; accuracy-aware INT8's search is left out for time), once serially and
once on two xdist workers, each writing ``--edgebench-node-report``. Both use the session-cached suite model
under ``.cache/edgebench/pytest`` (the xdist workers share it through its file lock). Per case, the verdict
(within tolerance, the bounds broken) must be the same, and so must the figures behind it. A case the
processor cannot run (BF16 where it is not native) is skipped in both runs, says why, and is reported as not
compared.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from harness import fileio

SUBSET = "test_parity and (-FP32-b1 or -BF16-b1 or -INT8-b1) and mobilenet_v2-openvino or test_reference_is_accurate"


def _parity_run(root: Path, out: Path, workers: int | None) -> dict:
    argv = [
        sys.executable,
        "-m",
        "pytest",
        "suites/test_parity.py",
        "-m",
        "edge",
        "-k",
        SUBSET,
        "-q",
        "-p",
        "no:benchmark",
        "-p",
        "no:cacheprovider",
        "--edgebench-node-report",
        str(out),
    ]
    argv += ["-n", str(workers)] if workers else ["-p", "no:xdist"]
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTEST_XDIST_", "PYTEST_CURRENT_TEST"))}
    done = subprocess.run(argv, cwd=root, env=env, capture_output=True, text=True, timeout=1800)
    assert done.returncode in (0, 1), f"pytest exit {done.returncode}: {done.stdout[-2000:]}{done.stderr[-2000:]}"
    return fileio.read_json_file(out)


def test_serial_and_two_workers_give_identical_parity_verdicts(pytestconfig, tmp_path, record_property):
    root = Path(pytestconfig.rootpath)
    serial = _parity_run(root, tmp_path / "serial.json", None)
    parallel = _parity_run(root, tmp_path / "n2.json", 2)
    assert serial["parity"], f"no parity case ran serially; not run: {serial['not_run_tests']}"
    assert set(serial["parity"]) == set(parallel["parity"]), (sorted(serial["parity"]), sorted(parallel["parity"]))
    lines = []
    for case in sorted(serial["parity"]):
        one, two = serial["parity"][case], parallel["parity"][case]
        verdict = (one["within_tolerance"], one["failures"])
        assert (two["within_tolerance"], two["failures"]) == verdict, f"{case}: serial {verdict}, -n 2 {two}"
        differing = sorted(k for k in one if one[k] != two.get(k))
        assert not differing, f"{case}: figures differ between serial and -n 2: " + "; ".join(
            f"{k} {one[k]!r} vs {two.get(k)!r}" for k in differing
        )
        lines.append(f"  {case}: {'within bounds' if verdict[0] else 'outside: ' + '; '.join(verdict[1])} (both)")
    for key in ("passed", "failed", "not_run"):
        assert serial["tests"][key] == parallel["tests"][key], (key, serial["tests"], parallel["tests"])
    not_compared = sorted({t["test"] + ": " + t["reason"] for t in serial["not_run_tests"]})
    record_property(
        "edgebench_figure",
        f"serial vs -n 2: {len(serial['parity'])} parity case(s), identical verdicts and figures; "
        f"tests passed {serial['tests']['passed']}, failed {serial['tests']['failed']}, not run "
        f"{serial['tests']['not_run']}\n"
        + "\n".join(lines + [f"  not compared (skipped in both): {t}" for t in not_compared]),
    )
