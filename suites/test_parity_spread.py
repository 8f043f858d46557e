"""Where the parity bounds come from: every suite model trained N times independently (training seeds
1..N, `--edgebench-spread-trainings`, default 5), each compared with OpenVINO at every precision the CPU
runs natively. Each healthy training must pass; the terminal summary prints each metric's range over all
trainings beside its bound, and each model's reference accuracy and margins. Marked slow (about 90 minutes
on 2 cores): `pytest -m slow suites/test_parity_spread.py -p no:xdist`."""

from __future__ import annotations

import pytest

from harness import parity
from harness.backends import BackendConfig
from harness.pytest_plugin.cases import LADDER, SUITE_MODELS, known_limits
from harness.pytest_plugin.helpers import skip_unless_native

pytestmark = pytest.mark.slow


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    trainings = metafunc.config.getoption("edgebench_spread_trainings")
    cases = [(model, seed, rung) for model in SUITE_MODELS for seed in range(1, trainings + 1) for rung in LADDER]
    metafunc.parametrize(
        "spread_case",
        [pytest.param(c, marks=known_limits(c[0], c[2][0])) for c in cases],
        ids=[f"{m}-seed{s}-{parity.rung(*r)}" for m, s, r in cases],
    )


def test_independent_training_is_within_bounds(spread_case, models_under_test, record_property):
    model, seed, (precision, quantization) = spread_case
    skip_unless_native("CPU", precision)
    subject = models_under_test(model, seed)
    if precision == "FP32":
        record_property(
            "margins", parity.margin_figure(f"{model} seed {seed}", subject.reference_logits(), subject.labels)
        )
    config = BackendConfig("CPU", precision, 1, quantization=quantization)
    result = subject.parity("openvino", config)
    record_property(
        "parity",
        {
            **result.to_json(),
            "case": f"{model}-seed{seed}-{result.precision}",
            "model": model,
            "backend": "openvino",
            "device": "CPU",
            "batch": 1,
            "seed": seed,
        },
    )
    assert result.within_tolerance, f"{model} seed {seed} {result.precision}: {'; '.join(result.failures)}"
