"""Training under the SageMaker JumpStart TensorFlow image-classification contract.

Contract (what a JumpStart TF IC fine-tuning job does, and what the local trainer reproduces):
- input: a ``training`` channel of class folders; class indices are the sorted folder names;
- pixels scaled to [0, 1], bilinear resize to the model's square input, RGB;
- network: base -> global average pool -> dropout -> dense logits with L2, categorical cross-entropy
  from logits with label smoothing;
- output: ``model.tar.gz`` holding a TF SavedModel under ``1/`` and ``class_label_to_prediction_index.json``.

No pretrained weights can be downloaded here, so the local trainer starts from random weights.
"""

from __future__ import annotations

import json
import logging
import tempfile
import time
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from harness.contract import BASE_MODEL_FILE, SAVED_MODEL_DIR, tar_model_dir, write_label_map
from harness.data import IMAGE_SIZE, load_batch, load_dataset
from harness.errors import ConfigError, TrainingError
from harness.fileio import read_json
from harness.numeric import FloatArray, IntArray

# The hyperparameter contract has its own module; re-exported, as train.Hyperparameters is the name in use.
from harness.training.hyperparameters import Hyperparameters as Hyperparameters

log = logging.getLogger(__name__)

DEFAULT_MODEL_ID = "tensorflow-ic-imagenet-mobilenet-v2-100-224-classification-4"
EFFICIENTNET_MODEL_ID = "tensorflow-ic-imagenet-efficientnet-v2-imagenet1k-b0-classification-2"
RESNET_MODEL_ID = "tensorflow-ic-imagenet-resnet-v2-50-classification-4"


def _keras_base(application: str, **options: Any) -> Callable[[], Any]:
    """A Keras application without its top and without weights (none can be downloaded), pooled features out."""

    def build() -> Any:
        import keras

        return getattr(keras.applications, application)(
            input_shape=(IMAGE_SIZE, IMAGE_SIZE, 3), include_top=False, weights=None, pooling="avg", **options
        )

    return build


# JumpStart TF IC model id -> the base network the local trainer builds for it.
ARCHITECTURES: dict[str, Callable[[], Any]] = {
    DEFAULT_MODEL_ID: _keras_base("MobileNetV2", alpha=1.0),
    # Inputs are already scaled to [0, 1] by the shared preprocessing: no rescaling layer inside the model.
    EFFICIENTNET_MODEL_ID: _keras_base("EfficientNetV2B0", include_preprocessing=False),
    RESNET_MODEL_ID: _keras_base("ResNet50V2"),
}


@dataclass(frozen=True)
class LocalArtifact:
    """What the local trainer leaves on this machine: ``model.tar.gz`` and how it was trained."""

    artifact: Path
    classes: tuple[str, ...]
    model_id: str
    hyperparameters: Hyperparameters
    metrics: dict[str, float]
    seconds: float


EpochCallback = Callable[[int, int, dict[str, float]], None]


def train_local(
    training_dir: Path,
    output_dir: Path,
    hyperparameters: Hyperparameters,
    model_id: str = DEFAULT_MODEL_ID,
    on_epoch: EpochCallback | None = None,
) -> LocalArtifact:
    """Train from scratch on a ``training`` channel of class folders and write ``output_dir/model.tar.gz``."""
    started = time.perf_counter()
    output_dir = Path(output_dir)
    output_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(dir=output_dir, prefix=".model-") as model_dir:
        classes, metrics = train_into_model_dir(training_dir, Path(model_dir), hyperparameters, model_id, on_epoch)
        artifact = tar_model_dir(Path(model_dir), output_dir / "model.tar.gz")
    return LocalArtifact(artifact, classes, model_id, hyperparameters, metrics, time.perf_counter() - started)


