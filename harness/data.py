"""Datasets laid out as ``{root}/{class}/{images}``: validation, the held-out split, the embedded procedural
weather dataset, and the one preprocessing function that training and every backend share."""

from __future__ import annotations

import json
import logging
import os
import shutil
import tempfile
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from harness import weather
from harness.errors import DatasetError
from harness.fileio import staged_dir, stale_staging
from harness.numeric import FloatArray, IntArray

log = logging.getLogger(__name__)


IMAGE_SIZE = 224
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".webp", ".tif", ".tiff"})
WEATHER_CLASSES = ("cloudy", "foggy", "rainy", "snowy", "sunny")
# Transparent pixels are composited on white (a photo's usual paper/background), not dropped.
ALPHA_BACKGROUND = (255, 255, 255)
# Refuse images bigger than this many pixels (decompression bombs) instead of warning.
MAX_PIXELS = 64 * 1024 * 1024
MAX_GENERATED_PER_CLASS = 10_000  # 50,000 generated images take hours on 2 cores; a typo must not start that


@dataclass(frozen=True)
class LabeledImage:
    path: Path
    label: str


@dataclass(frozen=True)
class Dataset:
    """A validated dataset: class names sorted alphabetically, as JumpStart assigns output indices."""

    root: Path
    classes: tuple[str, ...]
    images: tuple[LabeledImage, ...]

    def count(self, label: str) -> int:
        return sum(1 for image in self.images if image.label == label)

    def summary(self) -> dict[str, Any]:
        return {
            "root": str(self.root),
            "classes": list(self.classes),
            "images_per_class": {c: self.count(c) for c in self.classes},
        }


@dataclass(frozen=True)
class Split:
    """The training channel (class folders) and the held-out test images, as directories on disk."""

    training_dir: Path
    test_dir: Path
    train: tuple[LabeledImage, ...]
    test: tuple[LabeledImage, ...]


@dataclass(frozen=True)
class GeneratorConfig:
    images_per_class: int = field(default=50, metadata={"help": "generated images per class"})
    seed: int = field(default=0, metadata={"help": "seed for the generated dataset and the split"})
    min_side: int = 120
    max_side: int = 360
    classes: tuple[str, ...] = field(default=WEATHER_CLASSES)

    def __post_init__(self) -> None:
        if self.seed < 0:
            raise DatasetError(f"seed={self.seed}: must be an integer >= 0")
        if not 2 <= self.images_per_class <= MAX_GENERATED_PER_CLASS:
            raise DatasetError(
                f"images_per_class={self.images_per_class}: generate 2 to {MAX_GENERATED_PER_CLASS:,} "
                "per class (one is held out for testing); for more, pass your own --dataset"
            )
        if not 16 <= self.min_side <= self.max_side:
            raise DatasetError(f"image sides {self.min_side}..{self.max_side}: need 16 <= min_side <= max_side")
        unknown = sorted(set(self.classes) - set(WEATHER_CLASSES))
        if unknown or len(self.classes) < 2:
            raise DatasetError(f"generated classes {list(self.classes)}: choose at least 2 of {list(WEATHER_CLASSES)}")


# --------------------------------------------------------------------------------------------------
# Preprocessing: decode, honour EXIF orientation, composite alpha, RGB, bilinear resize, scale to [0, 1].


def decode_image(path: Path) -> Image.Image:
    """Open an image file as RGB, or raise DatasetError naming the file."""
    try:
        with Image.open(path) as opened:
            if opened.width * opened.height > MAX_PIXELS:  # checked before decoding a single pixel
                raise DatasetError(
                    f"{path}: {opened.width}x{opened.height} pixels is over the "
                    f"{MAX_PIXELS}-pixel limit; downscale the image"
                )
            opened.load()
            image = ImageOps.exif_transpose(opened)
    except DatasetError:
        raise
    except (OSError, UnidentifiedImageError, ValueError, SyntaxError, Image.DecompressionBombError) as exc:
        raise DatasetError(f"{path}: not a readable image ({exc}); replace or remove the file") from None
    return _to_rgb(image)


def _to_rgb(image: Image.Image) -> Image.Image:
    if image.mode == "RGB":
        return image
    if image.mode in ("I;16", "I;16B", "I;16L", "I"):
        # 16/32-bit greyscale: rescale to 8 bits instead of letting PIL clip at 255.
        array = np.asarray(image, dtype=np.float64)
        top = 65535.0 if image.mode.startswith("I;16") else max(float(array.max()), 1.0)
        image = Image.fromarray(np.clip(array / top * 255.0, 0, 255).astype(np.uint8), mode="L")
    if image.mode == "P":
        image = image.convert("RGBA")
    if image.mode in ("RGBA", "LA", "PA"):
        rgba = image.convert("RGBA")
        background = Image.new("RGB", rgba.size, ALPHA_BACKGROUND)
        background.paste(rgba, mask=rgba.getchannel("A"))
        return background
    return image.convert("RGB")


