"""Latency of ``Backend.infer`` alone (inputs preprocessed in fixtures), one benchmark per backend.

Run serially (pytest-benchmark disables itself under xdist): ``pytest -m edge --benchmark-json=node.json``.
The JSON's machine_info["edgebench"] holds the processor identity; each benchmark's extra_info holds the
backend's own description (versions, device full name, precision in effect, hint).
"""

from __future__ import annotations

import pytest

pytestmark = [pytest.mark.edge, pytest.mark.latency]


def test_infer_latency_batch1(benchmark, backends, latency_backend, test_images, edge_model):
    backend = backends(latency_backend)
    batch = test_images[:1]
    benchmark.group = "infer-batch1"
    benchmark.extra_info.update(backend.describe())
    benchmark.extra_info["batch_size"] = 1
    logits = benchmark.pedantic(backend.infer, args=(batch,), warmup_rounds=5, rounds=30, iterations=1)
    assert logits.shape == (1, len(edge_model.classes))
