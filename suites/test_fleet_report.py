"""Fleet results merged: the per-node ladder and verdicts, the merged report (in headless Chromium) and the
terminal table, on synthetic node result sets (fleet_helpers), and the 200-node merge benchmark."""

from __future__ import annotations

import pytest

from fleet_helpers import INT8_SKIP, PROCESSORS, synthetic_node, synthetic_run
from harness import fileio, fleet


def test_merged_fleet_report_in_a_browser_and_with_a_failed_node(tmp_path, headless_chromium):
    """Eight nodes of four processor kinds (one of which did not run INT8), one failed with its log, one that
    never finished publishing: the precision ladder per processor, the node that did not run INT8 shown as
    such, the failures with reason and log tail, and the speedup plot, in Chromium."""
    run_dir = synthetic_run(tmp_path / "run-8", 8, without_int8=(5,))
    fileio.write_json(
        run_dir / "node-broken" / fleet.FAILURE,
        {
            "node_id": "node-broken",
            "reason": "timed out after 1800 s (per-node timeout)",
            "log_tail": "collected 9 items\nsuites/test_parity.py ...",
        },
    )
    fileio.write_text(run_dir / "node-half" / "benchmark.json", "{}")  # files but no manifest
    merged = fleet.merge_run(run_dir)
    assert len(merged.nodes) == 8 and {f["node_id"] for f in merged.failures} == {"node-broken", "node-half"}
    assert "no manifest" in next(f["reason"] for f in merged.failures if f["node_id"] == "node-half")
    summary = merged.to_json()
    assert list(summary["rungs"]) == ["tf", "openvino", "openvino-int8"]  # null is no rung; TF first
    assert summary["verdicts"] == {"pass": 7, "not run": 1, "fail": 0}
    short = next(p for p in summary["processors"] if p["cpu"] == PROCESSORS[1])  # nodes 1 and 5
    assert [r["nodes_ran"] for r in short["ladder"]] == [2, 2, 1] and short["verdicts"]["not run"] == 1
    _, html_path = fleet.write_merged(merged, tmp_path / "out")
    dom, dark_fraction = headless_chromium(html_path)
    assert dom.count("<img") == 1 and "Xeon(R) Platinum 8480+" in dom and "timed out after 1800 s" in dom
    assert "suites/test_parity.py" in dom  # the log tail
    cells = _table_rows(dom, "Precision ladder")
    int8 = next(c for c in cells if c[:2] == [PROCESSORS[1], "openvino-int8"])
    assert int8[2:4] == ["INT8", "1/2"] and int8[-1] == "1/1"  # ran on one node of two, within tolerance there
    speedup = short["ladder"][2]["speedup"]  # node 1 alone: TF 21 ms, INT8 2.25 ms
    assert speedup == pytest.approx(21 / 2.25, rel=0.1)
    assert float(int8[5].rstrip("×")) == pytest.approx(speedup, abs=0.01)
    node_5 = next(c for c in _table_rows(dom, "Per node") if c[0] == "node-005")
    assert node_5[2:5] == ["not run", "tf openvino", "openvino-int8"] and node_5[-1] == "1"
    assert [INT8_SKIP[0], INT8_SKIP[1], "1"] in _table_rows(dom, "Not run")
    assert dark_fraction > 0.01, "the page rendered (almost) blank: the plot is missing"


def _table_rows(dom: str, heading: str) -> list[list[str]]:
    """The text of each cell of the table after ``<h2>heading</h2>`` in a DOM Chromium dumped."""
    import html
    import re

    table = dom.split(f"<h2>{heading}</h2>", 1)[1].split("</table>", 1)[0]
    return [
        [html.unescape(re.sub("<[^>]+>", "", cell)) for cell in re.findall(r"<td[^>]*>(.*?)</td>", row)]
        for row in re.findall(r"<tr>(.*?)</tr>", table)[1:]
    ]


