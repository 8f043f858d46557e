"""Hostile inputs, family 1: tar archives (member names, types, sizes, counts; gzip/tar framing) through
``edge.import_local`` and ``edgebench predict``. Seeded: every run sees the same cases."""

from __future__ import annotations

import bz2
import gzip
import io
import json
import lzma
import os
import random
import struct
import tarfile
import zlib
from pathlib import Path

from harness import contract, edge
from harness.errors import EdgebenchError
from hostile_sweep import (
    LABELS,
    Case,
    CliRefused,
    Member,
    artifact_members,
    image_bytes,
    model_tarball,
    run_cli,
    tar_bytes,
    write_input,
)


def _import_tar(tarball: Path, run_dir: Path) -> str:
    """``edge.import_local``; when it refuses, ``edgebench predict`` on the same file must refuse in one line
    too (it imports before it loads a model)."""
    try:
        model = edge.import_local(tarball, run_dir / "edge")
    except EdgebenchError as refused_import:
        image = run_dir / "in.png"
        image.write_bytes(image_bytes())
        try:
            run_cli(["predict", str(image), "--model", str(tarball)])
        except CliRefused as refused:
            assert str(tarball) in str(refused), f"the error does not name the user's file: {refused}"
            raise
        raise AssertionError("edgebench predict accepted a tarball import_local refused") from refused_import
    assert model.classes == tuple(sorted(LABELS, key=LABELS.get)) or model.classes
    return f"imported {len(model.classes)} classes"


# ------------------------------------------------------------------------------------------------
# Members: what _mutate_members adds to (or takes from) a good artifact, one kind at a time

_ASSETS = f"{contract.SAVED_MODEL_DIR}/assets/"  # where most hostile members sit in the archive


def _outside_target(rng: random.Random) -> str:
    return "../" * rng.randint(1, 8) + "outside/" + rng.choice(["keep.txt", "pwned.txt", "new/dir/x"])


def _aim_outside(kind: str, members: list[Member], rng: random.Random, sentinel: Path) -> None:
    """Members whose path or link leads out of the extraction folder (to the sentinel)."""
    base = _ASSETS
    match kind:
        case "traversal":
            members.append(Member(rng.choice(["", base, "./"]) + _outside_target(rng), b"pwned"))
        case "absolute":
            members.append(Member(str(sentinel / "pwned.txt"), b"pwned"))
        case "symlink-out":
            members.append(Member(base + "link", type=tarfile.SYMTYPE, linkname=_outside_target(rng)))
        case "symlink-abs":
            members.append(Member(base + "link", type=tarfile.SYMTYPE, linkname=str(sentinel / "keep.txt")))
        case "hardlink-out":
            members.append(
                Member(
                    base + "hard",
                    type=tarfile.LNKTYPE,
                    linkname=rng.choice([str(sentinel / "keep.txt"), _outside_target(rng)]),
                )
            )
        case "pax-path":
            members.append(Member(base + "innocent", b"x", pax={"path": _outside_target(rng)}))
        case "write-through-link":
            members += [
                Member(base + "out", type=tarfile.SYMTYPE, linkname=str(sentinel)),
                Member(base + "out/pwned.txt", b"pwned"),
            ]


def _odd_type(kind: str, members: list[Member], rng: random.Random, sentinel: Path) -> None:
    """Members of a type, mode or time no model file has."""
    base = _ASSETS
    match kind:
        case "device":
            members.append(Member(base + "dev", type=rng.choice([tarfile.CHRTYPE, tarfile.BLKTYPE])))
        case "fifo":
            members.append(Member(base + "fifo", type=tarfile.FIFOTYPE))
        case "setuid":
            members.append(Member(base + "suid", b"#!/bin/sh\n", mode=rng.choice([0o4755, 0o2755, 0o1777, 0o7777])))
        case "mode-zero":
            members.append(Member(base + "locked", b"x", mode=0))
            members.insert(0, Member(base.rstrip("/"), type=tarfile.DIRTYPE, mode=0))
        case "mtime":
            members.append(Member(base + "when", b"x", mtime=rng.choice([-1, 2**33, 2**62, 1e300])))
        case "contiguous":
            members.append(Member(base + "cont", b"x", type=tarfile.CONTTYPE))


def _odd_name(kind: str, members: list[Member], rng: random.Random, sentinel: Path) -> None:
    """Member names that are odd, too long, too deep, empty or clash with another member."""
    base = _ASSETS
    match kind:
        case "unicode":
            name = "".join(rng.choice('ünï©ødé☀️🌧️日本\u200b\u202e\u0301 \t\\:*?"<>|') for _ in range(rng.randint(1, 40)))
            members.append(Member(base + name, b"x"))
        case "long-name":
            members.append(Member(base + "n" * rng.choice([255, 256, 1000, 5000]), b"x"))
        case "deep":
            members.append(Member(base + "d/" * rng.choice([50, 500, 3000]) + "f", b"x"))
        case "duplicate":
            members.append(Member(contract.LABEL_MAP_FILE, json.dumps({"a": 0, "b": 1, "c": 2}).encode()))
        case "file-then-dir":
            members += [Member(base + "x", b"file"), Member(base + "x/y", b"under a file")]
        case "dir-then-file":
            members += [Member(base + "x", type=tarfile.DIRTYPE, mode=0o755), Member(base + "x", b"over a dir")]
        case "empty-name":
            members.append(Member(rng.choice(["", ".", "./", "/", "//"]), b"x"))


