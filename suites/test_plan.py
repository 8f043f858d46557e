"""Which backend x precision pairs `edgebench run` measures: the reference always beside a candidate, the
precision ladder, and every skipped pair with its reason. Cheap: no model is loaded."""

from __future__ import annotations

import pytest

from harness import cli, plan
from harness.backends import backend_class
from harness.errors import BackendError


def _labels(backend_plan):
    return [pair.label for pair in backend_plan.pairs]


def _every_precision(device):
    return ("FP32", "FP16", "BF16", "INT8")


def test_a_candidate_alone_gets_the_tf_fp32_reference_whatever_the_precision():
    backend_plan = plan.plan_backends(["openvino"], ["INT8"], "CPU", native=_every_precision)
    assert _labels(backend_plan) == ["tf", "openvino-int8"]
    assert backend_plan.reference_added and backend_plan.to_json()["reference_added"]
    [note] = backend_plan.notes
    assert "Reference tf FP32 added" in note and "\n" not in note


def test_an_asked_for_reference_runs_once_at_fp32_and_is_not_reported_as_added():
    backend_plan = plan.plan_backends(["openvino", "tf", "null"], ["FP16", "INT8"], "AUTO", native=_every_precision)
    assert _labels(backend_plan) == ["tf", "openvino-fp16", "openvino-int8", "null"]
    assert not backend_plan.reference_added and backend_plan.notes == []


def test_no_candidate_no_reference_added():
    assert _labels(plan.plan_backends(["null"], ["FP32"], "CPU")) == ["null"]
    assert _labels(plan.plan_backends(["tf"], ["INT8"], "CPU")) == ["tf"]


def test_a_precision_a_candidate_cannot_run_is_skipped_with_its_reason(monkeypatch):
    class Fp32Only:  # as ovtf, which does not import on most nodes
        precisions = ("FP32",)

    monkeypatch.setattr(plan, "backend_class", lambda name: Fp32Only if name == "ovtf" else backend_class(name))
    backend_plan = plan.plan_backends(["openvino", "ovtf"], ["FP32", "INT8"], "CPU", native=_every_precision)
    assert _labels(backend_plan) == ["tf", "openvino", "openvino-int8", "ovtf"]
    assert backend_plan.to_json()["skipped"] == [
        {"backend": "ovtf", "precision": "INT8", "reason": "backend ovtf runs FP32 only"}
    ]


def test_an_asked_for_precision_the_device_lacks_is_skipped_not_run_under_its_name():
    """OpenVINO's CPU plugin runs FP16 as BF16 or FP32 where the CPU has no FP16: that is not an FP16 figure."""
    backend_plan = plan.plan_backends(
        ["openvino"], ["FP32", "FP16", "INT8"], "CPU", native=lambda device: ("FP32", "INT8")
    )
    assert _labels(backend_plan) == ["tf", "openvino", "openvino-int8"]
    [skipped] = backend_plan.to_json()["skipped"]
    assert (skipped["precision"], skipped["reason"]) == (
        "FP16",
        "not native on CPU: CPU's OPTIMIZATION_CAPABILITIES list no FP16",
    )
    assert plan.plan_backends(["openvino"], ["FP32"], "CPU", native=pytest.fail).skipped == ()  # FP32: no lookup


def test_when_every_asked_for_candidate_is_skipped_the_run_stops_before_training_in_one_line():
    with pytest.raises(BackendError, match="nothing to compare with tf: openvino FP16 not native on CPU") as caught:
        plan.plan_backends(["openvino"], ["FP16"], "CPU", native=lambda device: ("FP32", "INT8"))
    assert "\n" not in str(caught.value)


@pytest.mark.parametrize("device,read_from", [("CPU", "CPU"), ("AUTO", "CPU"), ("AUTO:GPU,CPU", "CPU"), ("GPU", "GPU")])
def test_ladder_is_what_the_device_runs_natively_and_lists_the_rest(device, read_from):
    asked = []

    def native(d):
        asked.append(d)
        return ("FP32", "INT8")

    backend_plan = plan.plan_backends(["openvino"], ["FP16"], device, ladder=True, native=native)
    assert asked == [device]  # the backend's own lookup resolves a virtual device to the CPU
    assert _labels(backend_plan) == ["tf", "openvino", "openvino-int8"]
    skipped = backend_plan.to_json()["skipped"]
    assert [(s["backend"], s["precision"]) for s in skipped] == [("openvino", "FP16"), ("openvino", "BF16")]
    assert all(f"{read_from}'s OPTIMIZATION_CAPABILITIES list no {s['precision']}" in s["reason"] for s in skipped)
    assert backend_plan.to_json()["ladder"] == {
        "device": device,
        "capabilities_of": read_from,
        "precisions": ["FP32", "INT8"],
    }
    assert any(line.startswith("Skipped openvino FP16: not native") for line in backend_plan.notes)


def test_ladder_on_this_node_matches_openvino():
    from harness.backends.openvino import native_precisions

    backend_plan = plan.plan_backends(["openvino"], [], "CPU", ladder=True)
    rungs = native_precisions("CPU")
    assert rungs[0] == "FP32" and backend_plan.ladder.precisions == rungs
    ran = {pair.precision for pair in backend_plan.pairs if pair.backend == "openvino"}
    skipped = {s.precision for s in backend_plan.skipped}
    assert ran == set(rungs) and ran | skipped == {"FP32", "FP16", "BF16", "INT8"} and not ran & skipped


def test_ladder_on_a_missing_device_is_a_one_line_error():
    with pytest.raises(BackendError, match="device 'NPU9' is not available on this node") as caught:
        plan.plan_backends(["openvino"], [], "NPU9", ladder=True)
    assert "\n" not in str(caught.value)


def test_cli_ladder_option_reaches_the_run_config_and_excludes_precision(capsys):
    from harness.cli.run import run_config
    from harness.workflow import RunConfig

    parser = cli.build_parser()
    config = run_config(parser.parse_args(["run", "--ladder", "--backend", "openvino"]))
    assert config.ladder and config.backends == ("openvino",)
    default = run_config(parser.parse_args(["run"]))
    assert (default.ladder, default.precisions, default.backends) == (
        RunConfig.ladder,
        RunConfig.precisions,
        RunConfig.backends,
    )
    with pytest.raises(SystemExit):
        parser.parse_args(["run", "--ladder", "--precision", "INT8"])
    assert "not allowed with argument" in capsys.readouterr().err