def train_into_model_dir(
    training_dir: Path,
    model_dir: Path,
    hyperparameters: Hyperparameters,
    model_id: str = DEFAULT_MODEL_ID,
    on_epoch: EpochCallback | None = None,
) -> tuple[tuple[str, ...], dict[str, float]]:
    """What the JumpStart training script does inside its container: fit on the ``training`` channel and
    write the SavedModel (``1/``) and label map into the model dir (SageMaker then tars that dir)."""
    if model_id not in ARCHITECTURES:
        raise ConfigError(f"model id {model_id!r}: the local trainer knows {', '.join(sorted(ARCHITECTURES))}")
    started = time.perf_counter()
    dataset = load_dataset(training_dir)
    classes = dataset.classes
    labels = np.array([classes.index(image.label) for image in dataset.images])
    # Images are decoded batch by batch as the model asks for them (about 0.6 MB each once preprocessed): a
    # 5,000-image channel never sits in memory at once.
    images = ImageFiles(tuple(image.path for image in dataset.images))
    train_idx, val_idx = _stratified_split(labels, hyperparameters.validation_split_ratio, hyperparameters.random_seed)

    import keras

    keras.utils.set_random_seed(hyperparameters.random_seed)
    model = _build_model(model_id, len(classes), hyperparameters)
    model.compile(
        optimizer=_optimizer(hyperparameters),
        loss=keras.losses.CategoricalCrossentropy(from_logits=True, label_smoothing=hyperparameters.label_smoothing),
        metrics=["accuracy"],
    )
    onehot = keras.utils.to_categorical(labels, len(classes))
    validation = images.dataset(val_idx, onehot, hyperparameters.batch_size) if len(val_idx) else None
    model.fit(
        _training_data(images, train_idx, onehot, hyperparameters),
        validation_data=validation,
        epochs=hyperparameters.epochs,
        verbose=0,
        shuffle=False,
        callbacks=_callbacks(hyperparameters, validation is not None, on_epoch),
    )
    recalibrate_batchnorm(model, images.batches(train_idx, hyperparameters.batch_size))

    metrics = {"train_accuracy": _accuracy(model, images, train_idx, labels, onehot)}
    if len(val_idx):
        metrics["validation_accuracy"] = _accuracy(model, images, val_idx, labels, onehot)
    export_model_dir(model, classes, model_dir)
    log.info("trained %s on %d images in %.1f s: %s", model_id, len(labels), time.perf_counter() - started, metrics)
    return classes, metrics


# The SageMaker training-toolkit environment a JumpStart container sees (all under /opt/ml on AWS).
CONTAINER_ENV = ("SM_CHANNEL_TRAINING", "SM_MODEL_DIR", "SM_INPUT_CONFIG_DIR")


def run_training_container(env: Mapping[str, str], on_epoch: EpochCallback | None = None) -> dict[str, float]:
    """Play the JumpStart TF IC training container: read the channels, hyperparameters.json and the base
    model from the SageMaker environment, train, and leave the model in ``SM_MODEL_DIR``."""
    missing = [name for name in CONTAINER_ENV if not env.get(name)]
    if missing:
        raise TrainingError(
            f"training container environment lacks {', '.join(missing)}; run it as a SageMaker "
            "training job (or through `edgebench train --trainer sagemaker`)"
        )
    hyperparameters_file = Path(env["SM_INPUT_CONFIG_DIR"]) / "hyperparameters.json"
    raw = read_json(hyperparameters_file, TrainingError, "unreadable", hint="")
    # SageMaker adds its own sagemaker_* entries (program, submit directory, region); the script ignores them.
    values = {k: v for k, v in raw.items() if not k.startswith("sagemaker_")}
    model_id = _base_model_id(Path(env["SM_CHANNEL_MODEL"])) if env.get("SM_CHANNEL_MODEL") else DEFAULT_MODEL_ID
    _, metrics = train_into_model_dir(
        Path(env["SM_CHANNEL_TRAINING"]),
        Path(env["SM_MODEL_DIR"]),
        Hyperparameters.from_mapping(values),
        model_id,
        on_epoch,
    )
    return metrics


def _base_model_id(channel: Path) -> str:
    marker = next(iter(channel.rglob(BASE_MODEL_FILE)), None)
    if marker is None:
        raise TrainingError(
            f"{channel}: the `model` channel has no {BASE_MODEL_FILE}; offline, the base model "
            "is an architecture description (no pretrained weights can be downloaded)"
        )
    return str(json.loads(marker.read_text())["model_id"])


