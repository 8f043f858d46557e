"""What a node tests: the suite models trained when no ``--edgebench-artifact`` is given, the precision ladder,
and the cases parametrized from the options (``candidate_backend``, ``latency_case``, ``parity_case``,
``fault_rung``). Known limits are marked xfail here, with the measurement."""

from __future__ import annotations

import dataclasses
import itertools
from typing import TYPE_CHECKING, TypedDict

import pytest

from harness import data, parity
from harness.backends import PRECISIONS, BackendConfig, result_label
from harness.training import train

if TYPE_CHECKING:
    from _pytest.mark.structures import ParameterSet  # what pytest.param returns; not exported by pytest

# The model the suites train when no --edgebench-artifact is given: small, but trained enough that its
# decisions mean something (reference accuracy and margins are printed at the end of every run).
SUITE_DATASET = data.GeneratorConfig(images_per_class=16, seed=7)
SUITE_HYPERPARAMETERS = train.Hyperparameters(
    epochs=6, batch_size=8, train_only_top_layer=False, validation_split_ratio=0.0
)
SUITE_MODELS = {
    "mobilenet_v2": train.DEFAULT_MODEL_ID,
    "efficientnet_v2_b0": train.EFFICIENTNET_MODEL_ID,
    "resnet50_v2": train.RESNET_MODEL_ID,
}
# From single trainings on these 75 images (README): MobileNetV2 at 3 epochs of batch 16 scored 0.85-0.995
# on the parity images over 5 seeds; at 6 epochs of batch 8 (twice the optimizer steps per epoch) the seed
# that scored 0.73 at batch 16 scored 0.965. EfficientNetV2-B0 fell to 0.34-0.37 at batch 8 and keeps 16
# (0.80 at 6 epochs, 0.56 at 3). ResNet50-V2 costs 3x per epoch: 4 epochs of batch 16.


class TrainingOverrides(TypedDict, total=False):
    """What a suite model changes of SUITE_HYPERPARAMETERS."""

    batch_size: int
    epochs: int


SUITE_TRAINING: dict[str, TrainingOverrides] = {
    train.DEFAULT_MODEL_ID: {},
    train.EFFICIENTNET_MODEL_ID: {"batch_size": 16},
    train.RESNET_MODEL_ID: {"batch_size": 16, "epochs": 4},
}
EDGE_MODEL = "mobilenet_v2"  # the one model `pytest -m edge` trains without an artifact; the others: -m matrix
GIVEN = "given"  # the model passed with --edgebench-artifact
# 200 labelled images (another seed than the training set): one image is 0.5 % of an agreement rate.
PARITY_DATASET = data.GeneratorConfig(images_per_class=40, seed=999)
# Images accuracy-aware INT8 validates on (agreement with TF FP32): neither training nor parity images.
VALIDATION_DATASET = data.GeneratorConfig(images_per_class=20, seed=1999)
# The precision ladder a node measures: every precision, and INT8 twice (plain and accuracy-aware NNCF).
LADDER = (*((p, "ptq") for p in PRECISIONS), ("INT8", "accuracy-control"))
MATRIX_DEVICES = ("AUTO", "GPU", "NPU")  # besides --device; GPU/NPU skip where OpenVINO does not list them


def candidate_backends(config: pytest.Config) -> list[str]:
    return config.getoption("edgebench_backends") or ["openvino"]


def default_model_key(config: pytest.Config) -> str:
    return GIVEN if config.getoption("edgebench_artifact") else EDGE_MODEL


def parametrize(metafunc: pytest.Metafunc) -> None:
    """The cases of the parameters a test asks for, from the options (pytest_generate_tests)."""
    config = metafunc.config
    if "candidate_backend" in metafunc.fixturenames:
        metafunc.parametrize("candidate_backend", candidate_backends(config))
    if "latency_case" in metafunc.fixturenames:  # the reference, each candidate at each precision, the harness
        cases = [
            ("tf", "FP32", "ptq"),
            *((b, *rung) for b in candidate_backends(config) for rung in LADDER),
            ("null", "FP32", "ptq"),
        ]
        metafunc.parametrize("latency_case", [pytest.param(c, id=result_label(*c)) for c in dict.fromkeys(cases)])
    if "parity_case" in metafunc.fixturenames:
        metafunc.parametrize("parity_case", parity_cases(config))
    if "fault_rung" in metafunc.fixturenames:
        metafunc.parametrize("fault_rung", LADDER, ids=[parity.rung(*r) for r in LADDER])


@dataclasses.dataclass(frozen=True)
class ParityCase:
    model: str
    backend: str
    device: str
    precision: str
    batch: int | None  # None: one dynamic-batch model
    quantization: str = "ptq"

    @property
    def id(self) -> str:
        rung = parity.rung(self.precision, self.quantization)
        return f"{self.model}-{self.backend}-{self.device}-{rung}-b{self.batch or 'dyn'}"

    @property
    def config(self) -> BackendConfig:
        return BackendConfig(self.device, self.precision, self.batch, quantization=self.quantization)


def parity_cases(config: pytest.Config) -> list[ParameterSet]:
    """The node's cases (marked edge): its one model on --device at batch 1, every rung of the ladder. The
    matrix (marked matrix): the other suite models, AUTO/GPU/NPU, and batch 4 (plain quantization only: the
    accuracy-aware search costs a minute per model). ovtf runs FP32 on CPU only."""
    device = config.getoption("edgebench_device")
    edge_model = default_model_key(config)
    others = [] if edge_model == GIVEN else [m for m in SUITE_MODELS if m != edge_model]
    cases = []
    for backend, (precision, quantization) in itertools.product([*candidate_backends(config), "ovtf"], LADDER):
        if backend == "ovtf" and precision != "FP32":
            continue
        cases.append(
            pytest.param(
                c := ParityCase(edge_model, backend, device, precision, 1, quantization),
                id=c.id,
                marks=pytest.mark.edge,
            )
        )
        if backend == "ovtf" or quantization != "ptq":
            continue
        matrix = [ParityCase(m, backend, device, precision, 1) for m in others]
        matrix += [ParityCase(edge_model, backend, d, precision, 1) for d in MATRIX_DEVICES if d != device]
        matrix.append(ParityCase(edge_model, backend, device, precision, 4))
        cases += [
            pytest.param(c, id=c.id, marks=[pytest.mark.matrix, *known_limits(c.model, c.precision)]) for c in matrix
        ]
    return cases


def known_limits(model: str, precision: str) -> list[pytest.MarkDecorator]:
    """Cases whose healthy result is known to land outside the bounds: marked xfail with the measurement
    (reported as xfailed or xpassed, never as passed)."""
    if model == "efficientnet_v2_b0" and precision == "INT8":
        return [
            pytest.mark.xfail(
                reason="EfficientNetV2-B0 trained from scratch on 75 images does not quantize "
                "reliably: plain INT8 kept 0.745-1.0 of TF FP32's decisions over 5 "
                "trainings (input convolution in float; 0.705-1.0 without) and "
                "accuracy-aware INT8 (20 iterations) 0.85-1.0 over 6 (README)",
                strict=False,
            )
        ]
    return []
