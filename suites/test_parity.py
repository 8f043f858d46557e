"""OpenVINO (and ovtf where it imports) against stock TensorFlow: models x backends x devices x precisions
x batch, on 100 generated images, within the tolerance table in harness/parity.py. Run with -m slow for
the whole matrix; the terminal summary prints the measured worst case per precision."""

from __future__ import annotations

import numpy as np
import pytest

from harness import parity
from harness.backends import BackendConfig, BackendError
from harness.workflow import infer_each

SUITE_MODELS = ("mobilenet_v2", "efficientnet_v2_b0", "resnet50_v2")  # conftest.SUITE_MODELS' keys

pytestmark = pytest.mark.edge


def _skip_unless_runnable(case) -> None:
    import openvino as ov

    core = ov.Core()
    if case.device not in ("AUTO",) and case.device not in core.available_devices:
        pytest.skip(f"OpenVINO lists no {case.device} on this node (available: {', '.join(core.available_devices)})")
    device = "CPU" if case.device == "AUTO" else case.device
    capabilities = core.get_property(device, "OPTIMIZATION_CAPABILITIES")
    if case.precision not in capabilities:
        pytest.skip(f"{device} on this node does not run {case.precision} natively "
                    f"(OPTIMIZATION_CAPABILITIES: {', '.join(capabilities)})")


def test_parity(parity_case, models_under_test, record_property):
    case = parity_case
    _skip_unless_runnable(case)
    subject = models_under_test(case.model)
    try:
        candidate = subject.backend(case.backend, BackendConfig(case.device, case.precision, case.batch))
    except BackendError as exc:
        if case.backend == "ovtf":
            pytest.skip(str(exc))
        raise
    images, step = subject.parity_images, case.batch or 1
    actual = np.concatenate([candidate.infer(images[i:i + step]) for i in range(0, len(images), step)])
    result = parity.compare(subject.reference_logits(), actual, case.precision)
    record_property("parity", {**result.to_json(), "case": case.id})
    assert candidate.describe()["precision"] == case.precision, candidate.describe()
    assert result.within_tolerance, (
        f"{case.id}: max|Δp|={result.max_abs_prob:.2e} rel Δlogit={result.max_rel_logit:.2e} "
        f"top-1={result.top1_agreement:.3f} top-5={result.top5_overlap:.3f}; tolerance {result.tolerance}")


def test_dynamic_batch_model_compiled_once_serves_batch_1_and_4(model_under_test):
    subject = model_under_test
    backend = subject.backend("openvino", BackendConfig(batch=None))
    images = subject.parity_images[:8]
    singles = np.concatenate([backend.infer(images[i:i + 1]) for i in range(8)])
    fours = np.concatenate([backend.infer(images[i:i + 4]) for i in (0, 4)])
    for outputs in (singles, fours):
        assert parity.compare(subject.reference_logits()[:8], outputs, "FP32").within_tolerance
    assert backend.describe()["batch"] == "dynamic"


def test_int8_runs_quantized_layers_and_reports_where_ops_run(model_under_test):
    """Where ops run: TF graph ops vs converted ops vs executed layers, and how many execute in INT8."""
    subject = model_under_test
    described = subject.backend("openvino", BackendConfig(precision="INT8")).describe()
    layers = described["runtime_layers"]
    assert layers["by_precision"].get("i8", 0) + layers["by_precision"].get("u8", 0) > 0, layers
    assert described["ops_converted"] > 0 and layers["count"] > 0 and sum(layers["by_type"].values()) == layers["count"]
    assert described["calibration_images"] == len(subject.calibration)
    assert subject.backend("tf").describe()["graph_ops"] > 0


@pytest.mark.parametrize("model", list(SUITE_MODELS))
def test_outputs_are_not_degenerate(models_under_test, model, pytestconfig):
    """Parity on near-uniform softmaxes proves little: every suite model must be confident somewhere."""
    if pytestconfig.getoption("edgebench_artifact"):
        pytest.skip("a given --edgebench-artifact is not one of the suite's models")
    probabilities = parity.softmax(models_under_test(model).reference_logits())
    assert np.median(probabilities.max(axis=1)) > 2.0 / probabilities.shape[1], probabilities.round(3)


@pytest.mark.parametrize("name", ["tf", "openvino"])
def test_batch_rows_equal_single_image_results(backends, name, test_images):
    """Batch invariance: row i of a batch equals the image inferred alone."""
    backend = backends(name)
    batch = test_images[:4]
    together = backend.infer(batch)
    alone = np.concatenate([backend.infer(batch[i:i + 1]) for i in range(len(batch))])
    result = parity.compare(alone, together, "FP32")
    assert result.within_tolerance, result


@pytest.mark.parametrize("device", ["CPU", "AUTO"])
def test_compiled_precision_is_the_one_asked_for(backends, device):
    """The CPU plugin would pick bf16 by itself on AVX-512 BF16 / AMX processors; FP32 must be FP32, also
    through AUTO (which does not report a precision: it is read off the runtime graph)."""
    described = backends("openvino", device=device).describe()
    assert described["precision"] == "FP32", described
    assert described["runtime_layers"]["by_precision"].get("bf16", 0) == 0, described


def test_infer_each_rejects_a_label_map_of_the_wrong_width(backends, edge_model, test_images):
    from harness.errors import ArtifactError

    with pytest.raises(ArtifactError, match="label map has 2 classes"):
        infer_each(backends("tf"), test_images[:1], edge_model.classes[:2])


def test_ovtf_placement_summary_is_parsed():
    from harness.backends.ovtf import parse_ovtf_summary

    line = "OVTF Summary -> 250 out of 263 nodes in the graph (95%) are now running with OpenVINO™ backend"
    assert parse_ovtf_summary(line) == {"nodes_on_openvino": 250, "nodes_total": 263, "percent": 95}
    assert parse_ovtf_summary("nothing here") == {}