def _stratified_split(labels: IntArray, ratio: float, seed: int) -> tuple[IntArray, IntArray]:
    """Per-class validation split; every class keeps at least one training image."""
    rng = np.random.default_rng(seed)
    train: list[np.intp] = []
    val: list[np.intp] = []
    for cls in np.unique(labels):
        members = rng.permutation(np.flatnonzero(labels == cls))
        n_val = min(round(len(members) * ratio), len(members) - 1)
        val.extend(members[:n_val])
        train.extend(members[n_val:])
    return np.sort(np.array(train, dtype=np.intp)), np.sort(np.array(val, dtype=np.intp))  # intp: what dtype=int is


def _build_model(model_id: str, num_classes: int, hp: Hyperparameters) -> Any:
    import keras

    base = ARCHITECTURES[model_id]()
    if hp.train_only_top_layer:
        # JumpStart freezes a pretrained base. Offline there is none: the frozen base is random, so only the
        # head learns (a linear probe on random features). Pass train_only_top_layer=False to train it all.
        log.warning(
            "train_only_top_layer=True with a randomly initialised base (no pretrained weights "
            "offline): only the dense head is trained"
        )
        base.trainable = False
    inputs = keras.Input((IMAGE_SIZE, IMAGE_SIZE, 3), name="inputs")
    features = base(inputs, training=False if hp.train_only_top_layer else None)
    features = keras.layers.Dropout(hp.dropout_rate, seed=hp.random_seed)(features)
    logits = keras.layers.Dense(
        num_classes, name="logits", kernel_regularizer=keras.regularizers.L2(hp.regularizers_l2)
    )(features)
    return keras.Model(inputs, logits, name=model_id)


def _optimizer(hp: Hyperparameters) -> Any:
    import keras

    o = keras.optimizers
    match hp.optimizer:
        case "adam":
            return o.Adam(hp.learning_rate, beta_1=hp.beta_1, beta_2=hp.beta_2, epsilon=hp.epsilon)
        case "sgd":
            return o.SGD(hp.learning_rate, momentum=hp.momentum)
        case "nesterov":
            return o.SGD(hp.learning_rate, momentum=hp.momentum, nesterov=True)
        case "rmsprop":
            return o.RMSprop(hp.learning_rate, rho=hp.rho, momentum=hp.momentum, epsilon=hp.epsilon)
        case "adagrad":
            return o.Adagrad(
                hp.learning_rate, initial_accumulator_value=hp.initial_accumulator_value, epsilon=hp.epsilon
            )
        case _:
            return o.Adadelta(hp.learning_rate, rho=hp.rho, epsilon=hp.epsilon)


@dataclass(frozen=True)
class ImageFiles:
    """A training channel's images, read from their files a batch at a time (the same preprocessing as every
    other step: ``data.load_batch``)."""

    paths: tuple[Path, ...]

    def load(self, indices: IntArray) -> FloatArray:
        return load_batch([self.paths[i] for i in indices])

    def batches(self, indices: IntArray, batch_size: int) -> Iterator[FloatArray]:
        for start in range(0, len(indices), batch_size):
            yield self.load(indices[start : start + batch_size])

    def dataset(self, indices: IntArray, onehot: FloatArray, batch_size: int, shuffle_seed: int | None = None) -> Any:
        """(images, one-hot) batches as a ``tf.data`` pipeline: indices are shuffled and batched, and each batch
        is decoded when the model asks for it (two batches ahead)."""
        import tensorflow as tf

        data = tf.data.Dataset.from_tensor_slices(np.asarray(indices, dtype=np.int64))
        if shuffle_seed is not None:
            data = data.shuffle(len(indices), seed=shuffle_seed, reshuffle_each_iteration=True)
        targets = tf.constant(onehot, dtype=tf.float32)

        def decode(batch_indices: Any) -> tuple[Any, Any]:
            pixels = tf.numpy_function(self.load, [batch_indices], tf.float32, stateful=False)
            pixels.set_shape([None, IMAGE_SIZE, IMAGE_SIZE, 3])
            return pixels, tf.gather(targets, batch_indices)

        return data.batch(batch_size).map(decode).prefetch(2)


