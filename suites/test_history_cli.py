"""``edgebench history`` end to end: fleet runs read from moto S3, the trend page in headless Chromium, and
bad input in one line or a listed skip."""

from __future__ import annotations

import base64
import io
import json
from datetime import timedelta
from pathlib import Path

import numpy as np
from PIL import Image

from harness import cli, fleet
from harness.gate.history_trend import analyse
from history_helpers import T0, benchmark_json, identity, series_of, write

# ------------------------------------------------------------------------------------------------
# Fleet runs in S3, the CLI, the trend page


def _publish_fleet(location, tmp_path: Path, runs: int = 8) -> None:
    """``runs`` fleet runs of two nodes (two processors), published as a fleet node publishes (report.json
    completed from benchmark.json, files, manifest last; one S3 client for all); node A's OpenVINO gets 15 %
    slower from run 5 on. Run 3 has a failed node and run 4 an incomplete one."""
    from harness.store import S3Store

    s3 = S3Store(location)
    machines = {"node-a": identity(), "node-b": identity(cpu_brand="AMD EPYC Test")}
    rng = np.random.default_rng(11)
    for run in range(runs):
        run_id = f"2026110{run}T000000Z-{run:04x}"
        for node, machine in machines.items():
            slow = 1.15 if node == "node-a" and run >= 4 else 1.0
            medians = {
                "tf": 10.0 * (1 + 0.01 * rng.standard_normal()),
                "openvino": 2.0 * slow * (1 + 0.01 * rng.standard_normal()),
            }
            path = write(
                tmp_path / run_id / node / "benchmark.json",
                benchmark_json(machine, T0 + timedelta(days=run), medians, seed=run),
            )
            files = {
                "benchmark.json": path,
                "report.json": fleet.complete_report({"benchmark.json": path}, run_id, node, path.parent / "r.json"),
            }
            fleet.publish_node(s3.under("runs", run_id, node), run_id, node, files)
    fleet.publish_failure(s3.under("runs", "20261103T000000Z-0003", "node-c"), "node-c", "walltime exceeded")
    s3.upload_file(
        write(tmp_path / "stray.json", benchmark_json(identity(), T0, {"tf": 1.0})),
        location.key("runs", "20261104T000000Z-0004", "node-d", "benchmark.json"),
    )


def test_history_of_fleet_runs_in_s3(s3_location, tmp_path, capsys):
    """`edgebench history s3://BUCKET/PREFIX/runs/`: node results grouped by processor, node A's 15 % step found
    at run 5 (exit 1 with --fail-on-regression), node B stable, the failed and the incomplete node skipped with
    their reasons; pages written."""
    _publish_fleet(s3_location, tmp_path)
    uri = f"s3://{s3_location.bucket}/{s3_location.prefix}/runs/"
    out = tmp_path / "history"
    assert (
        cli.main(
            ["history", uri, "--out", str(out), "--endpoint-url", s3_location.endpoint_url, "--fail-on-regression"]
        )
        == 1
    )  # node A's OpenVINO regressed
    printed = capsys.readouterr().out
    document = json.loads((out / "history.json").read_text())
    by_name = {(s["machine"]["cpu_brand"], s["benchmark"]): s for s in document["series"]}
    a_ov = by_name[("Intel(R) Xeon(R) Test", "openvino")]
    assert [cp["index"] for cp in a_ov["change_points"]] == [4] and a_ov["status"] == "regression", a_ov["findings"]
    assert by_name[("AMD EPYC Test", "openvino")]["status"] == "stable"
    assert all(len(s["runs"]) == 8 for s in document["series"]), [
        (s["benchmark"], len(s["runs"])) for s in document["series"]
    ]
    assert all(s["runs"][0]["source"].startswith(f"s3://{s3_location.bucket}/") for s in document["series"])
    reasons = {s["source"].rsplit("/runs/", 1)[1]: s["reason"] for s in document["skipped"]}
    assert reasons["20261103T000000Z-0003/node-c/failure.json"] == "failed fleet node: walltime exceeded"
    assert reasons["20261104T000000Z-0004/node-d/benchmark.json"].startswith("fleet node without manifest.json")
    assert "skipped s3://" in printed and "failed fleet node: walltime exceeded" in printed
    assert a_ov["findings"][0].startswith("regression: latency +1") and "from run 5" in a_ov["findings"][0]
    assert (out / a_ov["page"]).is_file() and (out / "index.html").is_file()


