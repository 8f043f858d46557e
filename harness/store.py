"""S3 through boto3: one code path for real AWS and for the embedded moto server (endpoint URL differs).

Credentials for real S3 come from the standard boto3 chain (env, profile, instance role) and are never
logged. The embedded fake accepts any credentials, so it is given dummy ones explicitly.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

import boto3
from boto3.exceptions import Boto3Error, RetriesExceededError
from boto3.s3.transfer import TransferConfig
from botocore.config import Config
from botocore.exceptions import (
    BotoCoreError,
    ClientError,
    FlexibleChecksumError,
    NoCredentialsError,
    PartialCredentialsError,
)
from s3transfer.utils import ChunksizeAdjuster

from harness.errors import StoreError
from harness.fileio import temp_sibling

if TYPE_CHECKING:  # boto3-stubs (the test extra); at run time the client is boto3's own
    from mypy_boto3_s3 import S3Client
    from mypy_boto3_s3.type_defs import HeadObjectOutputTypeDef

    from harness.data import LabeledImage

log = logging.getLogger(__name__)

SHA256_METADATA = "edgebench-sha256"  # stored as x-amz-meta-edgebench-sha256
TRANSFER = TransferConfig(multipart_threshold=8 * 1024 * 1024, multipart_chunksize=8 * 1024 * 1024)
# Each request: botocore's standard retries (5xx, SlowDown/throttling, resets, timeouts; backoff up to 1+2+4+8 s).
# A broken GetObject stream: s3transfer re-reads it (num_download_attempts, 5). A checksum that fails (botocore
# validates x-amz-checksum-* on whole-object GETs, response_checksum_validation "when_supported"; ranged GETs
# of multipart objects carry none) or a stream that broke 5 times: the whole download again, into a fresh
# temporary file, DOWNLOAD_ATTEMPTS times. An upload whose stored bytes differ (ETag, which the server computes
# from what it stored; moto keeps a PUT's x-amz-checksum-sha256 without checking it, AWS answers BadDigest):
# uploaded again, UPLOAD_ATTEMPTS times, then deleted.
RETRIES = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=10, read_timeout=60)
DOWNLOAD_ATTEMPTS = 3
UPLOAD_ATTEMPTS = 3
FAKE_CREDENTIALS = {"aws_access_key_id": "edgebench-offline", "aws_secret_access_key": "edgebench-offline"}
EMBEDDED_BUCKET = "edgebench-offline"  # the embedded S3's only bucket, created when it starts


@dataclass(frozen=True)
class S3Location:
    """Where edgebench reads and writes: a bucket and key prefix, at AWS or at a custom endpoint."""

    bucket: str
    prefix: str = "edgebench"
    region: str = "us-east-1"
    endpoint_url: str | None = None

    def key(self, *parts: str) -> str:
        return "/".join(p.strip("/") for p in (self.prefix, *parts) if p and p.strip("/"))

    def uri(self, key: str) -> str:
        return f"s3://{self.bucket}/{key}"


def default_region() -> str:
    """``$AWS_REGION``, else ``$AWS_DEFAULT_REGION``, else us-east-1: what ``--region`` defaults to."""
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or S3Location.region


@contextmanager
def open_store(location: S3Location | None, embedded_prefix: str = S3Location.prefix) -> Iterator[S3Store]:
    """The given location (standard credential chain; its bucket must exist), or, while the block lasts, an
    embedded S3 on 127.0.0.1 (``EMBEDDED_BUCKET`` created, keys under ``embedded_prefix``, dummy credentials)
    that child processes and local cluster workers reach like any endpoint."""
    if location is not None:
        s3 = S3Store(location)
        s3.ensure_bucket()
        yield s3
        return
    with embedded_s3() as endpoint:
        s3 = S3Store(S3Location(EMBEDDED_BUCKET, embedded_prefix, endpoint_url=endpoint), FAKE_CREDENTIALS)
        s3.ensure_bucket(create=True)
        yield s3


@contextmanager
def embedded_s3() -> Iterator[str]:
    """Run a moto S3 server on 127.0.0.1 (free port) and yield its endpoint URL."""
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)  # the fake logs every request otherwise
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        host, port = server.get_host_and_port()
        yield f"http://{host}:{port}"
    finally:
        server.stop()


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key`` -> (bucket, key); a clear error for anything else."""
    bucket, _, key = uri.removeprefix("s3://").partition("/")
    if not uri.startswith("s3://") or not bucket:
        raise StoreError(f"{uri!r}: not an S3 URI; expected s3://BUCKET/KEY")
    return bucket, key


