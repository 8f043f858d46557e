"""The sweep behind the hostile-input suite (test_hostile_inputs.py, issue 14, item 2): run one generated case
through edgebench's real entry points and classify its end, plus the inputs every family builds on (images,
class folders, JumpStart-like tar archives).

A case ends ``valid`` (a result), ``handled`` (ONE line of edgebench's own error: ``EdgebenchError``, or from
the CLI exit 1 and one ``edgebench: error:`` line, or argparse's exit 2 with its usage line and one error line)
or ``escaped``: anything else, a hang (each case runs under a timer), a write outside its run folder (the whole
test folder, a sentinel folder the hostile members aim at and the inputs are compared before and after) or a
growth of the process's peak RSS by more than ``MEMORY_PER_CASE``. Each test records its figure (cases, valid,
handled, escaped per family) for the terminal summary; the target is 0 escaped.

Not a test module: the suites import it by name (pytest puts suites/ on sys.path), like fleet_helpers and gate_helpers.
"""

from __future__ import annotations

import bz2
import contextlib
import dataclasses
import gzip
import io
import json
import lzma
import os
import resource
import shutil
import signal
import tarfile
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from harness import cli, contract
from harness.errors import EdgebenchError

SECONDS_PER_CASE = 30.0  # a case taking longer counts as a hang (the timer interrupts it)
MEMORY_PER_CASE = 1 << 30  # growth of the process's peak RSS one case may cause
LABELS = {"cloudy": 0, "sunny": 1}


# ------------------------------------------------------------------------------------------------
# The sweep: run one case, classify its end


class _Hang(BaseException):
    """Raised by the per-case timer (a BaseException, so no `except Exception` in the code under test eats it)."""


class CliRefused(Exception):
    """The CLI exited non-zero with exactly one error line and no traceback: a handled case."""


@dataclasses.dataclass(frozen=True)
class Case:
    name: str
    prepare: Callable[[Path], Any]  # builds the hostile input under the inputs folder; returns what run takes
    run: Callable[[Any, Path], Any]  # the entry point(s) on that input, writing only into the run folder


@dataclasses.dataclass
class Outcome:
    family: str
    case: str
    verdict: str  # valid | handled | escaped
    detail: str


