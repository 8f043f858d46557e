"""Hostile inputs, family 2: image bytes (truncations, bit flips, lying headers, wrong magic) through
``data.load_image`` and the test-image import of ``edge.import_local``. Seeded: every run sees the same cases."""

from __future__ import annotations

import random
import struct
import zlib
from pathlib import Path

import numpy as np
from PIL import Image

from harness import data, edge
from hostile_sweep import Case, artifact_members, good_dataset, image_bytes, tar_bytes, write_input


def _seed_images() -> dict[str, tuple[str, bytes]]:
    exif = Image.Exif()
    exif[0x0112] = 6
    return {
        "png-rgb": (".png", image_bytes("PNG")),
        "png-rgba": (".png", image_bytes("PNG", mode="RGBA")),
        "png-p": (".png", image_bytes("PNG", mode="P")),
        "png-l": (".png", image_bytes("PNG", mode="L")),
        "png-16": (".png", image_bytes("PNG", mode="I;16")),
        "jpeg": (".jpg", image_bytes("JPEG")),
        "jpeg-exif": (".jpg", image_bytes("JPEG", exif=exif)),
        "gif": (".gif", image_bytes("GIF", mode="P")),
        "bmp": (".bmp", image_bytes("BMP")),
        "tiff": (".tif", image_bytes("TIFF")),
        "webp": (".webp", image_bytes("WEBP")),
        "png-1x1": (".png", image_bytes("PNG", size=(1, 1))),
    }


def _png_chunk(kind: bytes, body: bytes) -> bytes:
    return struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))


def _side(rng: random.Random) -> int:
    """A width or height to lie with: none, one, a format's limits, or anything up to 40000."""
    return rng.choice([0, 1, 3, 65535, 1 << 15, (1 << 31) - 1, rng.randint(2, 40000)])


def _png_lie(payload: bytes, rng: random.Random) -> bytes:
    width, height, depth, color = (
        _side(rng),
        _side(rng),
        rng.choice([1, 2, 4, 8, 16, 3, 0, 255]),
        rng.choice([0, 2, 3, 4, 6, 1, 5, 7, 255]),
    )
    if rng.random() < 0.5:
        depth, color = payload[24], payload[25]
    ihdr = struct.pack(">IIBBBBB", width, height, depth, color, 0, 0, 0)
    return payload[:8] + _png_chunk(b"IHDR", ihdr) + payload[33:]


def _jpeg_lie(payload: bytes, rng: random.Random) -> bytes:
    b = bytearray(payload)
    sof = payload.find(b"\xff\xc0")
    if sof > 0:
        struct.pack_into(">HH", b, sof + 5, _side(rng) & 0xFFFF, _side(rng) & 0xFFFF)
        if rng.random() < 0.3:
            b[sof + 9] = rng.choice([0, 2, 5, 255])  # number of components
    return bytes(b)


def _gif_lie(payload: bytes, rng: random.Random) -> bytes:
    b = bytearray(payload)
    struct.pack_into("<HH", b, 6, _side(rng) & 0xFFFF, _side(rng) & 0xFFFF)
    return bytes(b)


def _bmp_lie(payload: bytes, rng: random.Random) -> bytes:
    b = bytearray(payload)
    struct.pack_into(
        "<ii", b, 18, rng.choice([0, 1, -5, 1 << 20, (1 << 31) - 1]), rng.choice([0, 1, -16, -(1 << 31), 1 << 20])
    )
    if rng.random() < 0.4:
        struct.pack_into("<H", b, 28, rng.choice([0, 1, 7, 64, 0xFFFF]))  # bits per pixel
    return bytes(b)


def _tiff_lie(payload: bytes, rng: random.Random) -> bytes:
    """Little-endian IFD: overwrite width, height, bits per sample, samples per pixel."""
    b = bytearray(payload)
    lies = {256: _side(rng), 257: _side(rng), 258: rng.choice([1, 3, 8, 16, 64]), 277: rng.choice([0, 1, 3, 5])}
    ifd = struct.unpack_from("<I", b, 4)[0]
    for entry in range(struct.unpack_from("<H", b, ifd)[0]):
        tag, kind = struct.unpack_from("<HH", b, ifd + 2 + 12 * entry)
        if tag in lies and rng.random() < 0.7:
            struct.pack_into(
                "<H" if kind == 3 else "<I",
                b,
                ifd + 10 + 12 * entry,
                lies[tag] & (0xFFFF if kind == 3 else 0xFFFFFFFF),
            )
    return bytes(b)


