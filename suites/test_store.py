"""S3 store on moto: checksums, multipart, atomic downloads and one-line errors that say what to do."""

from __future__ import annotations

import os

import pytest

from harness import store
from harness.errors import StoreError


def test_upload_download_round_trip_with_sha256(tmp_path, s3_location):
    s3 = store.S3Store(s3_location)
    source = tmp_path / "a.bin"
    source.write_bytes(os.urandom(4096))
    uri = s3.upload_file(source, s3_location.key("a.bin"))
    assert uri == f"s3://{s3_location.bucket}/suite/a.bin"
    head = s3.client.head_object(Bucket=s3_location.bucket, Key="suite/a.bin", ChecksumMode="ENABLED")
    assert "ChecksumSHA256" in head
    assert s3.download_file("suite/a.bin", tmp_path / "out" / "a.bin").read_bytes() == source.read_bytes()


def test_large_object_goes_multipart_and_round_trips(tmp_path, s3_location):
    s3 = store.S3Store(s3_location)
    source = tmp_path / "big.bin"
    source.write_bytes(os.urandom(20 * 1024 * 1024))
    s3.upload_file(source, "suite/big.bin")
    etag = s3.client.head_object(Bucket=s3_location.bucket, Key="suite/big.bin")["ETag"]
    assert etag.strip('"').endswith("-3"), etag  # 3 parts of 8 MiB
    assert s3.download_file("suite/big.bin", tmp_path / "big.out").read_bytes() == source.read_bytes()


def test_checksum_mismatch_is_reported_and_nothing_is_left_behind(tmp_path, s3_location):
    s3 = store.S3Store(s3_location)
    s3.client.put_object(
        Bucket=s3_location.bucket, Key="suite/bad.bin", Body=b"payload", Metadata={store.SHA256_METADATA: "0" * 64}
    )
    dest = tmp_path / "bad.bin"
    with pytest.raises(StoreError, match="SHA-256 mismatch"):
        s3.download_file("suite/bad.bin", dest)
    assert list(tmp_path.iterdir()) == []


def test_upload_and_download_trees(tmp_path, s3_location):
    s3 = store.S3Store(s3_location)
    for name in ("cloudy/a.jpg", "sunny/b.png"):
        (tmp_path / "src" / name).parent.mkdir(parents=True, exist_ok=True)
        (tmp_path / "src" / name).write_bytes(name.encode())
    s3.upload_tree(tmp_path / "src", "suite/test")
    assert s3.list_keys("suite/test") == ["suite/test/cloudy/a.jpg", "suite/test/sunny/b.png"]
    paths = s3.download_tree("suite/test", tmp_path / "dst")
    assert sorted(p.relative_to(tmp_path / "dst").as_posix() for p in paths) == ["cloudy/a.jpg", "sunny/b.png"]


def test_missing_object_names_the_object(tmp_path, s3_location):
    with pytest.raises(StoreError, match=r"s3://edgebench-test-\w+/suite/nope: .*does not exist|not found"):
        store.S3Store(s3_location).download_file("suite/nope", tmp_path / "nope")


def test_empty_prefix_is_an_error(tmp_path, s3_location):
    with pytest.raises(StoreError, match="no objects under this prefix"):
        store.S3Store(s3_location).download_tree("suite/empty", tmp_path)


def test_missing_bucket_is_reported(tmp_path, s3_endpoint, aws_dummy_credentials):
    s3 = store.S3Store(store.S3Location("edgebench-no-such-bucket", endpoint_url=s3_endpoint))
    with pytest.raises(StoreError, match="edgebench-no-such-bucket"):
        s3.list_keys("x")


def test_missing_credentials_say_how_to_fix(tmp_path, s3_endpoint, monkeypatch):
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    source = tmp_path / "a.bin"
    source.write_bytes(b"x")
    s3 = store.S3Store(store.S3Location("edgebench-creds", endpoint_url=s3_endpoint))
    with pytest.raises(StoreError, match=r"no AWS credentials found.*AWS_PROFILE"):
        s3.upload_file(source, "a.bin")


def test_unreachable_endpoint_is_one_line(tmp_path, aws_dummy_credentials):
    s3 = store.S3Store(store.S3Location("edgebench-x", endpoint_url="http://127.0.0.1:9"))
    with pytest.raises(StoreError, match="check --endpoint-url") as info:
        s3.list_keys("x")
    assert "\n" not in str(info.value)


def test_folder_placeholder_keys_are_skipped(tmp_path, s3_location):
    s3 = store.S3Store(s3_location)
    s3.client.put_object(Bucket=s3_location.bucket, Key="suite/t/", Body=b"")
    s3.client.put_object(Bucket=s3_location.bucket, Key="suite/t/cloudy/", Body=b"")
    s3.client.put_object(Bucket=s3_location.bucket, Key="suite/t/cloudy/a.jpg", Body=b"a")
    paths = s3.download_tree("suite/t", tmp_path / "dst")
    assert [p.relative_to(tmp_path / "dst").as_posix() for p in paths] == ["cloudy/a.jpg"]


def test_a_missing_bucket_is_never_created_unless_asked(s3_endpoint, aws_dummy_credentials, tmp_path):
    s3 = store.S3Store(store.S3Location("edgebench-typo-bucket", endpoint_url=s3_endpoint))
    with pytest.raises(StoreError, match=r"edgebench-typo-bucket: .*does not exist|not found"):
        s3.ensure_bucket()
    source = tmp_path / "a.bin"
    source.write_bytes(b"x")
    with pytest.raises(StoreError, match=r"edgebench-typo-bucket/a\.bin") as info:
        s3.upload_file(source, "a.bin")
    assert "\n" not in str(info.value)
    assert "edgebench-typo-bucket" not in [b["Name"] for b in s3.client.list_buckets()["Buckets"]]
