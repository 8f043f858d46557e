"""Shared by the robustness suites (test_robustness_*.py): small images and tarballs written as bad input. Not
a test module: pytest puts suites/ on sys.path, so the suites import it by name."""

from __future__ import annotations

import io
import tarfile
from pathlib import Path

from PIL import Image


def write_image(path: Path, size=(32, 24), fmt="PNG") -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new("RGB", size, (10, 120, 200)).save(path, fmt)
    return path


def write_tarball(path: Path, members: dict[str, bytes], links: dict[str, str] | None = None) -> Path:
    with tarfile.open(path, "w:gz") as tar:
        for name, payload in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(payload)
            tar.addfile(info, io.BytesIO(payload))
        for name, target in (links or {}).items():
            info = tarfile.TarInfo(name)
            info.type, info.linkname = tarfile.SYMTYPE, target
            tar.addfile(info)
    return path