def to_tensor(image: Image.Image, size: int = IMAGE_SIZE) -> FloatArray:
    """RGB image -> float32 (size, size, 3) in [0, 1]: bilinear resize exactly as the JumpStart training script
    does it (``tf.image.resize``, half-pixel centres, no antialiasing), then scaled. PIL's own bilinear
    filter antialiases when shrinking, which would put a train/serve skew between a model trained by a real
    JumpStart job and this edge preprocessing; a property test holds this function to ``tf.image.resize``."""
    pixels = np.asarray(image, dtype=np.float32)
    if pixels.shape[:2] != (size, size):
        pixels = resize_bilinear(pixels, size, size)
    return pixels / np.float32(255.0)


def resize_bilinear(pixels: FloatArray, height: int, width: int) -> FloatArray:
    """(H, W, C) float32 -> (height, width, C), ``tf.image.resize(method="bilinear", antialias=False)``."""
    rows, row_weights = _sample_positions(pixels.shape[0], height)
    cols, col_weights = _sample_positions(pixels.shape[1], width)
    top, bottom = pixels[rows[0]], pixels[rows[1]]
    vertical = top + (bottom - top) * row_weights[:, None, None]
    left, right = vertical[:, cols[0]], vertical[:, cols[1]]
    resized: FloatArray = (left + (right - left) * col_weights[None, :, None]).astype(np.float32)
    return resized


def _sample_positions(size_in: int, size_out: int) -> tuple[tuple[IntArray, IntArray], FloatArray]:
    """Half-pixel-centre source coordinates: (lower index, upper index) and the weight of the upper one."""
    centres = (np.arange(size_out, dtype=np.float32) + 0.5) * np.float32(size_in / size_out) - 0.5
    centres = np.clip(centres, 0, size_in - 1)
    lower = np.floor(centres).astype(np.int64)
    upper = np.minimum(lower + 1, size_in - 1)
    return (lower, upper), (centres - lower).astype(np.float32)


def load_image(path: Path, size: int = IMAGE_SIZE) -> FloatArray:
    return to_tensor(decode_image(path), size)


def load_batch(paths: list[Path] | tuple[Path, ...], size: int = IMAGE_SIZE) -> FloatArray:
    """Stack preprocessed images into an (N, size, size, 3) float32 batch."""
    if not paths:
        return np.zeros((0, size, size, 3), dtype=np.float32)
    return np.stack([load_image(p, size) for p in paths])


# --------------------------------------------------------------------------------------------------
# Layout validation and the held-out split.


