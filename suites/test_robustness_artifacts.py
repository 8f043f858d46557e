"""Hostile or malformed artifacts and label maps get one clear line naming the problem, and nothing is left
half-extracted."""

from __future__ import annotations

import json

import pytest

from harness import contract, edge, fileio
from harness.errors import ArtifactError
from robustness_helpers import write_tarball

LABELS = json.dumps({"cloudy": 0, "sunny": 1}).encode()


@pytest.mark.parametrize(
    "members,links,pattern",
    [
        ({"../escape.txt": b"x", "1/saved_model.pb": b"x", contract.LABEL_MAP_FILE: LABELS}, None, "not a safe"),
        ({"/abs/evil.txt": b"x", "1/saved_model.pb": b"x", contract.LABEL_MAP_FILE: LABELS}, None, "not a safe"),
        ({"1/saved_model.pb": b"x", contract.LABEL_MAP_FILE: LABELS}, {"1/link": "/etc/passwd"}, "not a safe"),
        ({contract.LABEL_MAP_FILE: LABELS}, None, r"no 1/saved_model\.pb inside"),
    ],
    ids=["path-traversal", "absolute-path", "escaping-symlink", "no-saved-model"],
)
def test_hostile_or_wrong_tarball_is_refused(tmp_path, members, links, pattern):
    tarball = write_tarball(tmp_path / "model.tar.gz", members, links)
    with pytest.raises(ArtifactError, match=pattern):
        edge.import_local(tarball, tmp_path / "edge")
    assert not (tmp_path / "edge" / "escape.txt").exists() and not (tmp_path / "escape.txt").exists()
    assert not (tmp_path / "edge" / "model").exists()  # nothing half-extracted


def test_archive_bomb_is_refused(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio, "MAX_EXTRACTED_BYTES", 1000)
    tarball = write_tarball(
        tmp_path / "model.tar.gz", {"1/saved_model.pb": b"\0" * 2000, contract.LABEL_MAP_FILE: LABELS}
    )
    with pytest.raises(ArtifactError, match="expands past"):
        edge.import_local(tarball, tmp_path / "edge")


def test_not_a_tarball(tmp_path):
    (tmp_path / "model.tar.gz").write_bytes(b"plain text")
    with pytest.raises(ArtifactError, match="not a safe, readable tarball"):
        edge.import_local(tmp_path / "model.tar.gz", tmp_path / "edge")


def test_missing_artifact(tmp_path):
    with pytest.raises(ArtifactError, match=r"no such model\.tar\.gz"):
        edge.import_local(tmp_path / "model.tar.gz", tmp_path / "edge")


@pytest.mark.parametrize(
    "files,pattern",
    [
        ({}, "found neither"),
        ({contract.LABEL_MAP_FILE: LABELS, contract.LABELS_INFO_FILE: b'{"labels": ["a"]}'}, "found both"),
        ({contract.LABEL_MAP_FILE: b'{"a": 0, "b": 2}'}, r"indices must be the integers 0\.\.1"),
        ({contract.LABEL_MAP_FILE: b'{"a": 0, "b": true}'}, r"indices must be the integers"),
        ({contract.LABEL_MAP_FILE: b"{not json"}, "not valid JSON"),
        ({contract.LABELS_INFO_FILE: b'{"labels": ["a", "a"]}'}, "unique class names"),
    ],
)
def test_bad_label_map(tmp_path, files, pattern):
    for name, payload in files.items():
        (tmp_path / name).write_bytes(payload)
    with pytest.raises(ArtifactError, match=pattern):
        contract.load_label_map(tmp_path)


@pytest.mark.parametrize(
    "files,expected",
    [
        ({contract.LABEL_MAP_FILE: b'{"sunny": 1, "cloudy": 0}'}, ("cloudy", "sunny")),
        ({contract.LABELS_INFO_FILE: b'{"labels": ["rainy", "foggy"]}'}, ("rainy", "foggy")),
    ],
)
def test_either_label_map_form_is_accepted(tmp_path, files, expected):
    for name, payload in files.items():
        (tmp_path / name).write_bytes(payload)
    assert contract.load_label_map(tmp_path) == expected