def test_trend_page_renders_in_headless_chromium(tmp_path, headless_chromium):
    """The page of a series with a step and a creep: the findings, the plot with the change point line (red)
    and the creep window (orange shading) drawn, the machine key and the runs table; the index links it."""
    rng = np.random.default_rng(5)
    values = np.r_[np.full(15, 4.0), np.full(10, 4.6), 4.6 * 1.01 ** np.arange(1, 16)] * (
        1 + 0.004 * rng.standard_normal(40)
    )
    analysis = analyse(series_of(values))
    assert analysis.change_points and analysis.creep.flagged
    from harness.gate.history_html import page_path, render_history

    index = render_history([analysis, analyse(series_of([4.0, 4.1], name="tf"))], tmp_path)
    page = tmp_path / page_path(analysis)
    dom, dark = headless_chromium(page)
    assert "status: creep" in dom and "regression: latency +1" in dom and "from run 16" in dom
    assert "creep: latency +1" in dom and "a pairwise gate passes every step" in dom
    assert "Intel(R) Xeon(R) Test" in dom and "run-39.json" in dom and dom.count("<img") == 1
    png = dom.split('src="data:image/png;base64,')[1].split('"')[0]
    pixels = np.asarray(Image.open(io.BytesIO(base64.b64decode(png))).convert("RGB")).reshape(-1, 3).astype(int)
    red = ((pixels[:, 0] > 200) & (pixels[:, 1] < 60) & (pixels[:, 2] < 60)).sum()
    shade = (np.abs(pixels - (255, 237, 204)).sum(axis=1) < 20).sum()  # orange at alpha 0.2 on white
    assert red > 100 and shade > 2000, (red, shade)
    assert dark > 0.01, "the page rendered (almost) blank"
    index_html = index.read_text()  # the index is plain HTML: no browser needed to check its links
    assert f'href="{page_path(analysis).as_posix()}"' in index_html and "too short" in index_html
    assert (index.parent / page_path(analysis)).is_file()


# ------------------------------------------------------------------------------------------------
# Bad input


def test_bad_input_is_one_line_or_a_listed_skip(tmp_path, capsys):
    assert cli.main(["history", str(tmp_path / "nowhere")]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and str(tmp_path / "nowhere") in err and "pass a folder of stored results" in err

    junk = tmp_path / "junk"
    write(junk / "labels.json", {"cloudy": 0})
    (junk / "broken.json").write_text("{ not json")
    assert cli.main(["history", str(junk)]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and err.startswith(f"edgebench: error: {junk}: no stored results in it")
    assert "broken.json: not readable JSON" in err

    write(junk / "ok.json", benchmark_json(identity(), T0, {"tf": 10.0}))
    write(junk / "nomachine.json", {"benchmarks": [], "datetime": T0.isoformat()})
    write(junk / "notime.json", {**benchmark_json(identity(), T0, {"tf": 1.0}), "datetime": "yesterday"})
    assert cli.main(["history", str(junk), "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    for name, reason in (
        ("broken.json", "not readable JSON"),
        ("labels.json", "not a stored result"),
        ("nomachine.json", "pytest-benchmark JSON without machine_info"),
        ("notime.json", "no usable timestamp"),
    ):
        assert f"skipped {junk / name}: {reason}" in out, out
    assert "Traceback" not in out

    assert cli.main(["history", str(junk), "--max-pvalue", "2"]) == 1
    assert capsys.readouterr().err.strip().startswith("edgebench: error: --max-pvalue 2.0: choose a p-value")


def test_missing_s3_bucket_is_one_line(s3_location, capsys):
    uri = f"s3://{s3_location.bucket}-missing/runs/"
    assert cli.main(["history", uri, "--endpoint-url", s3_location.endpoint_url]) == 1
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and uri.rstrip("/") in err and "bucket does not exist" in err
