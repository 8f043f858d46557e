"""The JumpStart TF image-classification hyperparameters: names, defaults and ranges as JumpStart's model spec
has them, parsed from the strings SageMaker passes and written back the same way. The local trainer
(:mod:`harness.training.train`) and the SageMaker job both take a :class:`Hyperparameters`."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from harness.errors import ConfigError

OPTIMIZERS = ("adam", "sgd", "nesterov", "rmsprop", "adagrad", "adadelta")
FLIP_MODES = ("horizontal_and_vertical", "horizontal", "vertical", "None")
EVAL_METRICS = ("accuracy", "precision", "recall", "auc", "prc")


@dataclass(frozen=True)
class Hyperparameters:
    """JumpStart TF image-classification hyperparameters, under JumpStart's names and defaults (the same set
    as the model spec in harness/training/jumpstart_metadata; a test holds the two together). ``reinitialize_top_layer``
    and ``eval_metric`` are accepted and recorded; trained from scratch, the head is always new and the
    reported metric is accuracy."""

    epochs: int = 5
    batch_size: int = 32
    optimizer: str = "adam"
    learning_rate: float = 0.001
    beta_1: float = 0.9
    beta_2: float = 0.999
    epsilon: float = 1e-7
    momentum: float = 0.9
    rho: float = 0.95
    initial_accumulator_value: float = 0.1
    train_only_top_layer: bool = True
    reinitialize_top_layer: str = "Auto"
    dropout_rate: float = 0.2
    regularizers_l2: float = 1e-4
    label_smoothing: float = 0.1
    image_resize_interpolation: str = "bilinear"
    augmentation: bool = False
    augmentation_random_flip: str = "horizontal_and_vertical"
    augmentation_random_rotation: float = 0.2
    augmentation_random_zoom: float = 0.1
    binary_mode: bool = False
    eval_metric: str = "accuracy"
    early_stopping: bool = False
    early_stopping_patience: int = 5
    early_stopping_min_delta: float = 0.0
    validation_split_ratio: float = 0.2
    random_seed: int = 123

    def __post_init__(self) -> None:
        # Ranges: JumpStart's spec for the model (harness/training/jumpstart_metadata), narrowed where a bound value
        # cannot train (a learning rate of 0, a dropout of 1); NaN fails every comparison, so it is refused.
        checks = [
            (1 <= self.epochs <= 1000, "epochs", "an integer in [1, 1000]"),
            (1 <= self.batch_size <= 1024, "batch_size", "an integer in [1, 1024]"),
            (self.optimizer in OPTIMIZERS, "optimizer", f"one of {', '.join(OPTIMIZERS)}"),
            (0 < self.learning_rate <= 1, "learning_rate", "a number in (0, 1]"),
            (0 <= self.beta_1 < 1 and 0 <= self.beta_2 < 1, "beta_1/beta_2", "numbers in [0, 1)"),
            (0 < self.epsilon <= 1, "epsilon", "a number in (0, 1]"),
            (0 <= self.momentum < 1, "momentum", "a number in [0, 1)"),
            (0 <= self.rho < 1, "rho", "a number in [0, 1)"),
            (0 <= self.initial_accumulator_value <= 1, "initial_accumulator_value", "a number in [0, 1]"),
            (self.reinitialize_top_layer in ("Auto", "True", "False"), "reinitialize_top_layer", "Auto, True or False"),
            (0 <= self.dropout_rate < 1, "dropout_rate", "a number in [0, 1)"),
            (0 <= self.regularizers_l2 <= 1, "regularizers_l2", "a number in [0, 1]"),
            (0 <= self.label_smoothing < 1, "label_smoothing", "a number in [0, 1)"),
            (
                self.image_resize_interpolation == "bilinear",
                "image_resize_interpolation",
                "bilinear (the only interpolation the shared preprocessing implements)",
            ),
            (
                self.augmentation_random_flip in FLIP_MODES,
                "augmentation_random_flip",
                f"one of {', '.join(FLIP_MODES)}",
            ),
            (-1 <= self.augmentation_random_rotation <= 1, "augmentation_random_rotation", "a number in [-1, 1]"),
            (-1 <= self.augmentation_random_zoom <= 1, "augmentation_random_zoom", "a number in [-1, 1]"),
            (
                not self.binary_mode,
                "binary_mode",
                "False: the local trainer writes a softmax classifier (binary_mode=True is JumpStart's sigmoid head)",
            ),
            (self.eval_metric in EVAL_METRICS, "eval_metric", f"one of {', '.join(EVAL_METRICS)}"),
            (1 <= self.early_stopping_patience <= 1000, "early_stopping_patience", "an integer in [1, 1000]"),
            (0 <= self.early_stopping_min_delta <= 1, "early_stopping_min_delta", "a number in [0, 1]"),
            (0 <= self.validation_split_ratio < 1, "validation_split_ratio", "a number in [0, 1)"),
            (0 <= self.random_seed < 2**32, "random_seed", "an integer in [0, 2**32) (NumPy's seed range)"),
        ]
        for ok, name, expected in checks:
            if not ok:
                raise ConfigError(f"hyperparameter {name}: must be {expected}")

    @classmethod
    def from_mapping(cls, values: Mapping[str, Any]) -> Hyperparameters:
        """Build from JumpStart-style values (strings as SageMaker passes them, or typed values).
        Legacy hyphenated names (``batch-size``, ``adam-learning-rate``) are accepted."""
        fields = {f.name: f for f in dataclasses.fields(cls)}
        parsed: dict[str, Any] = {}
        for raw_name, raw_value in values.items():
            name = LEGACY_NAMES.get(raw_name, raw_name)
            if name not in fields:
                raise ConfigError(f"hyperparameter {raw_name!r}: unknown; known names are {', '.join(sorted(fields))}")
            parsed[name] = _parse_value(raw_name, raw_value, str(fields[name].type))  # postponed: a string already
        return cls(**parsed)

    def to_jumpstart(self) -> dict[str, str]:
        """As SageMaker passes hyperparameters to a training container: every value a string."""
        return {
            k: (str(v) if not isinstance(v, bool) else ("True" if v else "False"))
            for k, v in dataclasses.asdict(self).items()
        }


LEGACY_NAMES = {
    "batch-size": "batch_size",
    "adam-learning-rate": "learning_rate",
    "learning-rate": "learning_rate",
    "train-only-top-layer": "train_only_top_layer",
    "reinitialize-top-layer": "reinitialize_top_layer",
    "dropout-rate": "dropout_rate",
    "label-smoothing": "label_smoothing",
    "validation-split-ratio": "validation_split_ratio",
    "random-seed": "random_seed",
}


def _parse_value(name: str, value: Any, type_name: str) -> Any:
    try:
        if type_name == "bool":
            if isinstance(value, bool):
                return value
            text = str(value).strip().lower()
            if text not in ("true", "false"):
                raise ValueError(value)
            return text == "true"
        if type_name == "int":
            number = float(value)
            if not number.is_integer():
                raise ValueError(value)
            return int(number)
        if type_name == "float":
            return float(value)
        return str(value)
    except (TypeError, ValueError):
        raise ConfigError(f"hyperparameter {name}={value!r}: not a valid {type_name}") from None
