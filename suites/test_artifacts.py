"""Artifacts not made by edgebench's trainer: a hand-built JumpStart-layout model.tar.gz with another
architecture and its own class names imports and runs on TF and OpenVINO with parity."""

from __future__ import annotations

import json
import tarfile

import numpy as np
import pytest

from harness import contract, edge, parity
from harness.backends import BackendConfig, create_backend


def _foreign_model_dir(tmp_path, label_file: str):
    import keras

    keras.utils.set_random_seed(5)
    inputs = keras.Input((224, 224, 3))
    x = keras.layers.Conv2D(8, 3, strides=2, activation="relu")(inputs)
    x = keras.layers.Conv2D(16, 3, strides=2, activation="relu")(x)
    x = keras.layers.GlobalAveragePooling2D()(x)
    logits = keras.layers.Dense(3)(x)
    model_dir = tmp_path / "model"
    keras.Model(inputs, logits).export(str(model_dir / "1"), format="tf_saved_model", verbose=False)
    classes = ["zebra", "alpha", "mango"]  # deliberately not alphabetical: the label file decides the order
    content = (
        {"labels": classes}
        if label_file == contract.LABELS_INFO_FILE
        else {name: index for index, name in enumerate(classes)}
    )
    (model_dir / label_file).write_text(json.dumps(content))
    return model_dir, tuple(classes)


@pytest.mark.parametrize("label_file", [contract.LABEL_MAP_FILE, contract.LABELS_INFO_FILE])
def test_hand_built_jumpstart_artifact_imports_and_runs_with_parity(tmp_path, label_file):
    model_dir, classes = _foreign_model_dir(tmp_path, label_file)
    tarball = tmp_path / "model.tar.gz"
    with tarfile.open(tarball, "w:gz") as tar:
        for entry in model_dir.iterdir():
            tar.add(entry, arcname=entry.name)
    model = edge.import_local(tarball, tmp_path / "edge")
    assert model.classes == classes

    images = np.random.default_rng(0).random((3, 224, 224, 3), dtype=np.float32)
    outputs = {}
    for name in ("tf", "openvino"):
        backend = create_backend(name)
        backend.load(model, BackendConfig())
        outputs[name] = backend.infer(images)
    assert outputs["tf"].shape == (3, 3)
    result = parity.compare(outputs["tf"], outputs["openvino"], "FP32")
    assert result.within_tolerance, result