def test_fleet_report_heatmap_headline_and_failed_reasons_in_a_browser(tmp_path, headless_chromium):
    """The node x rung speedup heatmap with each cell's bootstrap interval, the "N out of M nodes ran on
    OpenVINO" headline (failed nodes count in M; a node whose OpenVINO INT8 is out of tolerance does not count
    in N), and failed nodes with the scheduler's reason, rendered by Chromium."""
    run_dir = synthetic_run(tmp_path / "run-heat", 4, without_int8=(2,))
    bad = synthetic_node(run_dir / "node-bad", PROCESSORS[0], tf_ms=20.0, ov_ms=5.0, int8_noise=3.0)
    files = {name: bad / name for name in ("benchmark.json", "report.json")}
    fleet.complete_report(files, run_dir.name, bad.name, bad / "report.json")
    fileio.write_json(bad / fleet.MANIFEST, fleet.manifest_for(run_dir.name, bad.name, files))
    reason = (
        "walltime exceeded: Slurm ended job 7 at its time limit of 00:01:00 after 00:01:04 (JobState=TIMEOUT, "
        "Reason=TimeLimit, ExitCode=0:0); raise --walltime; the node's Dask worker ended with its job"
    )
    fileio.write_json(run_dir / "node-late" / fleet.FAILURE, {"node_id": "node-late", "reason": reason, "log_tail": ""})
    summary = fleet.merge_run(run_dir).to_json()
    assert fleet.openvino_headline(summary) == "4 out of 6 nodes ran on OpenVINO"
    node_0 = next(n for n in summary["nodes"] if n["node_id"] == "node-000")["ladder"]["openvino"]
    low, high = node_0["speedup_ci"]  # TF 20 ms and OpenVINO 4 ms, 5 % lognormal noise on 100 samples each
    assert low < node_0["speedup"] < high and high - low < 0.05 * node_0["speedup"] and low < 5.0 * 1.02
    assert high > 5.0 * 0.98

    _, html_path = fleet.write_merged(fleet.merge_run(run_dir), tmp_path / "out")
    dom, dark_fraction = headless_chromium(html_path)
    assert '<p class="headline">4 out of 6 nodes ran on OpenVINO</p>' in dom
    rows = {row[0]: row[1:] for row in _table_rows(dom, "Speedup over TF FP32 per node and rung")}
    assert set(rows) == {"node-000", "node-001", "node-002", "node-003", "node-bad", "node-late"}
    cpu, ov, int8 = rows["node-000"]
    assert cpu == PROCESSORS[0] and ov == f"{node_0['speedup']:.2f}×{low:.2f}–{high:.2f}"
    assert int8.startswith(f"{summary['nodes'][0]['ladder']['openvino-int8']['speedup']:.2f}×")
    assert rows["node-002"][2] == "not run"  # node 2 ran no INT8
    assert rows["node-late"] == [f"failed: {reason}"]
    assert (
        dom.index("Per processor") < dom.index("Speedup over TF FP32 per node and rung") < dom.index("Precision ladder")
    )  # beside the per-processor table
    assert dark_fraction > 0.01


def test_node_results_keep_each_rung_by_label_and_old_files_by_backend(tmp_path):
    node = synthetic_node(tmp_path / "node", PROCESSORS[0], tf_ms=20.0, ov_ms=5.0)
    results = fleet.node_results(fileio.read_json_file(node / "benchmark.json"))["backends"]
    assert list(results) == ["tf", "openvino", "openvino-int8", "null"]
    int8 = results["openvino-int8"]
    assert int8["precision"] == "INT8" and int8["describe"]["backend"] == "openvino"
    assert int8["parity"]["within_tolerance"] is True and 0.9 < int8["parity"]["top1_agreement"] < 1.0
    assert int8["accuracy"] == int8["parity"]["candidate_accuracy"] and results["tf"]["accuracy"] == 0.92
    assert "label" not in int8["describe"] and "parity" not in int8["describe"]  # describe() fields only
    assert int8["latency"]["median_ms"] == pytest.approx(2.5, rel=0.1) and int8["latency"]["n"] == 100

    old = {
        "benchmarks": [
            {
                "name": "test_infer_latency_batch1[openvino]",
                "params": {"latency_backend": "openvino"},
                "extra_info": {"backend": "openvino", "precision": "FP32"},
                "stats": {"median": 0.004, "min": 0.003, "max": 0.005, "mean": 0.004, "rounds": 5},
            }
        ]
    }
    (entry,) = fleet.node_results(old)["backends"].items()
    assert entry[0] == "openvino" and entry[1]["precision"] == "FP32" and entry[1]["parity"] is None
    renamed = {"benchmarks": [{**old["benchmarks"][0], "name": "test_x[tf]", "params": {"latency_backend": "tf"}}]}
    assert list(fleet.node_results(renamed)["backends"]) == ["openvino"]  # extra_info decides, never the test id


