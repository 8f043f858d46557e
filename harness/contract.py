"""The artifact contract a JumpStart TF image-classification training job writes, shared by training (which
writes it), import on the edge (which reads and checks it) and the offline JumpStart metadata.

``model.tar.gz`` holds, relative to its root, a TF SavedModel under ``1/`` and one label map: either
``class_label_to_prediction_index.json`` (``{class name: output index}``, the legacy script) or
``labels_info.json`` (``{"labels": [...]}`` in output order, newer scripts)."""

from __future__ import annotations

import json
import tarfile
from pathlib import Path
from typing import Any

from harness.errors import ArtifactError
from harness.fileio import atomic_file, read_json

LABEL_MAP_FILE = "class_label_to_prediction_index.json"
LABELS_INFO_FILE = "labels_info.json"  # newer JumpStart scripts: {"labels": [...]} in index order
SAVED_MODEL_DIR = "1"
BASE_MODEL_FILE = "edgebench-base-model.json"  # what the offline `model` channel carries instead of weights


def write_label_map(classes: tuple[str, ...], model_dir: Path) -> Path:
    """``class_label_to_prediction_index.json``: class index = position in ``classes`` (sorted folder names)."""
    path = Path(model_dir) / LABEL_MAP_FILE
    path.write_text(json.dumps({label: index for index, label in enumerate(classes)}, indent=2))
    return path


def tar_model_dir(model_dir: Path, tarball: Path) -> Path:
    """Tar the model dir's contents as SageMaker does (paths relative to it), atomically into ``tarball``."""
    tarball = Path(tarball)
    with atomic_file(tarball) as partial, tarfile.open(partial, "w:gz") as tar:
        for entry in sorted(Path(model_dir).iterdir()):
            tar.add(entry, arcname=entry.name)
    return tarball


def check_saved_model(model_dir: Path, shown_as: Path | str) -> None:
    """The SavedModel must be where the contract puts it; the error names ``shown_as`` (the user's tarball)."""
    if not (Path(model_dir) / SAVED_MODEL_DIR / "saved_model.pb").is_file():
        raise ArtifactError(
            f"{shown_as}: no {SAVED_MODEL_DIR}/saved_model.pb inside; expected the layout a "
            "JumpStart TF image-classification training job writes"
        )


def load_label_map(model_dir: Path) -> tuple[str, ...]:
    """Class names in output-index order, from exactly one of the two label files JumpStart writes."""
    present = [name for name in (LABEL_MAP_FILE, LABELS_INFO_FILE) if (model_dir / name).is_file()]
    if len(present) != 1:
        found = "neither" if not present else "both"
        raise ArtifactError(
            f"{model_dir}: found {found} of {LABEL_MAP_FILE} and {LABELS_INFO_FILE}; the "
            "artifact needs exactly one label map"
        )
    path = model_dir / present[0]
    content = read_json(path, ArtifactError, "not valid JSON", hint="", object_pairs_hook=_unique_keys)
    if present[0] == LABEL_MAP_FILE:
        return _folder_names(path, _from_index_map(path, content))
    labels = content.get("labels") if isinstance(content, dict) else None
    if (
        not isinstance(labels, list)
        or not labels
        or not all(isinstance(x, str) for x in labels)
        or len(set(labels)) != len(labels)
    ):
        raise ArtifactError(f'{path}: expected {{"labels": [unique class names in output order]}}')
    return _folder_names(path, tuple(labels))


def _unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    content: dict[str, Any] = {}
    for key, value in pairs:
        if key in content:
            raise ValueError(f"class {key!r} appears twice")
        content[key] = value
    return content


def _folder_names(path: Path, classes: tuple[str, ...]) -> tuple[str, ...]:
    """Class names are the training channel's folder names: a name no folder can have (empty, '.', '..', a '/'
    or NUL in it, over 255 bytes, not encodable as UTF-8) cannot come from a training job, and would break the
    test-image match."""
    for name in classes:
        if name in ("", ".", "..") or "/" in name or "\0" in name or not 0 < _utf8_length(name) <= 255:
            raise ArtifactError(
                f"{path}: class name {name!r} cannot be a class folder name; the label map does "
                "not come from a training job's class folders"
            )
    return classes


def _utf8_length(name: str) -> int:
    """Bytes of ``name`` in UTF-8 (folder names are at most 255 on common file systems); 0 if not encodable."""
    try:
        return len(name.encode("utf-8"))
    except UnicodeEncodeError:
        return 0


def _from_index_map(path: Path, content: object) -> tuple[str, ...]:
    if not isinstance(content, dict) or not content:
        raise ArtifactError(f"{path}: expected a non-empty {{class name: output index}} object")
    indices = sorted(content.values()) if all(type(v) is int for v in content.values()) else None
    if indices != list(range(len(content))):
        raise ArtifactError(f"{path}: output indices must be the integers 0..{len(content) - 1}, each once")
    return tuple(sorted(content, key=content.__getitem__))
