"""Generic file helpers every step shares: atomic writes, staged folders, JSON reading, safe tar extraction.

Nothing here knows about models, datasets or reports: each function takes the error type or message its
caller wants, so a step's errors keep naming the user's file in that step's terms."""

from __future__ import annotations

import json
import lzma
import os
import shutil
import tarfile
import tempfile
import zlib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from harness.errors import ArtifactError, ConfigError

MAX_EXTRACTED_BYTES = 4 << 30  # a classifier's SavedModel is MBs to a few hundred MB; refuse archive bombs
MAX_MEMBER_DEPTH = 64  # a SavedModel nests a few folders deep; thousands of levels exhaust os.makedirs' recursion


@contextmanager
def temp_sibling(path: Path) -> Iterator[Path]:
    """An empty temporary file beside ``path`` (same folder, so a rename is atomic), removed when the block
    ends unless the caller renamed it into place."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".partial")
    os.close(fd)
    try:
        yield Path(name)
    finally:
        Path(name).unlink(missing_ok=True)


@contextmanager
def atomic_file(path: Path) -> Iterator[Path]:
    """A temporary file to fill; renamed onto ``path`` when the block succeeds: never a half-written file."""
    with temp_sibling(path) as partial:
        yield partial
        partial.replace(path)


def write_text(path: Path, text: str) -> Path:
    """Write to a temporary file beside ``path`` and rename it into place: never a half-written file."""
    path = Path(path)
    with atomic_file(path) as partial:
        partial.write_text(text, encoding="utf-8")
    return path


def write_json(path: Path, document: dict[str, Any]) -> Path:
    return write_text(path, json.dumps(document, indent=2) + "\n")


@contextmanager
def staged_dir(dest: Path) -> Iterator[Path]:
    """A temporary sibling of ``dest`` to fill; when the block succeeds it replaces ``dest`` with one rename,
    when it fails it is removed: ``dest`` is never half-written. The sibling is named ``.{dest.name}-XXXXXXXX``
    (``stale_staging`` finds those a killed process left)."""
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(dir=dest.parent, prefix=f".{dest.name}-"))
    try:
        yield staging
        if dest.exists():
            shutil.rmtree(dest)
        staging.rename(dest)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def stale_staging(dest: Path) -> list[Path]:
    """The staging folders of ``dest`` that a killed ``staged_dir`` left behind (call it under a lock)."""
    dest = Path(dest)
    return [path for path in dest.parent.glob(f".{dest.name}-*") if len(path.name) == len(dest.name) + 10]


def read_json(
    path: Path,
    error: Callable[[str], Exception] = ConfigError,
    problem: str = "not readable JSON",
    hint: str = "re-create or re-download it",
    object_pairs_hook: Callable[[list[tuple[str, Any]]], Any] | None = None,
) -> Any:
    """The JSON in ``path``, or one line ``{path}: {problem} ({reason}); {hint}`` raised as ``error``.
    ValueError covers bad JSON (and a hook's refusal), RecursionError arrays nested thousands deep."""
    try:
        return json.loads(Path(path).read_text(), object_pairs_hook=object_pairs_hook)
    except (OSError, UnicodeDecodeError, ValueError, RecursionError) as exc:
        raise error(f"{path}: {problem} ({exc})" + (f"; {hint}" if hint else "")) from None


def read_json_file(path: Path) -> dict[str, Any]:
    """A JSON object from a file, or a one-line ConfigError naming the file."""
    document = read_json(path)
    if not isinstance(document, dict):
        raise ConfigError(f"{path}: expected a JSON object; re-create or re-download it")
    return document


_TAR_ERRORS = (tarfile.TarError, OSError, EOFError, OverflowError, zlib.error, lzma.LZMAError)


def extract_safely(tarball: Path, dest: Path) -> None:
    """Extract a tarball from elsewhere (an artifact, a JumpStart channel) without trusting its member names."""
    try:
        with tarfile.open(tarball, "r:*") as tar:
            tar.extractall(dest, filter=_StrictDataFilter(MAX_EXTRACTED_BYTES))
    except _TAR_ERRORS as exc:
        raise _unreadable(tarball, exc) from None


def check_tarball(tarball: Path) -> None:
    """``extract_safely``'s one-line error, early, for a file that is no readable archive (reads one member)."""
    try:
        with tarfile.open(tarball, "r:*") as tar:
            tar.next()
    except _TAR_ERRORS as exc:
        raise _unreadable(tarball, exc) from None


def _unreadable(tarball: Path, exc: BaseException) -> ArtifactError:
    """One short line: tarfile's "r:*" lists every compression it tried, one per line, when none fits."""
    reason = " ".join(str(exc).split())
    if isinstance(exc, tarfile.ReadError) and reason.startswith("file could not be opened successfully"):
        empty = Path(tarball).is_file() and Path(tarball).stat().st_size == 0
        reason = "empty file" if empty else "not a tar archive, plain or gzip/bzip2/xz-compressed"
    return ArtifactError(f"{tarball}: not a safe, readable tarball ({reason}); re-download or re-export it")


class _StrictDataFilter:
    """PEP 706's ``data`` filter, plus: absolute member names are refused rather than made relative (a model
    archive never has them, so one that does has been tampered with), and the total size is capped."""

    def __init__(self, max_bytes: int) -> None:
        self.limit = self.remaining = max_bytes

    def __call__(self, member: tarfile.TarInfo, dest_path: str) -> tarfile.TarInfo | None:
        if member.name.startswith("/"):
            raise tarfile.AbsolutePathError(member)
        if member.name.count("/") >= MAX_MEMBER_DEPTH:  # deep enough to exhaust os.makedirs' recursion
            raise tarfile.FilterError(f"member {member.name[:60]!r}... nests over {MAX_MEMBER_DEPTH} folders deep")
        self.remaining -= member.size
        if self.remaining < 0:
            raise tarfile.FilterError(f"archive expands past {self.limit:,} bytes at {member.name!r}")
        return tarfile.data_filter(member, dest_path)
