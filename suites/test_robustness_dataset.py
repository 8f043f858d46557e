"""Bad datasets get one clear line naming the thing and what to do: layouts, images, held-out counts."""

from __future__ import annotations

import io
from pathlib import Path

import pytest
from PIL import Image

from harness import data
from harness.errors import DatasetError
from robustness_helpers import write_image


@pytest.fixture
def good_dataset(tmp_path) -> Path:
    root = tmp_path / "ds"
    for label in ("cloudy", "sunny"):
        for i in range(3):
            write_image(root / label / f"{label}_{i}.png")
    return root


def test_good_dataset_loads_with_sorted_classes(good_dataset):
    dataset = data.load_dataset(good_dataset)
    assert dataset.classes == ("cloudy", "sunny") and len(dataset.images) == 6


def _break_empty_class(root: Path) -> str:
    (root / "foggy").mkdir()
    return r"foggy.*has no images"


def _break_non_image(root: Path) -> str:
    (root / "sunny" / "notes.txt").write_text("not an image")
    return r"notes\.txt: not an image file"


def _break_corrupt_image(root: Path) -> str:
    (root / "sunny" / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 definitely not a jpeg")
    return r"broken\.jpg: not a readable image"


def _break_truncated_image(root: Path) -> str:
    buffer = io.BytesIO()
    Image.new("RGB", (64, 64), (1, 2, 3)).save(buffer, "JPEG")
    (root / "sunny" / "cut.jpg").write_bytes(buffer.getvalue()[:200])
    return r"cut\.jpg: not a readable image"


def _break_zero_bytes(root: Path) -> str:
    (root / "cloudy" / "empty.png").write_bytes(b"")
    return r"empty\.png: not a readable image"


def _break_stray_file(root: Path) -> str:
    write_image(root / "loose.png")
    return r"'loose\.png' at the top level"


def _break_nested_folder(root: Path) -> str:
    write_image(root / "sunny" / "extra" / "x.png")
    return r"extra: nested folder"


def _break_single_class(root: Path) -> str:
    for path in (root / "cloudy").iterdir():
        path.unlink()
    (root / "cloudy").rmdir()
    return r"found 1 class folder"


@pytest.mark.parametrize(
    "breakage",
    [
        _break_empty_class,
        _break_non_image,
        _break_corrupt_image,
        _break_truncated_image,
        _break_zero_bytes,
        _break_stray_file,
        _break_nested_folder,
        _break_single_class,
    ],
    ids=lambda f: f.__name__.removeprefix("_break_"),
)
def test_bad_layout_is_a_one_line_error_naming_the_problem(good_dataset, breakage):
    pattern = breakage(good_dataset)
    with pytest.raises(DatasetError, match=pattern) as info:
        data.load_dataset(good_dataset)
    assert "\n" not in str(info.value)


def test_missing_dataset_dir(tmp_path):
    with pytest.raises(DatasetError, match="not a directory"):
        data.load_dataset(tmp_path / "nowhere")


def test_too_few_images_to_hold_out(good_dataset, tmp_path):
    with pytest.raises(DatasetError, match="need more than the 3 held out"):
        data.split_holdout(data.load_dataset(good_dataset), tmp_path / "split", per_class=3)


def test_dotfiles_are_ignored(good_dataset):
    (good_dataset / "sunny" / ".DS_Store").write_bytes(b"\0\0")
    (good_dataset / ".hidden").mkdir()
    assert len(data.load_dataset(good_dataset).images) == 6