class S3Store:
    """Upload and download files under one S3 location, with checksums and atomic local writes."""

    def __init__(self, location: S3Location, credentials: dict[str, str] | None = None) -> None:
        """``credentials=None`` uses the standard boto3 chain; pass FAKE_CREDENTIALS for the embedded S3."""
        self.location, self.credentials = location, credentials
        given = credentials or {}
        self.session = boto3.session.Session(
            aws_access_key_id=given.get("aws_access_key_id"),
            aws_secret_access_key=given.get("aws_secret_access_key"),
            aws_session_token=given.get("aws_session_token"),
            region_name=location.region,
        )
        self.client: S3Client = self.session.client("s3", endpoint_url=location.endpoint_url, config=RETRIES)

    def client_for(self, service: Literal["sagemaker"]) -> Any:
        """A client for another service at the same endpoint with the same credentials (sagemaker: no stubs, Any)."""
        return self.session.client(service, endpoint_url=self.location.endpoint_url, config=RETRIES)

    def for_bucket(self, bucket: str) -> S3Store:
        """The same endpoint, credentials and client, another bucket (e.g. JumpStart's content bucket)."""
        return self._sibling(dataclasses.replace(self.location, bucket=bucket, prefix=""))

    def under(self, *parts: str) -> S3Store:
        """The same bucket and client, keys under ``<prefix>/<parts...>`` (e.g. one run's folder)."""
        return self._sibling(dataclasses.replace(self.location, prefix=self.location.key(*parts)))

    def _sibling(self, location: S3Location) -> S3Store:
        other = object.__new__(S3Store)
        other.location, other.credentials, other.session, other.client = (
            location,
            self.credentials,
            self.session,
            self.client,
        )
        return other

    def ensure_bucket(self, create: bool = False) -> None:
        """Check the bucket exists; create it only when asked (the embedded S3), never by accident on AWS."""
        bucket = self.location.bucket
        with self._errors(f"bucket {bucket}"):
            try:
                self.client.head_bucket(Bucket=bucket)
                return
            except ClientError as exc:
                if _code(exc) not in ("404", "NoSuchBucket") or not create:
                    raise
            args: dict[str, Any] = {"Bucket": bucket}
            if self.location.region != "us-east-1":  # S3 refuses us-east-1 as a LocationConstraint
                args["CreateBucketConfiguration"] = {"LocationConstraint": self.location.region}
            self.client.create_bucket(**args)

    def upload_file(self, path: Path, key: str) -> str:
        """Upload with an SHA-256 checksum S3 verifies on receipt and a whole-file digest in metadata, then check
        the ETag the server computed from the bytes it stored; differing bytes are uploaded again, and after
        UPLOAD_ATTEMPTS the object is deleted (never left corrupt) and the error names it."""
        uri = self.location.uri(key)
        digest = sha256_file(path)
        for attempt in range(1, UPLOAD_ATTEMPTS + 1):
            with self._errors(uri):
                try:
                    self.client.upload_file(
                        str(path),
                        self.location.bucket,
                        key,
                        Config=TRANSFER,
                        ExtraArgs={"ChecksumAlgorithm": "SHA256", "Metadata": {SHA256_METADATA: digest}},
                    )
                except Boto3Error as exc:
                    if _code(exc.__context__) not in _CORRUPT_UPLOAD_CODES:
                        raise
                else:
                    if _stored_intact(self.client.head_object(Bucket=self.location.bucket, Key=key), path):
                        return uri
            log.warning(
                "%s: the stored bytes differ from %s (upload %d of %d); uploading again",
                uri,
                path,
                attempt,
                UPLOAD_ATTEMPTS,
            )
        with self._errors(uri):
            self.client.delete_object(Bucket=self.location.bucket, Key=key)
        raise StoreError(
            f"{uri}: the bytes S3 stored differed from {path} on each of {UPLOAD_ATTEMPTS} uploads "
            "(corrupted in transit; the object was deleted); check the network path to the endpoint "
            "and retry"
        )

    def upload_tree(self, root: Path, key_prefix: str) -> list[str]:
        files = sorted(p for p in Path(root).rglob("*") if p.is_file())
        return [self.upload_file(p, f"{key_prefix}/{p.relative_to(root).as_posix()}") for p in files]

    def upload_images(self, images: tuple[LabeledImage, ...], key_prefix: str) -> str:
        """Upload labelled images as ``<key_prefix>/<class>/<file name>``; returns the prefix's s3:// URI."""
        for image in images:
            self.upload_file(image.path, f"{key_prefix}/{image.label}/{image.path.name}")
        return self.location.uri(key_prefix)

    def delete(self, key: str) -> None:
        with self._errors(self.location.uri(key)):
            self.client.delete_object(Bucket=self.location.bucket, Key=key)

    def list_keys(self, key_prefix: str) -> list[str]:
        keys: list[str] = []
        with self._errors(self.location.uri(key_prefix)):
            pages = self.client.get_paginator("list_objects_v2").paginate(
                Bucket=self.location.bucket, Prefix=key_prefix.rstrip("/") + "/" if key_prefix.strip("/") else ""
            )
            for page in pages:
                keys.extend(item["Key"] for item in page.get("Contents", []))
        return sorted(keys)

    def download_file(self, key: str, dest: Path) -> Path:
        """Download to a temporary file, check the SHA-256 recorded at upload, then rename into place."""
        uri = self.location.uri(key)
        dest = Path(dest)
        dest.parent.mkdir(parents=True, exist_ok=True)
        with self._errors(uri):
            head = self.client.head_object(Bucket=self.location.bucket, Key=key)
        expected = head.get("Metadata", {}).get(SHA256_METADATA)
        problem = ""
        for attempt in range(1, DOWNLOAD_ATTEMPTS + 1):
            with temp_sibling(dest) as tmp:
                with self._errors(uri):
                    try:
                        self.client.download_file(self.location.bucket, key, str(tmp), Config=TRANSFER)
                        problem = (
                            "SHA-256 mismatch with the digest recorded at upload"
                            if expected and sha256_file(tmp) != expected
                            else ""
                        )
                    except FlexibleChecksumError:
                        problem = "checksum mismatch with the one S3 sent"
                    except RetriesExceededError as exc:
                        last = exc.last_exception  # type: ignore[attr-defined]  # set by boto3, missing in its stubs
                        problem = f"the connection broke on every read ({_first_line(last)})"
                if not problem:
                    tmp.replace(dest)
                    return dest
                log.warning("%s: %s (download %d of %d)", uri, problem, attempt, DOWNLOAD_ATTEMPTS)
        hint = (
            "check the network path to the endpoint and retry"
            if problem.startswith("the connection")
            else "retry if the network is at fault, else re-upload the object (it may be corrupt in S3)"
        )
        raise StoreError(f"{uri}: {problem} on each of {DOWNLOAD_ATTEMPTS} downloads, each into a fresh file; {hint}")

    def download_tree(self, key_prefix: str, dest: Path) -> list[Path]:
        keys = self.list_keys(key_prefix)
        if not keys:
            raise StoreError(
                f"{self.location.uri(key_prefix)}/: no objects under this prefix; check the bucket and prefix"
            )
        base = key_prefix.rstrip("/") + "/"
        paths = []
        for key in keys:
            if key.endswith("/"):  # "folder" placeholder objects, as the S3 console creates them
                continue
            relative = Path(key[len(base) :])
            if relative.is_absolute() or ".." in relative.parts:
                raise StoreError(f"{self.location.uri(key)}: key escapes the download folder; refusing it")
            paths.append(self.download_file(key, Path(dest) / relative))
        return paths

    @contextmanager
    def _errors(self, what: str) -> Iterator[None]:
        """Turn boto3/botocore failures into one-line StoreErrors that say what to do."""
        try:
            yield
        except (NoCredentialsError, PartialCredentialsError):
            raise StoreError(
                f"{what}: no AWS credentials found; set AWS_PROFILE or AWS_ACCESS_KEY_ID/"
                "AWS_SECRET_ACCESS_KEY (run, train and fleet run: or leave --bucket unset for the embedded offline S3)"
            ) from None
        except ClientError as exc:
            raise StoreError(f"{what}: {_describe(exc)}") from None
        except BotoCoreError as exc:
            raise StoreError(f"{what}: {exc}; check --endpoint-url, --region and the network") from None
        except Boto3Error as exc:  # S3UploadFailedError, RetriesExceededError: wrap a ClientError's text
            if isinstance(exc.__context__, ClientError):
                raise StoreError(f"{what}: {_describe(exc.__context__)}") from None
            raise StoreError(f"{what}: {str(exc).splitlines()[0]}; check the bucket name and permissions") from None