class Sweep:
    """Runs cases one by one under a folder: ``inputs/<case>`` (the hostile input, made before the case
    starts), ``runs/<case>`` (the only place the case may write), ``outside/`` (a sentinel the hostile members
    aim at). The process's temp dir and working directory point into the run folder while a case runs."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.outside = root / "outside"
        self.outside.mkdir(parents=True, exist_ok=True)
        (self.outside / "keep.txt").write_text("sentinel: nothing may change in this folder")
        self.outcomes: list[Outcome] = []

    def run(self, family: str, case: Case) -> Outcome:
        folder = f"{len(self.outcomes):04d}"  # case names are free text; folders are numbered
        run_dir = self.root / "runs" / folder
        inputs = self.root / "inputs" / folder
        inputs.mkdir(parents=True)
        prepared = case.prepare(inputs)
        (run_dir / "tmp").mkdir(parents=True)
        before = _listing(self.root, run_dir)
        peak_before = _peak_rss()
        started = time.monotonic()
        verdict, detail = _attempt(case, prepared, run_dir)
        seconds = time.monotonic() - started
        grown = _peak_rss() - peak_before
        overstepped = _overstepped(_diff(before, _listing(self.root, run_dir)), grown, seconds)
        if verdict != "escaped" and overstepped:
            verdict, detail = "escaped", overstepped
        outcome = Outcome(family, case.name, verdict, " ".join(detail.split())[:300])
        self.outcomes.append(outcome)
        for folder in (run_dir, inputs):  # keeps the listing small: cases stay independent and quick
            _remove(folder)
        return outcome

    def figure(self, title: str) -> str:
        families = dict.fromkeys(o.family for o in self.outcomes)
        parts = []
        for family in families:
            mine = [o for o in self.outcomes if o.family == family]
            counts = {v: sum(o.verdict == v for o in mine) for v in ("valid", "handled", "escaped")}
            parts.append(
                f"{family} {len(mine)} (valid {counts['valid']}, error {counts['handled']}, "
                f"escaped {counts['escaped']})"
            )
        escaped = sum(o.verdict == "escaped" for o in self.outcomes)
        return (
            f"{title}: {len(self.outcomes)} cases, {len(self.outcomes) - escaped} handled, {escaped} escaped "
            f"[{'; '.join(parts)}]"
        )

    def escapes(self) -> list[str]:
        return [f"{o.family}/{o.case}: {o.detail}" for o in self.outcomes if o.verdict == "escaped"]


def _attempt(case: Case, prepared: Any, run_dir: Path) -> tuple[str, str]:
    """(verdict, detail) of running the case in its run folder under the timer: valid, handled (one line of
    edgebench's own error) or escaped (several lines, a hang, any other exception)."""
    try:
        with _in_run_folder(run_dir), _time_limit(SECONDS_PER_CASE):
            result = case.run(prepared, run_dir)
        return "valid", _short(result)
    except (EdgebenchError, CliRefused) as exc:
        message = str(exc)
        if message and "\n" not in message.strip():
            return "handled", message
        return "escaped", f"{type(exc).__name__} over several lines: {message!r}"
    except _Hang:
        return "escaped", f"hang: still running after {SECONDS_PER_CASE:.0f} s"
    except BaseException as exc:  # noqa: BLE001 - anything else is what this sweep looks for
        return "escaped", f"{type(exc).__name__}: {exc}"


def _overstepped(changed: list[str], grown: int, seconds: float) -> str:
    """Why a case that ended well still escaped (the first of: wrote outside its run folder, grew the peak
    RSS too much, took too long), or "" when it kept to its limits."""
    if changed:
        return f"wrote outside its run folder: {changed[:3]}"
    if grown > MEMORY_PER_CASE:
        return f"peak RSS grew {grown >> 20} MiB"
    if seconds > SECONDS_PER_CASE:
        return f"took {seconds:.1f} s"
    return ""


def _listing(root: Path, skip: Path) -> dict[str, tuple]:
    """Every entry under ``root`` except ``skip`` (the case's run folder): kind, size, mtime."""
    found = {}
    for folder, dirs, files in os.walk(root):
        if Path(folder) == skip:
            dirs.clear()
            continue
        for name in dirs + files:
            path = Path(folder) / name
            if path == skip:
                continue
            info = path.lstat()
            found[str(path.relative_to(root))] = (
                info.st_mode,
                info.st_size if not path.is_dir() else 0,
                info.st_mtime_ns if not path.is_dir() else 0,
            )
    return found


def _diff(before: dict, after: dict) -> list[str]:
    return sorted(k for k in before.keys() | after.keys() if before.get(k) != after.get(k))


def _remove(folder: Path) -> None:
    for path in sorted(folder.rglob("*"), key=lambda p: len(p.parts), reverse=True):
        if path.is_dir() and not path.is_symlink():
            path.chmod(0o700)
    shutil.rmtree(folder)


def _peak_rss() -> int:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024


@contextlib.contextmanager
def _time_limit(seconds: float):
    def expire(signum, frame):
        raise _Hang()

    previous = signal.signal(signal.SIGALRM, expire)
    signal.setitimer(signal.ITIMER_REAL, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)
        signal.signal(signal.SIGALRM, previous)


@contextlib.contextmanager
def _in_run_folder(run_dir: Path):
    """The working directory (the CLI's default reports/ and cache folders) and the temp dir in the run folder."""
    old_cwd, old_tmp = Path.cwd(), tempfile.tempdir
    os.chdir(run_dir)
    tempfile.tempdir = str(run_dir / "tmp")
    try:
        yield
    finally:
        os.chdir(old_cwd)
        tempfile.tempdir = old_tmp


def _short(result: Any) -> str:
    return result if isinstance(result, str) else type(result).__name__


def run_cli(argv: list[str]) -> str:
    """``edgebench ARGV`` in this process: its stdout on exit 0, or CliRefused with the one error line; anything else (a
    traceback, several lines, an exception out of ``main``) escapes."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            code = cli.main(argv)
        except SystemExit as exc:  # argparse: usage line + one error line, exit 2
            code = exc.code
    lines = [line for line in err.getvalue().splitlines() if line.strip()]
    if code == 0:
        return out.getvalue() or "exit 0"
    if "Traceback" in err.getvalue():
        raise AssertionError(f"exit {code} with a traceback: {err.getvalue()[-500:]}")
    errors = [line for line in lines if line.startswith("edgebench") and ": error: " in line]
    others = [
        line for line in lines if line not in errors and not line.startswith("usage:") and not line.startswith(" ")
    ]  # argparse wraps its usage line with leading spaces
    if len(errors) != 1 or others or code not in (1, 2, 3):
        raise AssertionError(f"exit {code}, stderr {lines[:6]}")
    raise CliRefused(errors[0])


def report(sweep: Sweep, title: str, record_property) -> None:
    """The sweep's figure: recorded for the terminal summary (``edgebench_figure``) and printed; any escape fails."""
    figure = sweep.figure(title)
    record_property("edgebench_figure", figure)
    print(figure)
    assert not sweep.escapes(), "\n".join([figure, *sweep.escapes()])


# ------------------------------------------------------------------------------------------------
# Shared inputs


def image_bytes(fmt: str = "PNG", size=(24, 16), mode: str = "RGB", **options) -> bytes:
    buffer = io.BytesIO()
    gradient = np.linspace(0, 255, size[0] * size[1] * 3).reshape(size[1], size[0], 3).astype(np.uint8)
    image = Image.fromarray(gradient, "RGB")
    image = image.convert(mode) if mode != "I;16" else Image.fromarray(gradient[..., 0].astype(np.uint16) * 257)
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def good_dataset(root: Path, classes=("cloudy", "sunny"), per_class: int = 3) -> Path:
    for label in classes:
        (root / label).mkdir(parents=True, exist_ok=True)
        for i in range(per_class):
            (root / label / f"{label}_{i}.png").write_bytes(image_bytes())
    return root


@dataclasses.dataclass
class Member:
    """One tar member as a hostile archive spells it."""

    name: str
    payload: bytes = b""
    type: bytes = tarfile.REGTYPE
    linkname: str = ""
    size: int | None = None  # declared size when it lies
    mode: int = 0o644
    pax: dict[str, str] = dataclasses.field(default_factory=dict)
    mtime: float = 1_700_000_000


def artifact_members(labels: bytes | None = None, label_file: str = contract.LABEL_MAP_FILE) -> list[Member]:
    """What a JumpStart artifact holds, with a placeholder SavedModel (importing never loads it)."""
    members = [
        Member(f"{contract.SAVED_MODEL_DIR}", type=tarfile.DIRTYPE, mode=0o755),
        Member(f"{contract.SAVED_MODEL_DIR}/saved_model.pb", b"\x08\x01placeholder"),
        Member(f"{contract.SAVED_MODEL_DIR}/variables", type=tarfile.DIRTYPE, mode=0o755),
        Member(f"{contract.SAVED_MODEL_DIR}/variables/variables.index", b"\0" * 64),
    ]
    if label_file:
        members.append(Member(label_file, json.dumps(LABELS).encode() if labels is None else labels))
    return members


def tar_bytes(members: list[Member], compression: str = "gz") -> bytes:
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for m in members:
            info = tarfile.TarInfo(m.name)
            info.type, info.linkname, info.mode, info.mtime = m.type, m.linkname, m.mode, m.mtime
            info.pax_headers = dict(m.pax)
            info.size = len(m.payload) if m.type == tarfile.REGTYPE else 0
            tar.addfile(info, io.BytesIO(m.payload) if info.size else None)
            if m.size is not None:  # patch the declared size after the fact (the header lies)
                padded = -(-info.size // tarfile.BLOCKSIZE) * tarfile.BLOCKSIZE
                _lie_about_size(raw, tar.offset - padded - tarfile.BLOCKSIZE, m.size)
    body = raw.getvalue()
    return {"gz": gzip.compress, "bz2": bz2.compress, "xz": lzma.compress, "": lambda b: b}[compression](body)


def _lie_about_size(raw: io.BytesIO, offset: int, size: int) -> None:
    """Rewrite the size field (and checksum) of the header at ``offset``; a size that needs more than 11 octal
    digits is written as base-256, as GNU tar does."""
    buffer = raw.getbuffer()
    header = bytearray(buffer[offset : offset + tarfile.BLOCKSIZE])
    if size < 8**11:
        header[124:136] = b"%011o\0" % size
    else:
        header[124:136] = bytes([0x80]) + size.to_bytes(11, "big")
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    buffer[offset : offset + tarfile.BLOCKSIZE] = bytes(header)
    del buffer


def write_input(inputs: Path, name: str, payload: bytes) -> Path:
    path = inputs / name
    path.write_bytes(payload)
    return path


def model_tarball(payload: bytes) -> Callable[[Path], Path]:
    """A case's ``prepare``: ``payload`` written as model.tar.gz in the inputs folder."""
    return lambda inputs: write_input(inputs, "model.tar.gz", payload)
