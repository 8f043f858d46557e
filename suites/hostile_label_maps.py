"""Hostile inputs, family 3: label maps inside the artifact (odd names, gaps and duplicates, thousands of
classes, broken JSON, labels-info.json) through ``edge.import_local``; seeded. And label maps of the wrong width
for a real model, for ``test_label_map_width_against_a_real_model``."""

from __future__ import annotations

import io
import json
import random
import tarfile
from pathlib import Path

from harness import contract, edge
from hostile_sweep import LABELS, Case, Member, artifact_members, model_tarball, run_cli, tar_bytes

_NAMES = [
    "cloudy",
    "sunny",
    "ünïcødé",
    "☀️",
    "日本語",
    "\u200b",
    "\u202eevil",
    "e\u0301",
    "",
    " ",
    "a/b",
    "..",
    "line\nbreak",
    "nul\0byte",
    "x" * 10000,
    "\ud800",
    "CLOUDY",
]


def _odd_classes(kind: str, rng: random.Random) -> bytes:
    """Class names no folder can have, thousands of classes, or one."""
    match kind:
        case "names":
            names = list(dict.fromkeys(rng.choice(_NAMES) for _ in range(rng.randint(1, 6))))
            return json.dumps({n: i for i, n in enumerate(names)}).encode("utf-8", "surrogatepass")
        case "thousands":
            n = rng.choice([1000, 5000, 30000])
            names = [f"class_{i:05d}_{'é' * (i % 3)}" for i in range(n)]
            rng.shuffle(names)
            return json.dumps({name: i for i, name in enumerate(names)}).encode()
        case _:  # one
            return b'{"only": 0}'


def _odd_indices(kind: str, rng: random.Random) -> bytes:
    """Indices with gaps, twice the same index or key, not integers, or past any integer type."""
    match kind:
        case "gap":
            return json.dumps({"a": 0, "b": rng.choice([3, 5, 1000]), "c": 1}).encode()
        case "duplicate-index":
            return json.dumps({"a": 0, "b": 0, "c": 1}).encode()
        case "duplicate-key":
            return rng.choice([b'{"a": 0, "b": 1, "a": 2}', b'{"b": 1, "a": 0, "b": 1}', b'{"a": 0, "b": 1, "a": 0}'])
        case "non-integer":
            value = rng.choice(
                ["1", "1.0", "true", "null", '"1"', "[1]", "{}", "NaN", "Infinity", "-1", "1e400", "1.5"]
            )
            return f'{{"a": 0, "b": {value}}}'.encode()
        case _:  # huge-index
            return f'{{"a": 0, "b": {10 ** rng.choice([19, 30, 400])}}}'.encode()


def _not_a_label_map(kind: str, rng: random.Random) -> bytes:
    """JSON of another shape, broken, nested 100,000 deep, behind a BOM, or not UTF-8."""
    match kind:
        case "json":
            return rng.choice([b"", b"[]", b"[0, 1]", b'"a"', b"0", b"null", b"{}", b"{", b'{"a": 0,}', b"\0\0\0"])
        case "deep":
            depth = rng.choice([1000, 100_000])
            return b'{"a": ' + b"[" * depth + b"]" * depth + b"}"
        case "bom":
            return b"\xef\xbb\xbf" + json.dumps(LABELS).encode()
        case _:  # not-utf8
            return b'{"\xff\xfe": 0, "b": 1}'


def _labels_info(kind: str, rng: random.Random) -> bytes:
    """labels-info.json (the other label file a JumpStart artifact may hold), good or not."""
    if kind == "labels-info":
        labels = list(dict.fromkeys(rng.choice(_NAMES[:8]) for _ in range(rng.randint(1, 5))))
        return json.dumps({"labels": labels}).encode()
    return rng.choice(
        [
            b'{"labels": []}',
            b'{"labels": ["a", 1]}',
            b'{"labels": {"a": 0}}',
            b'["a", "b"]',
            b'{"labels": ["a", "a"]}',
            b'{"labels": null}',
        ]
    )