_CORRUPT_UPLOAD_CODES = ("BadDigest", "InvalidDigest", "XAmzContentSHA256Mismatch")  # S3 refused corrupt bytes
_RETRIED = "kept failing after boto3's retries (5 attempts); retry later, or check the endpoint's health"


def _code(exc: BaseException | None) -> str:
    return str(exc.response.get("Error", {}).get("Code", "")) if isinstance(exc, ClientError) else ""


def _first_line(exc: BaseException | None) -> str:
    return " ".join(str(exc).split())[:200]


def _stored_intact(head: HeadObjectOutputTypeDef, path: Path) -> bool:
    """Whether the object S3 describes holds ``path``'s bytes: its size, and its ETag, which S3 (and moto)
    compute from the bytes stored: the MD5, or for a multipart upload the MD5 of the parts' MD5s with ``-N``.
    Under SSE-KMS or SSE-C the ETag is no MD5; then only the size is checked (AWS verified the checksum)."""
    size = path.stat().st_size
    etag = str(head.get("ETag", "")).strip('"')
    if head.get("ContentLength") != size:
        return False
    if str(head.get("ServerSideEncryption", "")).startswith("aws:kms") or head.get("SSECustomerAlgorithm"):
        return True
    chunk = ChunksizeAdjuster().adjust_chunksize(TRANSFER.multipart_chunksize, size) if "-" in etag else size
    digests = []
    with path.open("rb") as handle:
        while block := handle.read(chunk) if chunk else b"":
            digests.append(hashlib.md5(block, usedforsecurity=False).digest())
    if "-" not in etag:
        return etag == (digests[0].hex() if digests else hashlib.md5(b"", usedforsecurity=False).hexdigest())
    return etag == f"{hashlib.md5(b''.join(digests), usedforsecurity=False).hexdigest()}-{len(digests)}"


def _describe(exc: ClientError) -> str:
    code = _code(exc)
    hints = {
        "NoSuchBucket": "bucket does not exist; create it or fix --bucket",
        "NoSuchKey": "object does not exist; check --prefix and the run id",
        "404": "not found; check --bucket, --prefix and the run id",
        "AccessDenied": "access denied; the credentials lack s3:GetObject/PutObject/ListBucket here",
        "403": "access denied; check the credentials and the bucket policy",
        "InvalidAccessKeyId": "the access key is not valid for this endpoint",
        "SignatureDoesNotMatch": "the secret key does not match the access key",
        "SlowDown": f"S3 is throttling requests (SlowDown) and {_RETRIED}",
        "503": f"S3 unavailable (503) and {_RETRIED}",
        "InternalError": f"S3 internal error and {_RETRIED}",
        "500": f"S3 internal error (500) and {_RETRIED}",
    }
    message = exc.response.get("Error", {}).get("Message", "")
    return hints.get(code, f"S3 error {code}: {message}".strip())


def sha256_file(path: Path) -> str:
    with path.open("rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()