def _training_data(images: ImageFiles, indices: IntArray, onehot: FloatArray, hp: Hyperparameters) -> Any:
    import keras

    data = images.dataset(indices, onehot, hp.batch_size, shuffle_seed=hp.random_seed)
    if hp.augmentation:
        layers = [
            keras.layers.RandomRotation(hp.augmentation_random_rotation, seed=hp.random_seed),
            keras.layers.RandomZoom(hp.augmentation_random_zoom, seed=hp.random_seed),
        ]
        if hp.augmentation_random_flip != "None":
            layers.insert(0, keras.layers.RandomFlip(hp.augmentation_random_flip, seed=hp.random_seed))
        augment = keras.Sequential(layers)
        data = data.map(lambda x, y: (augment(x, training=True), y))
    return data


def _callbacks(hp: Hyperparameters, has_validation: bool, on_epoch: EpochCallback | None) -> list[Any]:
    import keras

    callbacks: list[Any] = []
    if hp.early_stopping and has_validation:
        callbacks.append(
            keras.callbacks.EarlyStopping(
                monitor="val_loss",
                patience=hp.early_stopping_patience,
                min_delta=hp.early_stopping_min_delta,
                restore_best_weights=True,
            )
        )
    if on_epoch is not None:
        callbacks.append(
            keras.callbacks.LambdaCallback(
                on_epoch_end=lambda epoch, logs: on_epoch(epoch + 1, hp.epochs, dict(logs or {}))
            )
        )
    return callbacks


def recalibrate_batchnorm(model: Any, batches: Iterable[FloatArray]) -> None:
    """Re-estimate BatchNorm moving statistics as a cumulative average over the training data.

    Trained from scratch for a few epochs, the exponential moving averages lag a network that changes
    fast, and inference-mode accuracy stays at chance while batch-statistics accuracy is high. Forward
    passes in training mode with momentum k/(k+1) at step k give the plain average; weights are untouched.
    """
    import keras

    layers = _walk_layers(model)
    norms = [layer for layer in layers if isinstance(layer, keras.layers.BatchNormalization) and layer.trainable]
    if not norms:
        return
    # Dropout off while measuring: EfficientNet's stochastic depth is Dropout on whole residual branches, and
    # statistics gathered with random blocks missing do not match the full network that runs at inference.
    dropouts = [layer for layer in layers if isinstance(layer, keras.layers.Dropout)]
    saved = [layer.momentum for layer in norms], [layer.rate for layer in dropouts]
    try:
        for layer in dropouts:
            layer.rate = 0.0
        for step, batch in enumerate(batches):
            for layer in norms:
                layer.momentum = step / (step + 1)
            model(batch, training=True)
    finally:
        for layer, momentum in zip(norms, saved[0], strict=True):
            layer.momentum = momentum
        for layer, rate in zip(dropouts, saved[1], strict=True):
            layer.rate = rate


def _walk_layers(layer: Any) -> list[Any]:
    found = [layer]
    for child in getattr(layer, "layers", []):
        found.extend(_walk_layers(child))
    return found


def _accuracy(model: Any, images: ImageFiles, indices: IntArray, labels: IntArray, onehot: FloatArray) -> float:
    # predict() runs one compiled function over the streamed batches; calling the model eagerly batch by batch
    # held 2.4 GB more (TF's eager allocations for a MobileNetV2 at batch 32).
    logits = model.predict(images.dataset(indices, onehot, 32), verbose=0)
    return float(np.mean(np.argmax(logits, axis=1) == labels[indices]))


def export_model_dir(model: Any, classes: tuple[str, ...], model_dir: Path) -> None:
    """Write the JumpStart layout: SavedModel under ``1/`` and ``class_label_to_prediction_index.json``."""
    model_dir = Path(model_dir)
    model.export(str(model_dir / SAVED_MODEL_DIR), format="tf_saved_model", verbose=False)
    (model_dir / SAVED_MODEL_DIR / "assets").mkdir(exist_ok=True)
    write_label_map(classes, model_dir)
