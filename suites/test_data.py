"""The embedded procedural dataset and the held-out split."""

from __future__ import annotations

import hashlib
from collections import Counter

import pytest
from PIL import Image

from harness import data
from harness.errors import DatasetError


def _digest(root):
    return {
        p.relative_to(root).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*"))
        if p.is_file()
    }


def test_generated_dataset_is_deterministic_by_seed(tmp_path):
    config = data.GeneratorConfig(images_per_class=4, seed=11)
    first = _digest(data.generate_weather_dataset(tmp_path / "a", config))
    second = _digest(data.generate_weather_dataset(tmp_path / "b", config))
    other = _digest(data.generate_weather_dataset(tmp_path / "c", data.GeneratorConfig(images_per_class=4, seed=12)))
    assert first == second
    assert first != other


def test_default_dataset_has_the_layout_and_variety_the_workflow_needs(tmp_path):
    root = data.generate_weather_dataset(tmp_path / "weather")
    dataset = data.load_dataset(root)
    assert dataset.classes == data.WEATHER_CLASSES
    assert all(dataset.count(c) >= 50 for c in dataset.classes)
    formats = Counter(image.path.suffix for image in dataset.images)
    assert set(formats) == {".jpg", ".png"}
    sizes = {Image.open(image.path).size for image in dataset.images}
    assert len(sizes) > 100  # varied sizes, not one canvas


def test_generation_is_reused_and_refuses_foreign_folders(tmp_path):
    config = data.GeneratorConfig(images_per_class=2)
    root = data.generate_weather_dataset(tmp_path / "w", config)
    stamp = (
        (root / "sunny" / "sunny_000.png").stat().st_mtime_ns
        if (root / "sunny" / "sunny_000.png").exists()
        else (root / "sunny" / "sunny_000.jpg").stat().st_mtime_ns
    )
    data.generate_weather_dataset(root, config)
    assert stamp in {p.stat().st_mtime_ns for p in (root / "sunny").iterdir()}
    (tmp_path / "mine").mkdir()
    (tmp_path / "mine" / "precious.txt").write_text("keep me")
    with pytest.raises(DatasetError, match="not an edgebench-generated dataset"):
        data.generate_weather_dataset(tmp_path / "mine", config)
    assert (tmp_path / "mine" / "precious.txt").read_text() == "keep me"


def test_holdout_takes_n_per_class_and_leaves_the_source_alone(tmp_path):
    root = data.generate_weather_dataset(tmp_path / "w", data.GeneratorConfig(images_per_class=5))
    before = _digest(root)
    split = data.split_holdout(data.load_dataset(root), tmp_path / "split", per_class=2, seed=1)
    assert Counter(i.label for i in split.test) == dict.fromkeys(data.WEATHER_CLASSES, 2)
    assert Counter(i.label for i in split.train) == dict.fromkeys(data.WEATHER_CLASSES, 3)
    assert not {i.path.name for i in split.test} & {i.path.name for i in split.train}
    assert data.load_dataset(split.training_dir).classes == data.WEATHER_CLASSES  # a valid training channel
    assert _digest(root) == before


@pytest.mark.parametrize(
    "kwargs", [{"images_per_class": 1}, {"min_side": 8}, {"classes": ("sunny",)}, {"classes": ("sunny", "stormy")}]
)
def test_bad_generator_config(kwargs):
    with pytest.raises(DatasetError):
        data.GeneratorConfig(**kwargs)
