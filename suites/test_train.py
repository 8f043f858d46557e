"""The local trainer: BatchNorm re-estimation and inference-mode accuracy on images it never saw."""

from __future__ import annotations

import numpy as np

from harness import data, parity
from harness.backends import BackendConfig, create_backend
from harness.training import train


def test_recalibrated_batchnorm_holds_the_average_of_batch_statistics():
    import keras

    inputs = keras.Input((4,))
    model = keras.Model(inputs, keras.layers.BatchNormalization(momentum=0.99)(inputs))
    rng = np.random.default_rng(0)
    images = rng.normal(5.0, 2.0, size=(96, 4)).astype("float32")
    train.recalibrate_batchnorm(model, (images[i : i + 32] for i in range(0, 96, 32)))
    norm = model.layers[-1]
    batch_means = images.reshape(3, 32, 4).mean(axis=1).mean(axis=0)
    np.testing.assert_allclose(np.asarray(norm.moving_mean), batch_means, rtol=1e-5)
    assert norm.momentum == 0.99  # restored


def test_suite_model_beats_chance_in_inference_mode_on_unseen_images(edge_model, tmp_path):
    """Inference-mode accuracy on a freshly generated set (another seed), through the TF serving signature."""
    fresh = data.load_dataset(
        data.generate_weather_dataset(tmp_path / "fresh", data.GeneratorConfig(images_per_class=8, seed=999))
    )
    backend = create_backend("tf")
    backend.load(edge_model, BackendConfig())
    logits = backend.infer(data.load_batch([image.path for image in fresh.images]))
    truth = np.array([edge_model.classes.index(image.label) for image in fresh.images])
    accuracy = float(np.mean(np.argmax(logits, axis=1) == truth))
    chance = 1.0 / len(edge_model.classes)
    assert accuracy >= 2.5 * chance, f"accuracy {accuracy:.2f} vs chance {chance:.2f}"
    assert parity.softmax(logits).max(axis=1).mean() > 1.5 * chance


def test_image_files_stream_the_same_pixels_in_the_same_shuffled_order_as_in_memory(tmp_path):
    """The streamed training channel decodes batch by batch with data.load_batch; the seeded shuffle of
    indices visits every image once per pass, in a reproducible order."""
    dataset = data.load_dataset(
        data.generate_weather_dataset(tmp_path / "d", data.GeneratorConfig(images_per_class=3, seed=5))
    )
    files = train.ImageFiles(tuple(image.path for image in dataset.images))
    indices = np.arange(len(files.paths))
    onehot = np.eye(len(indices), dtype="float32")  # one class per image: the target names the image
    epochs = [
        [(np.asarray(x), np.asarray(y)) for x, y in files.dataset(indices, onehot, 4, shuffle_seed=1)] for _ in range(2)
    ]
    in_memory = data.load_batch(files.paths)
    orders = []
    for epoch in epochs:
        order = np.concatenate([y.argmax(axis=1) for _, y in epoch])
        np.testing.assert_array_equal(np.concatenate([x for x, _ in epoch]), in_memory[order])
        assert sorted(order) == list(indices) and [len(x) for x, _ in epoch] == [4, 4, 4, 3]
        orders.append(list(order))
    assert orders[0] == orders[1] != sorted(orders[0])