def _odd_size(kind: str, members: list[Member], rng: random.Random, sentinel: Path) -> None:
    """Declared sizes that lie, and member counts in the thousands."""
    base = _ASSETS
    match kind:
        case "huge-size":
            members.append(Member(base + "bomb", b"x", size=rng.choice([5 << 30, 1 << 40, 8**11 - 1])))
        case "short-size":
            members.append(Member(base + "short", b"x" * 600, size=rng.choice([2048, 1 << 20])))
        case "many":
            members += [Member(base + f"f{i}", b"") for i in range(rng.choice([1000, 4000]))]


def _odd_contents(kind: str, members: list[Member], rng: random.Random, sentinel: Path) -> None:
    """An artifact without its SavedModel or label map, or with a label map that is a link."""
    match kind:
        case "no-saved-model":
            members[:] = [m for m in members if not m.name.endswith("saved_model.pb")]
        case "no-labels":
            members[:] = [m for m in members if m.name != contract.LABEL_MAP_FILE]
        case "label-symlink":
            members[:] = [m for m in members if m.name != contract.LABEL_MAP_FILE]
            members.append(
                Member(
                    contract.LABEL_MAP_FILE,
                    type=tarfile.SYMTYPE,
                    linkname=rng.choice(["/etc/passwd", _outside_target(rng), "1/saved_model.pb"]),
                )
            )
        case "label-hardlink":
            members[:] = [m for m in members if m.name != contract.LABEL_MAP_FILE]
            members.append(Member(contract.LABEL_MAP_FILE, type=tarfile.LNKTYPE, linkname="1/saved_model.pb"))


# Each kind of member mutation and what applies it. The seeded cases pick a kind by its position here: keep the
# order (a new kind goes last) or the corpus changes.
_MEMBER_MUTATIONS = {
    "traversal": _aim_outside,
    "absolute": _aim_outside,
    "symlink-out": _aim_outside,
    "symlink-abs": _aim_outside,
    "hardlink-out": _aim_outside,
    "device": _odd_type,
    "fifo": _odd_type,
    "setuid": _odd_type,
    "mode-zero": _odd_type,
    "unicode": _odd_name,
    "long-name": _odd_name,
    "deep": _odd_name,
    "duplicate": _odd_name,
    "file-then-dir": _odd_name,
    "dir-then-file": _odd_name,
    "huge-size": _odd_size,
    "short-size": _odd_size,
    "many": _odd_size,
    "empty-name": _odd_name,
    "no-saved-model": _odd_contents,
    "no-labels": _odd_contents,
    "label-symlink": _odd_contents,
    "label-hardlink": _odd_contents,
    "pax-path": _aim_outside,
    "mtime": _odd_type,
    "contiguous": _odd_type,
    "write-through-link": _aim_outside,
}


def _mutate_members(members: list[Member], rng: random.Random, sentinel: Path) -> str:
    kind = rng.choice(list(_MEMBER_MUTATIONS))
    _MEMBER_MUTATIONS[kind](kind, members, rng, sentinel)
    return kind


# ------------------------------------------------------------------------------------------------
# Framing: a good archive's gzip damaged, swapped for another compression, or not an archive at all


def _damaged_gzip(kind: str, payload: bytes, raw: bytes, rng: random.Random) -> bytes:
    """The archive's gzip stream cut, flipped, with a wrong CRC or size, a tail, or a lying header."""
    match kind:
        case "truncate":
            return payload[: rng.randint(0, len(payload) - 1)]
        case "bitflip":
            flipped = bytearray(payload)
            for _ in range(rng.randint(1, 6)):
                position = rng.randrange(10, len(flipped) - 8)
                flipped[position] ^= 1 << rng.randrange(8)
            return bytes(flipped)
        case "crc":
            return payload[:-8] + struct.pack("<I", (zlib.crc32(raw) + 1) & 0xFFFFFFFF) + payload[-4:]
        case "isize":
            return payload[:-4] + struct.pack("<I", rng.randrange(1 << 32))
        case "garbage-tail":
            return payload + rng.randbytes(rng.randint(1, 300))
        case "concatenated":
            return payload + gzip.compress(b"\0" * 1024)
        case _:  # gzip-header-flags: FEXTRA flag with a lying length, or FNAME without its terminator
            header = bytearray(payload[:10])
            header[3] |= rng.choice([0x04, 0x08, 0x10, 0x02])
            return bytes(header) + struct.pack("<H", 0xFFFF) + payload[10:40]