def load_dataset(root: Path, check_images: bool = True) -> Dataset:
    """Read and validate a ``{root}/{class}/{images}`` dataset; raise DatasetError naming what is wrong."""
    root = Path(root)
    if not root.is_dir():
        raise DatasetError(f"dataset {root}: not a directory; pass a folder laid out as {{root}}/{{class}}/{{images}}")
    stray = sorted(p.name for p in root.iterdir() if p.is_file() and not p.name.startswith("."))
    if stray:
        raise DatasetError(
            f"dataset {root}: file {stray[0]!r} at the top level; images belong in {{root}}/{{class}}/ folders"
        )
    class_dirs = sorted((p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")), key=lambda p: p.name)
    if len(class_dirs) < 2:
        raise DatasetError(
            f"dataset {root}: found {len(class_dirs)} class folder(s); need at least 2 ({{root}}/{{class}}/{{images}})"
        )
    images: list[LabeledImage] = []
    for class_dir in class_dirs:
        images.extend(_class_images(class_dir, check_images))
    return Dataset(root=root, classes=tuple(d.name for d in class_dirs), images=tuple(images))


def _class_images(class_dir: Path, check_images: bool) -> list[LabeledImage]:
    entries = sorted(p for p in class_dir.iterdir() if not p.name.startswith("."))
    for entry in entries:
        if entry.is_dir():
            raise DatasetError(f"{entry}: nested folder in class {class_dir.name!r}; a class folder holds images only")
        if not entry.is_file():  # a pipe would block the decoder forever; a device or dangling link is no image
            raise DatasetError(
                f"{entry}: not a regular file (a pipe, device or broken link); a class folder holds image files only"
            )
        if entry.suffix.lower() not in IMAGE_SUFFIXES:
            raise DatasetError(
                f"{entry}: not an image file (expected one of "
                f"{', '.join(sorted(IMAGE_SUFFIXES))}); remove it from the dataset"
            )
    if not entries:
        raise DatasetError(f"{class_dir}: class {class_dir.name!r} has no images; add images or remove the folder")
    if check_images:
        for entry in entries:
            decode_image(entry)
    return [LabeledImage(entry, class_dir.name) for entry in entries]


def split_holdout(dataset: Dataset, out_dir: Path, per_class: int = 1, seed: int = 0) -> Split:
    """Hold out ``per_class`` images of each class into ``out_dir/test`` and lay the rest out as the
    JumpStart ``training`` channel in ``out_dir/training`` (hard links where possible; the source
    dataset is never modified)."""
    if per_class < 1:
        raise DatasetError(f"holdout per class = {per_class}: must be at least 1")
    rng = np.random.default_rng(seed)
    train: list[LabeledImage] = []
    test: list[LabeledImage] = []
    for label in dataset.classes:
        members = [image for image in dataset.images if image.label == label]
        if len(members) <= per_class:
            raise DatasetError(
                f"class {label!r} in {dataset.root} has {len(members)} image(s); need more "
                f"than the {per_class} held out for testing"
            )
        held = {int(index) for index in rng.choice(len(members), size=per_class, replace=False)}
        for index, image in enumerate(members):
            (test if index in held else train).append(image)
    training_dir, test_dir = out_dir / "training", out_dir / "test"
    return Split(training_dir, test_dir, _materialize(train, training_dir), _materialize(test, test_dir))


def spread_over_classes(
    images: tuple[LabeledImage, ...] | list[LabeledImage], limit: int, seed: int = 0
) -> tuple[LabeledImage, ...]:
    """At most ``limit`` of ``images``, the classes taking turns (each class's images in an order shuffled by
    ``seed``): a capped subset that covers every class as evenly as the images allow, e.g. INT8 calibration
    images from a training split."""
    if limit < 1:
        raise DatasetError(f"subset of {limit} images: must be at least 1")
    rng = np.random.default_rng(seed)
    queues = [[image for image in images if image.label == label] for label in sorted({i.label for i in images})]
    queues = [[queue[i] for i in rng.permutation(len(queue))] for queue in queues]
    turns = (
        queue[depth] for depth in range(max(map(len, queues), default=0)) for queue in queues if depth < len(queue)
    )
    return tuple(image for image, _ in zip(turns, range(limit), strict=False))  # the first `limit` turns


def _materialize(images: list[LabeledImage], dest_root: Path) -> tuple[LabeledImage, ...]:
    if dest_root.exists():
        shutil.rmtree(dest_root)
    placed = []
    for image in images:
        dest = dest_root / image.label / image.path.name
        dest.parent.mkdir(parents=True, exist_ok=True)
        try:
            os.link(image.path, dest)
        except OSError:
            shutil.copy2(image.path, dest)
        placed.append(LabeledImage(dest, image.label))
    return tuple(placed)


# --------------------------------------------------------------------------------------------------
# The embedded default: a deterministic procedural 5-class weather-like dataset.

_MARKER = ".edgebench-dataset.json"


def generate_weather_dataset(root: Path, config: GeneratorConfig = GeneratorConfig()) -> Path:
    """Write the procedural dataset to ``root`` (reused when already generated with the same config).
    Written to a temporary sibling first and renamed, so an interrupted run leaves nothing half-made."""
    root = Path(root)
    wanted = json.dumps(asdict(config), sort_keys=True)
    marker = root / _MARKER
    if marker.is_file() and marker.read_text() == wanted:
        return root
    if root.exists() and any(root.iterdir()):
        if not marker.is_file():
            raise DatasetError(f"{root}: exists and is not an edgebench-generated dataset; choose an empty folder")
        _remove_tree(root)  # renamed aside first: a kill mid-removal never leaves a marker-less half
    for stale in stale_staging(root):  # left by a killed run (callers hold a lock)
        shutil.rmtree(stale, ignore_errors=True)
    with staged_dir(root) as staging:
        for class_index, label in enumerate(config.classes):
            (staging / label).mkdir()
            for i in range(config.images_per_class):
                rng = np.random.default_rng([config.seed, class_index, i])
                _save_generated(_draw_weather(label, rng, config), staging / label / f"{label}_{i:03d}", rng)
        (staging / _MARKER).write_text(wanted)
    return root


def _remove_tree(root: Path) -> None:
    trash = Path(tempfile.mkdtemp(prefix=f".{root.name}-", dir=root.parent))
    root.rename(trash / root.name)
    shutil.rmtree(trash)


def generated_image(label: str = "sunny", seed: int = 0, config: GeneratorConfig = GeneratorConfig()) -> Image.Image:
    """One image of the procedural set, in memory (e.g. a fixed input for latency measurements)."""
    if label not in weather.PAINTERS:
        raise DatasetError(f"generated class {label!r}: choose one of {', '.join(weather.PAINTERS)}")
    return _draw_weather(label, np.random.default_rng([seed, 0, 0]), config)


def _save_generated(image: Image.Image, stem: Path, rng: np.random.Generator) -> None:
    if rng.random() < 0.5:
        image.save(stem.with_suffix(".jpg"), quality=int(rng.integers(70, 96)))
    else:
        image.save(stem.with_suffix(".png"))


def _draw_weather(label: str, rng: np.random.Generator, config: GeneratorConfig) -> Image.Image:
    return weather.draw(label, rng, config.min_side, config.max_side)
