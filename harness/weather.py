"""Procedural weather-like images for the embedded default dataset (:func:`harness.data.generate_weather_dataset`):
one painter per class, deterministic for a given random generator; pure (NumPy and PIL, no files)."""

from __future__ import annotations

import numpy as np
from PIL import Image, ImageDraw, ImageFilter

RGB = tuple[int, int, int]


def draw(label: str, rng: np.random.Generator, min_side: int, max_side: int) -> Image.Image:
    """One ``label`` image of random size (sides in [min_side, max_side]), horizon and sensor noise."""
    width, height = (int(v) for v in rng.integers(min_side, max_side + 1, size=2))
    horizon = int(height * rng.uniform(0.55, 0.8))
    image = PAINTERS[label](width, height, horizon, rng)
    noise = rng.normal(0.0, rng.uniform(2.0, 8.0), size=(height, width, 3))
    return Image.fromarray(np.clip(np.asarray(image, dtype=np.float64) + noise, 0, 255).astype(np.uint8))


def _jitter(rng: np.random.Generator, rgb: RGB, amount: int = 18) -> RGB:
    red, green, blue = (int(np.clip(c + rng.integers(-amount, amount + 1), 0, 255)) for c in rgb)
    return red, green, blue


def _sky_and_ground(width: int, height: int, horizon: int, top: RGB, bottom: RGB, ground: RGB) -> Image.Image:
    t = np.linspace(0.0, 1.0, horizon)[:, None, None]
    sky = (1 - t) * np.array(top) + t * np.array(bottom)
    rows = np.concatenate([sky, np.broadcast_to(np.array(ground, dtype=float), (height - horizon, 1, 3))])
    return Image.fromarray(np.broadcast_to(rows, (height, width, 3)).astype(np.uint8))


def _paint_sunny(width: int, height: int, horizon: int, rng: np.random.Generator) -> Image.Image:
    image = _sky_and_ground(
        width, height, horizon, _jitter(rng, (40, 110, 220)), _jitter(rng, (140, 195, 245)), _jitter(rng, (70, 150, 60))
    )
    draw = ImageDraw.Draw(image)
    radius = int(min(width, height) * rng.uniform(0.08, 0.16))
    cx, cy = int(rng.uniform(radius, width - radius)), int(rng.uniform(radius, max(radius + 1, horizon - radius)))
    draw.ellipse(
        (cx - 2 * radius, cy - 2 * radius, cx + 2 * radius, cy + 2 * radius), fill=_jitter(rng, (250, 230, 150))
    )
    draw.ellipse((cx - radius, cy - radius, cx + radius, cy + radius), fill=_jitter(rng, (255, 240, 60), 10))
    return image.filter(ImageFilter.GaussianBlur(1.5))


def _paint_cloudy(width: int, height: int, horizon: int, rng: np.random.Generator) -> Image.Image:
    image = _sky_and_ground(
        width,
        height,
        horizon,
        _jitter(rng, (120, 140, 170)),
        _jitter(rng, (175, 185, 200)),
        _jitter(rng, (80, 110, 70)),
    )
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(4, 10))):
        w, h = width * rng.uniform(0.2, 0.5), horizon * rng.uniform(0.12, 0.3)
        x, y = rng.uniform(-w / 2, width), rng.uniform(-h / 2, horizon - h / 2)
        shade = int(rng.integers(200, 250))
        draw.ellipse((x, y, x + w, y + h), fill=(shade, shade, min(255, shade + 8)))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(3.0, 6.0)))


def _paint_foggy(width: int, height: int, horizon: int, rng: np.random.Generator) -> Image.Image:
    grey = int(rng.integers(175, 215))
    image = _sky_and_ground(
        width,
        height,
        horizon,
        (grey, grey, grey + 5),
        (grey - 10, grey - 8, grey - 5),
        _jitter(rng, (grey - 40, grey - 30, grey - 40), 10),
    )
    draw = ImageDraw.Draw(image)
    for _ in range(int(rng.integers(2, 6))):  # faint silhouettes (trees, posts) behind the fog
        x = rng.uniform(0, width)
        w, h = width * rng.uniform(0.02, 0.08), height * rng.uniform(0.2, 0.5)
        draw.rectangle((x, horizon - h, x + w, horizon), fill=(grey - 35, grey - 32, grey - 30))
    return image.filter(ImageFilter.GaussianBlur(rng.uniform(6.0, 10.0)))


def _paint_rainy(width: int, height: int, horizon: int, rng: np.random.Generator) -> Image.Image:
    image = _sky_and_ground(
        width, height, horizon, _jitter(rng, (60, 65, 80)), _jitter(rng, (100, 105, 115)), _jitter(rng, (45, 60, 50))
    )
    draw = ImageDraw.Draw(image)
    slant, length = rng.uniform(-0.4, 0.4), height * rng.uniform(0.04, 0.1)
    for _ in range(int(width * height / rng.uniform(90, 160))):
        x, y = rng.uniform(0, width), rng.uniform(0, height)
        draw.line((x, y, x + slant * length, y + length), fill=_jitter(rng, (170, 180, 200), 20), width=1)
    return image.filter(ImageFilter.GaussianBlur(0.6))


def _paint_snowy(width: int, height: int, horizon: int, rng: np.random.Generator) -> Image.Image:
    image = _sky_and_ground(
        width,
        height,
        horizon,
        _jitter(rng, (150, 155, 165)),
        _jitter(rng, (200, 205, 210)),
        _jitter(rng, (240, 242, 248), 8),
    )
    draw = ImageDraw.Draw(image)
    for _ in range(int(width * height / rng.uniform(120, 250))):
        x, y, r = rng.uniform(0, width), rng.uniform(0, height), rng.uniform(0.8, 2.6)
        draw.ellipse((x - r, y - r, x + r, y + r), fill=(255, 255, 255))
    return image.filter(ImageFilter.GaussianBlur(0.5))


PAINTERS = {
    "sunny": _paint_sunny,
    "cloudy": _paint_cloudy,
    "foggy": _paint_foggy,
    "rainy": _paint_rainy,
    "snowy": _paint_snowy,
}