# Each kind of label map and what writes it. The seeded cases pick a kind by its position here: keep the order (a
# new kind goes last) or the corpus changes.
_LABEL_PAYLOADS = {
    "names": _odd_classes,
    "gap": _odd_indices,
    "duplicate-index": _odd_indices,
    "duplicate-key": _odd_indices,
    "non-integer": _odd_indices,
    "thousands": _odd_classes,
    "one": _odd_classes,
    "json": _not_a_label_map,
    "labels-info": _labels_info,
    "labels-info-bad": _labels_info,
    "deep": _not_a_label_map,
    "huge-index": _odd_indices,
    "bom": _not_a_label_map,
    "not-utf8": _not_a_label_map,
}


def _label_payload(rng: random.Random) -> tuple[str, str, bytes]:
    """(kind, file name, bytes) of one hostile or unusual label map."""
    kind = rng.choice(list(_LABEL_PAYLOADS))
    file_name = contract.LABELS_INFO_FILE if _LABEL_PAYLOADS[kind] is _labels_info else contract.LABEL_MAP_FILE
    return kind, file_name, _LABEL_PAYLOADS[kind](kind, rng)


def _import_labels(tarball: Path, run_dir: Path) -> str:
    """An accepted label map gives unique class names that can be class folder names (test images are matched
    to classes by their folder) and survive a UTF-8 report."""
    model = edge.import_local(tarball, run_dir / "edge")
    assert len(set(model.classes)) == len(model.classes) and all(isinstance(c, str) for c in model.classes)
    for name in model.classes:
        assert name not in ("", ".", "..") and "/" not in name and "\0" not in name, f"accepted class {name!r}"
        assert len(name.encode("utf-8")) <= 255, f"accepted class {name[:20]!r}...: too long for a folder name"
    return f"{len(model.classes)} classes"


def label_cases(count: int, seed: int = 7) -> list[Case]:
    cases = []
    for i in range(count):
        kind, file_name, payload = _label_payload(random.Random(seed * 1000 + i))
        members = artifact_members(payload, file_name)
        if i % 7 == 6:  # both label files at once
            members.append(Member(contract.LABELS_INFO_FILE, b'{"labels": ["cloudy", "sunny"]}'))
        tarball = tar_bytes(members)
        cases.append(Case(f"{kind}-{i}", model_tarball(tarball), _import_labels))
    return cases


# ------------------------------------------------------------------------------------------------
# Label maps of the wrong width for a real model (test_label_map_width_against_a_real_model)


def _relabelled(artifact: Path, labels: bytes | None, dest: Path) -> Path:
    """The suite model's artifact with its label map replaced (``None``: kept)."""
    with tarfile.open(artifact) as source, tarfile.open(dest, "w:gz") as target:
        for member in source.getmembers():
            if member.name.lstrip("./") == contract.LABEL_MAP_FILE and labels is not None:
                member.size = len(labels)
                target.addfile(member, io.BytesIO(labels))
            else:
                target.addfile(member, source.extractfile(member) if member.isfile() else None)
    return dest


def _predict_checked(prepared: tuple[Path, Path, int], run_dir: Path) -> str:
    """``edgebench predict`` with the TF backend: the JSON lines name every class of the label map once."""
    tarball, image, width = prepared
    line = json.loads(run_cli(["predict", str(image), "--model", str(tarball), "--backend", "tf"]).splitlines()[-1])
    assert len(line["labels"]) == len(line["probabilities"]) == width, line
    return f"predicted {line['predicted_label']!r} over {width} classes"


def label_widths(classes: list[str]) -> dict[str, list[str]]:
    """Class names for a model of ``classes``: its own (in order and reversed) and of the wrong width (fewer,
    more, thousands)."""
    return {
        "same": list(classes),
        "reversed": list(reversed(classes)),
        "one": classes[:1],
        "one-fewer": classes[:-1],
        "one-more": [*classes, "extra"],
        "thousands": [f"c{i}" for i in range(3000)],
    }


def label_width_case(name: str, names: list[str], artifact: Path, image: Path) -> Case:
    """``edgebench predict`` on ``image`` with the suite artifact relabelled to ``names``."""
    payload, width = json.dumps({label: index for index, label in enumerate(names)}).encode(), len(names)

    def prepare(inputs: Path, payload=payload, width=width):
        return _relabelled(artifact, payload, inputs / "model.tar.gz"), image, width

    return Case(f"{name}-{len(names)}", prepare, _predict_checked)
