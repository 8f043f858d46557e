"""The local trainer: BatchNorm re-estimation and inference-mode accuracy on images it never saw."""

from __future__ import annotations

import numpy as np

from harness import data, parity, train
from harness.backends import BackendConfig, create_backend


def test_recalibrated_batchnorm_holds_the_average_of_batch_statistics():
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.99)(inputs))
    rng = np.random.default_rng(0)
    images = rng.normal(5.0, 2.0, size=(96, 4)).astype("float32")
    train.recalibrate_batchnorm(model, images, batch_size=32)
    norm = model.layers[-1]
    batch_means = images.reshape(3, 32, 4).mean(axis=1).mean(axis=0)
    np.testing.assert_allclose(np.asarray(norm.moving_mean), batch_means, rtol=1e-5)
    assert norm.momentum == 0.99  # restored


def test_suite_model_beats_chance_in_inference_mode_on_unseen_images(edge_model, tmp_path):
    """Inference-mode accuracy on a freshly generated set (another seed), through the TF serving signature."""
    fresh = data.load_dataset(data.generate_weather_dataset(
        tmp_path / "fresh", data.GeneratorConfig(images_per_class=8, seed=999)))
    backend = create_backend("tf")
    backend.load(edge_model, BackendConfig())
    logits = backend.infer(data.load_batch([image.path for image in fresh.images]))
    truth = np.array([edge_model.classes.index(image.label) for image in fresh.images])
    accuracy = float(np.mean(np.argmax(logits, axis=1) == truth))
    chance = 1.0 / len(edge_model.classes)
    assert accuracy >= 2.5 * chance, f"accuracy {accuracy:.2f} vs chance {chance:.2f}"
    assert parity.softmax(logits).max(axis=1).mean() > 1.5 * chance