_LIES = {"png": _png_lie, "jpeg": _jpeg_lie, "gif": _gif_lie, "bmp": _bmp_lie, "tiff": _tiff_lie}  # by seed name


def _lie(name: str, payload: bytes, rng: random.Random) -> bytes:
    """Header fields that lie about dimensions or modes, with checksums made right so the lie is believed."""
    lie = _LIES.get(name.split("-")[0])
    return lie(payload, rng) if lie else payload  # webp: no lie told


def _exif_jpeg(rng: random.Random) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = rng.choice([0, 9, 255, 65535, 3, 8])
    raw = bytearray(image_bytes("JPEG", exif=exif))
    if rng.random() < 0.5:  # scramble the EXIF block's bytes after its header
        start = raw.find(b"Exif\0\0") + 6
        for _ in range(rng.randint(1, 8)):
            raw[start + rng.randrange(40)] = rng.randrange(256)
    return bytes(raw)


def _check_pixels(pixels: np.ndarray) -> str:
    assert pixels.shape == (data.IMAGE_SIZE, data.IMAGE_SIZE, 3) and pixels.dtype == np.float32, pixels.shape
    assert np.isfinite(pixels).all() and pixels.min() >= 0.0 and pixels.max() <= 1.0
    return "decoded"


def _load_image(path: Path, run_dir: Path) -> str:
    return _check_pixels(data.load_image(path))


def _import_test_images(prepared: tuple[Path, Path], run_dir: Path) -> str:
    """The held-out test images path of an import: a bad image is an ArtifactError naming the user's file."""
    artifact, test_dir = prepared
    model = edge.import_local(artifact, run_dir / "edge", test_dir)
    _check_pixels(data.load_batch([image.path for image in model.test_images])[0])
    return f"imported with {len(model.test_images)} test images"


def _mutated_image(kind: str, name: str, suffix: str, payload: bytes, rng: random.Random) -> tuple[str, bytes]:
    """A seed image's (suffix, bytes) damaged one way: ``kind`` of image_cases."""
    match kind:
        case "truncate":
            payload = payload[: rng.randint(0, len(payload) - 1)]
        case "bitflip":
            flipped = bytearray(payload)
            for _ in range(rng.choice([1, 2, 8, 64])):
                flipped[rng.randrange(len(flipped))] ^= 1 << rng.randrange(8)
            payload = bytes(flipped)
        case "lie":
            payload = _lie(name, payload, rng)
        case "magic":
            head = rng.choice(
                [
                    b"\x89PNG\r\n\x1a\n",
                    b"\xff\xd8\xff\xe0",
                    b"GIF89a",
                    b"BM",
                    b"II*\0",
                    b"RIFF",
                    rng.randbytes(8),
                    b"%PDF-1.4",
                    b"\0\0\0\0",
                ]
            )
            payload = head + payload[len(head) :] if rng.random() < 0.5 else head + rng.randbytes(rng.randint(0, 200))
        case "wrong-suffix":
            suffix = rng.choice([".png", ".jpg", ".gif", ".bmp", ".tiff", ".webp", ".JPEG"])
        case "exif":
            suffix, payload = ".jpg", _exif_jpeg(rng)
        case "tiny":
            payload = payload[: rng.choice([0, 1, 2, 8])]
    return suffix, payload


def image_cases(count: int, seed: int = 41) -> list[Case]:
    seeds = _seed_images()
    names = sorted(seeds)
    cases = []
    for i in range(count):
        rng = random.Random(seed * 1000 + i)
        name = rng.choice(names)
        suffix, payload = seeds[name]
        kind = rng.choice(["truncate", "bitflip", "lie", "lie", "magic", "wrong-suffix", "exif", "tiny"])
        suffix, payload = _mutated_image(kind, name, suffix, payload, rng)
        file_name = f"img{suffix}"
        via_import = i % 5 == 4

        def prepare(inputs: Path, payload=payload, file_name=file_name, via_import=via_import):
            if not via_import:
                return write_input(inputs, file_name, payload)
            test_dir = good_dataset(inputs / "test", per_class=1)
            (test_dir / "sunny" / file_name).write_bytes(payload)
            return write_input(inputs, "model.tar.gz", tar_bytes(artifact_members())), test_dir

        cases.append(
            Case(
                f"{name}-{kind}-{i}" + ("-import" if via_import else ""),
                prepare,
                _import_test_images if via_import else _load_image,
            )
        )
    return cases