def _not_the_archive(kind: str, payload: bytes, raw: bytes, rng: random.Random) -> bytes:
    """Bytes that are not a gzipped model archive: random, empty, zeros, a zip, an archive inside an archive."""
    match kind:
        case "not-gzip":
            return rng.randbytes(rng.randint(1, 5000))
        case "empty":
            return b""
        case "zeros":
            return b"\0" * rng.choice([512, 10240, 1 << 20])
        case "gzip-of-garbage":
            return gzip.compress(rng.randbytes(rng.randint(1, 5000)))
        case "zip":
            import zipfile

            buffer = io.BytesIO()
            with zipfile.ZipFile(buffer, "w") as archive:
                archive.writestr("1/saved_model.pb", b"x")
            return buffer.getvalue()
        case _:  # nested
            return gzip.compress(tar_bytes([Member("model.tar.gz", payload)], ""))


def _other_compression(kind: str, payload: bytes, raw: bytes, rng: random.Random) -> bytes:
    """The same tar under bz2, xz or no compression at all, whole or corrupted."""
    match kind:
        case "bz2":
            return bz2.compress(raw)
        case "xz":
            return lzma.compress(raw)
        case "plain-tar":
            return raw
        case "xz-corrupt":
            packed = bytearray(lzma.compress(raw))
            packed[rng.randrange(20, len(packed) - 20)] ^= 0xFF
            return bytes(packed)
        case _:  # bz2-corrupt
            packed = bytearray(bz2.compress(raw))
            packed[rng.randrange(20, len(packed) - 20)] ^= 0xFF
            return bytes(packed)


# Each kind of framing and what makes it; picked by position, like _MEMBER_MUTATIONS (keep the order).
_FRAMINGS = {
    "truncate": _damaged_gzip,
    "bitflip": _damaged_gzip,
    "crc": _damaged_gzip,
    "isize": _damaged_gzip,
    "garbage-tail": _damaged_gzip,
    "not-gzip": _not_the_archive,
    "empty": _not_the_archive,
    "zeros": _not_the_archive,
    "gzip-of-garbage": _not_the_archive,
    "concatenated": _damaged_gzip,
    "bz2": _other_compression,
    "xz": _other_compression,
    "plain-tar": _other_compression,
    "xz-corrupt": _other_compression,
    "bz2-corrupt": _other_compression,
    "zip": _not_the_archive,
    "nested": _not_the_archive,
    "gzip-header-flags": _damaged_gzip,
}


def _framing(payload: bytes, rng: random.Random) -> tuple[str, bytes]:
    kind = rng.choice(list(_FRAMINGS))
    raw = gzip.decompress(payload)
    return kind, _FRAMINGS[kind](kind, payload, raw, rng)


# ------------------------------------------------------------------------------------------------
# The cases


def tar_cases(count: int, seed: int = 14) -> list[Case]:
    cases = []
    for i in range(count):
        rng = random.Random(seed * 1000 + i)
        if i % 3 == 2:  # framing of an otherwise good archive
            kind, payload = _framing(tar_bytes(artifact_members()), rng)
            cases.append(Case(f"framing-{kind}-{i}", model_tarball(payload), _import_tar))
            continue

        def prepare(inputs: Path, case_seed: int = seed * 1000 + i) -> Path:
            rng = random.Random(case_seed)
            members = artifact_members()
            sentinel = inputs.parents[1] / "outside"
            for _ in range(rng.choice([1, 1, 2, 3])):
                _mutate_members(members, rng, sentinel)
            compression = rng.choice(["gz", "gz", "gz", "bz2", "xz", ""])
            return write_input(inputs, "model.tar.gz", tar_bytes(members, compression))

        probe = random.Random(seed * 1000 + i)
        kinds = [
            _mutate_members(artifact_members(), probe, Path("/nonexistent")) for _ in range(probe.choice([1, 1, 2, 3]))
        ]
        cases.append(Case(f"members-{'+'.join(kinds)}-{i}", prepare, _import_tar))
    return cases + _not_a_file_cases()


def _not_a_file_cases() -> list[Case]:
    """model.tar.gz that is a directory, a named pipe or a dangling link."""
    return [
        Case(
            "is-a-directory", lambda inputs: (inputs / "model.tar.gz").mkdir() or inputs / "model.tar.gz", _import_tar
        ),
        Case("is-a-fifo", lambda inputs: os.mkfifo(inputs / "model.tar.gz") or inputs / "model.tar.gz", _import_tar),
        Case(
            "dangling-symlink",
            lambda inputs: (inputs / "model.tar.gz").symlink_to(inputs / "gone") or inputs / "model.tar.gz",
            _import_tar,
        ),
    ]