def test_node_summary_publishes_not_run_apart_from_passed():
    outcomes = {
        "passed": [{"test": "a", "reason": ""}] * 3,
        "failed": [{"test": "b", "reason": "boom"}],
        "skipped": [dict(zip(("test", "reason"), INT8_SKIP, strict=True))],
    }
    summary = fleet.node_summary({}, [], outcomes, 1)
    assert summary["tests"] == {"passed": 3, "failed": 1, "not_run": 1}
    assert summary["not_run_tests"] == [{"test": INT8_SKIP[0], "reason": INT8_SKIP[1]}]
    assert summary["failed_tests"] == [{"test": "b", "reason": "boom"}]


def test_node_verdicts_never_pass_by_absence(tmp_path):
    """A node that did not run INT8 is "not run", one whose INT8 is out of tolerance "fail"; a node with no
    parity figure at all or unknown test outcomes does not pass either."""

    def row(name: str, **options) -> dict:
        node = synthetic_node(tmp_path / name, PROCESSORS[0], tf_ms=20.0, ov_ms=5.0, **options)
        files = {n: node / n for n in ("benchmark.json", "report.json")}
        return fileio.read_json_file(fleet.complete_report(files, "run", name, node / "report.json"))

    documents = [row("healthy"), row("no-int8", int8=False), row("bad-int8", int8_noise=3.0)]
    unmeasured = {
        **documents[0],
        "node_id": "unmeasured",
        "parity": {},
        "backends": {k: {**v, "parity": None} for k, v in documents[0]["backends"].items()},
    }
    unknown = {**documents[0], "node_id": "unknown", "tests": {}}
    summary = fleet.MergedRun("run", [*documents, unmeasured, unknown], []).to_json()
    verdicts = {r["node_id"]: (r["verdict"], r["parity_ok"], r["rungs_not_run"]) for r in summary["nodes"]}
    assert verdicts == {
        "healthy": ("pass", True, []),
        "no-int8": ("not run", True, ["openvino-int8"]),
        "bad-int8": ("fail", False, []),
        "unmeasured": ("not run", None, []),
        "unknown": ("not run", True, []),
    }
    bad = next(r for r in summary["nodes"] if r["node_id"] == "bad-int8")
    assert bad["ladder"]["openvino-int8"]["top1_agreement"] < 0.9 and bad["openvino_ok"] is False
    (processor,) = summary["processors"]
    assert processor["parity_ok"] is False and processor["not_run"] == 1
    int8 = processor["ladder"][2]
    # ran on 4 nodes; judged on 3 (the unmeasured one has no verdict, and is not counted within tolerance)
    assert (int8["nodes_ran"], int8["within_tolerance"], int8["judged"]) == (4, 2, 3)
    assert int8["top1_agreement"] == bad["ladder"]["openvino-int8"]["top1_agreement"]  # the worst node's


def test_terminal_table_shows_the_ladder_and_what_did_not_run(tmp_path):
    from rich.console import Console

    merged = fleet.merge_run(synthetic_run(tmp_path / "run-4", 4, without_int8=(2,)))
    console = Console(record=True, width=220)
    console.print(fleet.fleet_table(merged))
    text = console.export_text()
    assert "3 passed, 1 with tests not run, 0 failing" in text
    ladder = [line for line in text.splitlines() if "openvino-int8" in line and "Platinum" in line]
    assert len(ladder) == 1 and "0/1" in ladder[0]  # node 2 is the only Platinum node
    assert INT8_SKIP[0] in text  # brackets kept, not eaten as markup


# ------------------------------------------------------------------------------------------------
# Benchmark: figure printed in the terminal summary, serial pass (latency marker)


@pytest.mark.latency
def test_merging_200_node_result_sets(benchmark, tmp_path, record_property):
    run_dir = synthetic_run(tmp_path / "run-200", 200)

    def merge_and_write():
        merged = fleet.merge_run(run_dir)
        fleet.write_merged(merged, tmp_path / "out")
        return merged

    merged = benchmark.pedantic(merge_and_write, rounds=3, iterations=1)
    assert len(merged.nodes) == 200 and len(merged.to_json()["processors"]) == len(PROCESSORS)
    record_property(
        "edgebench_figure",
        f"fleet merge of 200 node result sets (read, check manifests, per-processor "
        f"table, fleet-report.json, report.html): median "
        f"{benchmark.stats.stats.median:.2f} s (target < 5 s)",
    )
