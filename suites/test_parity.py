"""OpenVINO (or any --backend) against stock TensorFlow on the same preprocessed images, within the
tolerance table in harness/parity.py."""

from __future__ import annotations

import numpy as np
import pytest

from harness import parity
from harness.workflow import infer_each

pytestmark = pytest.mark.edge
PRECISION = "FP32"


@pytest.mark.parametrize("batch_size", [1, 4])
def test_candidate_matches_tensorflow(backends, candidate_backend, edge_model, test_images, batch_size):
    reference, candidate = backends("tf"), backends(candidate_backend, precision=PRECISION)
    images = test_images[: (len(test_images) // batch_size) * batch_size]
    if not len(images):
        pytest.skip(f"only {len(test_images)} test images; batch {batch_size} needs more")
    expected = np.concatenate([reference.infer(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
    actual = np.concatenate([candidate.infer(images[i:i + batch_size]) for i in range(0, len(images), batch_size)])
    assert actual.shape == (len(images), len(edge_model.classes))
    result = parity.compare(expected, actual, PRECISION)
    assert result.within_tolerance, (
        f"{candidate_backend} vs tf at batch {batch_size}: max|Δp|={result.max_abs_prob:.2e} "
        f"max|Δlogit|={result.max_abs_logit:.2e} top-1={result.top1_agreement:.2f}; tolerance {result.tolerance}")


def test_outputs_are_not_degenerate(backends, test_images):
    """Parity on near-uniform softmaxes proves little: the model under test must be confident somewhere."""
    probabilities = parity.softmax(backends("tf").infer(test_images))
    assert probabilities.max() > 2.0 / probabilities.shape[1], probabilities.round(3)


@pytest.mark.parametrize("name", ["tf", "openvino"])
def test_batch_rows_equal_single_image_results(backends, name, test_images):
    """Batch invariance: row i of a batch equals the image inferred alone."""
    backend = backends(name, precision=PRECISION)
    batch = test_images[:4]
    together = backend.infer(batch)
    alone = np.concatenate([backend.infer(batch[i:i + 1]) for i in range(len(batch))])
    result = parity.compare(alone, together, PRECISION)
    assert result.within_tolerance, result


@pytest.mark.parametrize("device", ["CPU", "AUTO"])
def test_compiled_precision_is_the_one_asked_for(backends, device):
    """The CPU plugin would pick bf16 by itself on AVX-512 BF16 / AMX processors; FP32 must be FP32, also
    through AUTO (which does not report a precision: it is read off the runtime graph)."""
    described = backends("openvino", device=device, precision=PRECISION).describe()
    assert described["precision"] == PRECISION, described
    assert described["runtime_layers"]["by_precision"].get("bf16", 0) == 0, described


def test_infer_each_rejects_a_label_map_of_the_wrong_width(backends, edge_model, test_images):
    from harness.errors import ArtifactError

    with pytest.raises(ArtifactError, match="label map has 2 classes"):
        infer_each(backends("tf"), test_images[:1], edge_model.classes[:2])
