"""Properties of the one preprocessing function shared by training and every backend."""

from __future__ import annotations

import io

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from harness import data
from harness.errors import DatasetError

pytestmark = pytest.mark.property
# Each mode with the file formats Pillow can write it in.
FORMATS = {
    "L": ["PNG", "TIFF", "JPEG"],
    "LA": ["PNG"],
    "P": ["PNG", "GIF"],
    "RGB": ["PNG", "TIFF", "JPEG", "BMP", "WEBP"],
    "RGBA": ["PNG", "TIFF", "WEBP"],
    "CMYK": ["TIFF", "JPEG"],
    "I;16": ["PNG", "TIFF"],
}


@st.composite
def images(draw):
    mode = draw(st.sampled_from(sorted(FORMATS)))
    width, height = draw(
        st.one_of(
            st.tuples(st.integers(1, 400), st.integers(1, 400)),
            st.tuples(st.integers(1500, 5000), st.integers(1, 60)),  # panoramas
            st.tuples(st.integers(1, 60), st.integers(1500, 5000)),
        )
    )
    seed = draw(st.integers(0, 2**32 - 1))
    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 4), dtype=np.uint8)
    image = Image.fromarray(pixels, "RGBA").convert("RGB" if mode in ("P", "I;16") else mode)
    if mode == "P":
        image = image.quantize(16)
    if mode == "I;16":
        image = Image.fromarray(pixels[..., 0].astype(np.uint16) * 257)  # uint16 -> mode I;16
    fmt = draw(st.sampled_from(FORMATS[mode]))
    return image, fmt


@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(images())
def test_any_decodable_image_becomes_a_224_rgb_float_tensor_in_unit_range(tmp_path, drawn):
    image, fmt = drawn
    path = tmp_path / f"x.{fmt.lower()}"
    image.save(path, fmt)
    tensor = data.load_image(path)
    assert tensor.shape == (data.IMAGE_SIZE, data.IMAGE_SIZE, 3) and tensor.dtype == np.float32
    assert tensor.min() >= 0.0 and tensor.max() <= 1.0
    assert np.array_equal(tensor, data.load_image(path))  # deterministic


@given(st.integers(0, 2**32 - 1))
def test_already_224_rgb_input_is_only_scaled(seed):
    pixels = np.random.default_rng(seed).integers(0, 256, size=(224, 224, 3), dtype=np.uint8)
    tensor = data.to_tensor(Image.fromarray(pixels, "RGB"))
    np.testing.assert_array_equal(tensor, pixels.astype(np.float32) / 255.0)


@given(st.integers(1, 700), st.integers(1, 700), st.integers(0, 2**32 - 1))
def test_resize_is_the_one_jumpstart_training_uses(height, width, seed):
    """No train/serve skew: the numpy resize equals tf.image.resize (bilinear), which the JumpStart TF IC
    training script applies, within float32 rounding."""
    import tensorflow as tf

    pixels = np.random.default_rng(seed).integers(0, 256, size=(height, width, 3), dtype=np.uint8)
    ours = data.resize_bilinear(pixels.astype(np.float32), data.IMAGE_SIZE, data.IMAGE_SIZE)
    theirs = tf.image.resize(pixels, (data.IMAGE_SIZE, data.IMAGE_SIZE), method="bilinear").numpy()
    np.testing.assert_allclose(ours, theirs, atol=1e-3)


def test_training_and_serving_tensors_are_identical(tmp_path):
    """The trainer reads its channel with the same function the backends are fed by."""
    from harness.training import train

    root = data.generate_weather_dataset(tmp_path / "ds", data.GeneratorConfig(images_per_class=2))
    paths = [image.path for image in data.load_dataset(root).images]
    assert train.load_batch is data.load_batch
    np.testing.assert_array_equal(data.load_batch(paths), np.stack([data.load_image(p) for p in paths]))


def test_alpha_is_composited_on_the_documented_background(tmp_path):
    Image.new("RGBA", (10, 10), (255, 0, 0, 0)).save(tmp_path / "clear.png")
    Image.new("RGBA", (10, 10), (255, 0, 0, 128)).save(tmp_path / "half.png")
    background = np.array(data.ALPHA_BACKGROUND, np.float32) / 255.0
    np.testing.assert_allclose(data.load_image(tmp_path / "clear.png")[5, 5], background)
    half = background * (127 / 255) + np.array([1.0, 0.0, 0.0]) * (128 / 255)
    np.testing.assert_allclose(data.load_image(tmp_path / "half.png")[5, 5], half, atol=1 / 255)


def test_exif_orientation_is_honoured(tmp_path):
    image = Image.new("RGB", (40, 20), (0, 0, 0))
    image.paste((255, 255, 255), (0, 0, 20, 20))  # left half white
    exif = Image.Exif()
    exif[0x0112] = 6  # rotate 90° clockwise on display
    image.save(tmp_path / "rotated.jpg", exif=exif, quality=100)
    decoded = data.decode_image(tmp_path / "rotated.jpg")
    assert decoded.size == (20, 40)
    assert np.asarray(decoded)[2, 10].mean() > 200 and np.asarray(decoded)[-3, 10].mean() < 50


@given(st.binary(max_size=256))
@settings(suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_garbage_bytes_raise_the_projects_error_with_the_file_name(tmp_path, payload):
    path = tmp_path / "garbage.png"
    path.write_bytes(payload)
    with pytest.raises(DatasetError, match=r"garbage\.png"):
        data.load_image(path)


def test_decompression_bomb_is_refused_without_decoding(tmp_path):
    buffer = io.BytesIO()
    Image.new("1", (20000, 20000)).save(buffer, "PNG")  # 400 Mpx, a few KB on disk
    (tmp_path / "bomb.png").write_bytes(buffer.getvalue())
    with pytest.raises(DatasetError, match=r"bomb\.png.*pixel"):
        data.load_image(tmp_path / "bomb.png")
