"""Hostile inputs, family 4: dataset layouts {root}/{class}/{images} with one or two hostile features (links
out, loops, pipes, non-images, odd names, no classes, the root a file) through ``data.load_dataset``,
``data.split_holdout``, ``edge.import_calibration`` and ``edgebench run|train``. Seeded: every run sees the same
cases."""

from __future__ import annotations

import os
import random
from pathlib import Path

from harness import data, edge
from harness.errors import EdgebenchError
from hostile_sweep import Case, CliRefused, good_dataset, image_bytes, run_cli


def _add_link(kind: str, root: Path, target: Path, rng: random.Random, sentinel: Path) -> None:
    """Links out of the dataset (to the sentinel), dangling, looping, or a second name for a class."""
    match kind:
        case "symlink-image-out":
            (target / "linked.png").symlink_to(sentinel / "keep.txt")
        case "symlink-class":
            (root / "alias").symlink_to(target.resolve())
        case "dangling":
            (target / "gone.png").symlink_to(root / "nowhere.png")
        case "symlink-loop":
            (target / "loop.png").symlink_to(target / "loop.png")
        case "hardlink":
            os.link(sentinel / "keep.txt", target / "hard.png")


def _add_non_image(kind: str, root: Path, target: Path, rng: random.Random, sentinel: Path) -> None:
    """Files that are not images where images are expected (or images where classes are)."""
    match kind:
        case "root-file":
            (root / rng.choice(["stray.png", "README.md", "labels.csv"])).write_bytes(image_bytes())
        case "non-image":
            (target / rng.choice(["notes.txt", "model.tar.gz", "x.py", "noext"])).write_text("not an image")
        case "text-as-png":
            (target / "fake.png").write_text("definitely not a png")
        case "fifo":
            os.mkfifo(target / "pipe.png")
        case "dotfiles":
            (target / ".DS_Store").write_bytes(b"\0")
            (root / ".git").mkdir(exist_ok=True)
        case "zero-byte":
            (target / "empty.jpg").write_bytes(b"")


def _add_odd_folder(kind: str, root: Path, target: Path, rng: random.Random, sentinel: Path) -> None:
    """Folders that are empty, deep, nested, oddly named or named like an image or like another class."""
    match kind:
        case "empty-class":
            (root / "empty").mkdir(exist_ok=True)
        case "deep":
            deep = target / Path(*["d"] * rng.choice([3, 60]))
            deep.mkdir(parents=True)
            (deep / "x.png").write_bytes(image_bytes())
        case "unicode":
            name = rng.choice(["☀️ sunny", "日本", "e\u0301", "\u202eevil", "tab\there", "new\nline", " "])
            (root / name).mkdir(exist_ok=True)
            (root / name / f"{name}.png").write_bytes(image_bytes())
        case "long-name":
            (target / ("n" * 250 + ".png")).write_bytes(image_bytes())
        case "nested":
            (target / "sub").mkdir(exist_ok=True)
        case "dir-named-png":
            (target / "folder.png").mkdir(exist_ok=True)
        case "same-name-case":
            (root / target.name.upper()).mkdir(exist_ok=True)
            (root / target.name.upper() / "x.png").write_bytes(image_bytes())
        case "image-suffix-dir":
            (root / "class.png").mkdir(exist_ok=True)
            (root / "class.png" / "x.png").write_bytes(image_bytes())


def _make_root_a_file(kind: str, root: Path, target: Path, rng: random.Random, sentinel: Path) -> None:
    """The dataset path is an image file, not a folder."""
    for path in sorted(root.rglob("*"), reverse=True):
        path.unlink() if not path.is_dir() or path.is_symlink() else path.rmdir()
    root.rmdir()
    root.write_bytes(image_bytes())


# Each hostile feature of a layout and what adds it. The seeded plans pick kinds by their position here: keep the
# order (a new kind goes last) or the corpus changes.
_FEATURES = {
    "empty-class": _add_odd_folder,
    "root-file": _add_non_image,
    "symlink-image-out": _add_link,
    "symlink-class": _add_link,
    "dangling": _add_link,
    "symlink-loop": _add_link,
    "non-image": _add_non_image,
    "text-as-png": _add_non_image,
    "deep": _add_odd_folder,
    "unicode": _add_odd_folder,
    "long-name": _add_odd_folder,
    "fifo": _add_non_image,
    "dotfiles": _add_non_image,
    "nested": _add_odd_folder,
    "dir-named-png": _add_odd_folder,
    "root-is-file": _make_root_a_file,
    "same-name-case": _add_odd_folder,
    "image-suffix-dir": _add_odd_folder,
    "zero-byte": _add_non_image,
    "hardlink": _add_link,
}
LAYOUT_KINDS = list(_FEATURES)


def _layout_plan(seed: int) -> tuple[int, int, list[str]]:
    rng = random.Random(seed)
    return (
        rng.choice([0, 1, 2, 2, 3, 40]),
        rng.choice([1, 2, 3, 3]),
        [rng.choice(LAYOUT_KINDS) for _ in range(rng.choice([1, 1, 2]))],
    )


def _layout(root: Path, seed: int, sentinel: Path) -> None:
    """A dataset with one or two hostile features."""
    n_classes, per_class, kinds = _layout_plan(seed)
    rng = random.Random(-seed)
    good_dataset(root, classes=[f"class{c}" for c in range(n_classes)], per_class=per_class)
    root.mkdir(parents=True, exist_ok=True)
    for kind in kinds:
        classes = sorted(p for p in root.iterdir() if p.is_dir()) if root.is_dir() else []
        target = rng.choice(classes) if classes else root / "only"
        target.mkdir(parents=True, exist_ok=True)
        _FEATURES[kind](kind, root, target, rng, sentinel)
        if kind == "root-is-file":
            break  # nothing more can go under a file


def _use_dataset(prepared: tuple[Path, int], run_dir: Path) -> str:
    """Validate, split into the run folder, then the CLI on the same folder: ``run``/``train`` stop at the
    dataset step with one line (an unreachable --holdout keeps a valid dataset from training)."""
    root, turn = prepared
    outcome = None
    try:
        dataset = data.load_dataset(root)
        data.split_holdout(dataset, run_dir / "split", per_class=1)
        edge.import_calibration(str(root), run_dir / "calibration")
        outcome = f"valid: {len(dataset.classes)} classes, {len(dataset.images)} images"
    except EdgebenchError as exc:
        outcome = exc
    command = ["run", "train"][turn % 2]
    try:
        run_cli(
            [
                command,
                "--dataset",
                str(root),
                "--holdout",
                "100000",
                "--reports-dir",
                "reports",
                "--cache-dir",
                "cache",
                *(["--backend", "tf"] if command == "run" else []),
            ]
        )
    except CliRefused as refused:
        if isinstance(outcome, str):
            assert "100000 held out" in str(refused), f"valid dataset, yet the CLI said: {refused}"
            return outcome
        raise outcome from None
    raise AssertionError(f"edgebench {command} did not stop at the dataset step")


def layout_cases(count: int, seed: int = 3) -> list[Case]:
    cases = []
    for i in range(count):

        def prepare(inputs: Path, i=i):
            _layout(inputs / "ds", seed * 1000 + i, inputs.parents[1] / "outside")
            return inputs / "ds", i

        cases.append(Case(f"{'+'.join(_layout_plan(seed * 1000 + i)[2])}-{i}", prepare, _use_dataset))
    return cases
