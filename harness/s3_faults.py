"""A fault-injecting HTTP proxy on 127.0.0.1 in front of an S3 endpoint (the embedded moto server).

Why a proxy and not botocore's event hooks: a hook runs inside botocore, above urllib3, so it can raise the
exception botocore *expects* a reset to become, but no socket is ever reset and no body is ever cut short;
the checksum wrapper, urllib3's content-length enforcement, s3transfer's stream retries and the connection
pool never see a real fault. The proxy sits on the wire: it answers 500 InternalError / 503 SlowDown, resets
the TCP connection (SO_LINGER 0), sends half a body under the full Content-Length and closes (or reads half
an upload and closes), flips a byte of an object's bytes in either direction, or holds a request for seconds.
Everything boto3 does (signing, retries, checksums, multipart, ranged GETs) runs as it does against AWS.

Faults are rules, each for a set of S3 operations (named as in the S3 API, derived from method, path and
query: ``PutObject``, ``UploadPart``, ``GetObject``, ``ListObjectsV2`` ...; ``*`` for any), optionally only
keys containing a string, injected on the *first N* matching requests or at a *rate* (the first matching
request, then each whose running count crosses a multiple of 1/rate: deterministic, no random state). ``flip`` and
``truncate`` apply to object bytes only: GetObject response bodies, PutObject/UploadPart request bodies (S3 has no
checksum on listings or XML; TLS protects those on AWS). Every injected fault is logged on the proxy (``injected``).
"""

from __future__ import annotations

import http.client
import logging
import socket
import struct
import threading
import time
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, unquote, urlsplit

log = logging.getLogger(__name__)

KINDS = ("500", "503", "reset", "truncate", "flip", "delay")
ERRORS = {
    "500": ("InternalError", "We encountered an internal error. Please try again."),
    "503": ("SlowDown", "Please reduce your request rate."),
}
_HOP_BY_HOP = {"connection", "keep-alive", "transfer-encoding", "expect", "proxy-connection", "upgrade", "te"}


@dataclass
class Fault:
    """Inject ``kind`` on the first ``first`` requests matching ``operations`` (and ``key_contains``), or on a
    deterministic ``rate`` of them (0 < rate <= 1). ``delay_s`` is how long ``delay`` holds a request."""

    kind: str
    operations: tuple[str, ...] = ("*",)
    first: int | None = None
    rate: float | None = None
    key_contains: str | None = None
    delay_s: float = 2.0
    seen: int = field(default=0, compare=False)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise ValueError(f"fault kind {self.kind!r}: expected one of {', '.join(KINDS)}")
        if (self.first is None) == (self.rate is None):
            raise ValueError("give exactly one of first=N or rate=R")
        if self.rate is not None and not 0 < self.rate <= 1:
            raise ValueError(f"rate {self.rate}: expected 0 < rate <= 1")

    def matches(self, operation: str, key: str) -> bool:
        return ("*" in self.operations or operation in self.operations) and (
            self.key_contains is None or self.key_contains in key
        )

    def fires(self) -> bool:
        """Count one matching request; whether this one is faulted."""
        n, self.seen = self.seen, self.seen + 1
        if self.first is not None:
            return n < self.first
        assert self.rate is not None
        return n == 0 or int(n * self.rate) > int((n - 1) * self.rate)  # the first, then 1 in 1/rate


@dataclass(frozen=True)
class Injected:
    kind: str
    operation: str
    key: str


def s3_operation(method: str, path: str, query: str, headers: dict[str, str]) -> tuple[str, str]:
    """(S3 API operation, object key) of a path-style request; other services by their X-Amz-Target."""
    if "x-amz-target" in headers:
        return headers["x-amz-target"].rpartition(".")[2], ""
    bucket, _, key = unquote(path).lstrip("/").partition("/")
    params = parse_qs(query, keep_blank_values=True)
    if not bucket:
        return "ListBuckets", ""
    if not key:
        return {
            "GET": "ListObjectsV2" if "list-type" in params else "ListObjects",
            "HEAD": "HeadBucket",
            "PUT": "CreateBucket",
            "DELETE": "DeleteBucket",
            "POST": "DeleteObjects" if "delete" in params else "PostBucket",
        }.get(method, method), ""
    if method == "PUT":
        operation = (
            "UploadPart" if "uploadId" in params else "CopyObject" if "x-amz-copy-source" in headers else "PutObject"
        )
    elif method == "POST":
        operation = "CreateMultipartUpload" if "uploads" in params else "CompleteMultipartUpload"
    elif method == "DELETE":
        operation = "AbortMultipartUpload" if "uploadId" in params else "DeleteObject"
    else:
        operation = {"GET": "GetObject", "HEAD": "HeadObject"}.get(method, method)
    return operation, key


BODY_OPERATIONS = {"PutObject", "UploadPart"}  # requests carrying object bytes
DATA_RESPONSES = {"GetObject"}  # responses carrying object bytes


class FaultProxy:
    """``with FaultProxy(upstream) as proxy:`` point boto3 at ``proxy.endpoint``; set ``proxy.faults``."""

    def __init__(self, upstream: str, faults: Iterable[Fault] = ()) -> None:
        self.upstream = urlsplit(upstream)
        self.faults = list(faults)
        self.injected: list[Injected] = []
        self.requests = 0
        self._lock = threading.Lock()
        self._server = _QuietServer(("127.0.0.1", 0), _handler_for(self))
        self._thread = threading.Thread(target=self._server.serve_forever, name="s3-fault-proxy", daemon=True)

    @property
    def endpoint(self) -> str:
        host, port = self._server.socket.getsockname()[:2]  # what server_address holds, typed as a socket's
        return f"http://{host}:{port}"

    def set_faults(self, faults: Iterable[Fault]) -> None:
        with self._lock:
            self.faults, self.injected = list(faults), []

    def decide(self, operation: str, key: str) -> Fault | None:
        """The first rule that matches and fires for this request (every matching rule counts it)."""
        with self._lock:
            self.requests += 1
            chosen = None
            for fault in self.faults:
                if fault.matches(operation, key) and fault.fires() and chosen is None:
                    if fault.kind in ("flip", "truncate") and operation not in BODY_OPERATIONS | DATA_RESPONSES:
                        continue
                    chosen = fault
            if chosen is not None:
                self.injected.append(Injected(chosen.kind, operation, key))
                log.info("injecting %s into %s %s", chosen.kind, operation, key)
            return chosen

    def __enter__(self) -> FaultProxy:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


@contextmanager
def fault_proxy(upstream: str, faults: Iterable[Fault] = ()) -> Iterator[FaultProxy]:
    with FaultProxy(upstream, faults) as proxy:
        yield proxy


class _QuietServer(ThreadingHTTPServer):
    daemon_threads = True

    def handle_error(self, request: object, client_address: object) -> None:
        # socketserver calls handle_error inside its `except`, so exc_info is the handler's exception
        log.debug("proxy: connection from %s ended abruptly", client_address, exc_info=True)  # noqa: LOG014


def _handler_for(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    class Handler(_ProxyHandler):
        owner = proxy

    return Handler


class _ProxyHandler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as botocore's pool expects; also answers Expect: 100-continue
    owner: FaultProxy

    def log_message(self, format: str, *args: object) -> None:  # `format`: http.server's parameter name
        log.debug("proxy: " + format, *args)  # noqa: G003 - a prefix to http.server's format; args stay lazy

    def do_GET(self) -> None:
        self._relay()

    do_HEAD = do_PUT = do_POST = do_DELETE = do_GET

    def _relay(self) -> None:
        url = urlsplit(self.path)
        headers = {k.lower(): v for k, v in self.headers.items()}
        operation, key = s3_operation(self.command, url.path, url.query, headers)
        fault = self.owner.decide(operation, key)
        kind = fault.kind if fault else None
        length = int(headers.get("content-length") or 0)
        if kind == "truncate" and operation in BODY_OPERATIONS and length > 1:
            self.rfile.read(length // 2)  # half the upload arrives, then the connection drops
            self._reset()
            return
        body = self._read_body(headers, length)
        if kind == "reset":
            self._reset()
            return
        if kind in ERRORS:
            self._error(int(kind), *ERRORS[kind])
            return
        if kind == "delay":
            time.sleep(fault.delay_s)  # type: ignore[union-attr]
        if kind == "flip" and operation in BODY_OPERATIONS and body:
            body = _flipped(body)
        status, reason, response_headers, payload = self._forward(headers, body)
        if kind == "flip" and operation in DATA_RESPONSES and payload:
            payload = _flipped(payload)
        self.send_response_only(status, reason)
        for name, value in response_headers:
            if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                self.send_header(name, value)
        announced = (
            len(payload)
            if self.command != "HEAD"
            else int({k.lower(): v for k, v in response_headers}.get("content-length", 0))
        )
        self.send_header("Content-Length", str(announced))
        self.end_headers()
        if self.command == "HEAD":
            return
        if kind == "truncate" and operation in DATA_RESPONSES and len(payload) > 1:
            self.wfile.write(payload[: len(payload) // 2])  # the full length announced, half sent
            self.wfile.flush()
            self._reset()
            return
        self.wfile.write(payload)

    def _read_body(self, headers: dict[str, str], length: int) -> bytes:
        if "chunked" in headers.get("transfer-encoding", "").lower():
            chunks = []
            while True:
                size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                        pass  # trailers
                    break
                chunks.append(self.rfile.read(size))
                self.rfile.readline()
            headers.pop("transfer-encoding", None)
            headers["content-length"] = str(sum(map(len, chunks)))
            return b"".join(chunks)
        return self.rfile.read(length) if length else b""

    def _forward(self, headers: dict[str, str], body: bytes) -> tuple[int, str, list[tuple[str, str]], bytes]:
        upstream = self.owner.upstream
        assert upstream.hostname, "FaultProxy's upstream is an http://HOST:PORT endpoint"
        connection = http.client.HTTPConnection(upstream.hostname, upstream.port, timeout=120)
        try:
            outgoing = {k: v for k, v in headers.items() if k not in _HOP_BY_HOP}
            outgoing["content-length"] = str(len(body))
            connection.request(self.command, self.path, body=body, headers=outgoing)
            response = connection.getresponse()
            return response.status, response.reason, response.getheaders(), response.read()
        finally:
            connection.close()

    def _error(self, status: int, code: str, message: str) -> None:
        payload = (
            f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code><Message>{message}'
            f"</Message><RequestId>edgebench-fault</RequestId></Error>"
        ).encode()
        self.send_response_only(status)
        self.send_header("Content-Type", "application/xml")
        self.send_header("Content-Length", str(len(payload) if self.command != "HEAD" else 0))
        self.end_headers()
        if self.command != "HEAD":
            self.wfile.write(payload)

    def _reset(self) -> None:
        """Close with RST (SO_LINGER on, timeout 0), as a middlebox or a crashed server does."""
        self.close_connection = True
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.connection.close()
        except OSError:
            pass


def _flipped(data: bytes) -> bytes:
    """One bit of one byte in the middle inverted: what a bad NIC, cable or cache does."""
    middle = len(data) // 2
    return data[:middle] + bytes([data[middle] ^ 0x01]) + data[middle + 1 :]


# ------------------------------------------------------------------------------------------------
# The figure: faults x operations

OUTCOMES = {"retried": "r", "clean": "f", "lost": "LOST"}  # succeeded after retry, failed cleanly (one line)


def figure_lines(records: list[dict[str, Any]]) -> list[str]:
    """A table of ``{"fault", "operation", "outcome", "injected"}`` records (one per test): a row per fault
    (and how often it was injected), a column per operation, then the totals."""
    if not records:
        return []
    operations = list(dict.fromkeys(r["operation"] for r in records))
    faults = list(dict.fromkeys(r["fault"] for r in records))
    cells = {(r["fault"], r["operation"]): r for r in records}
    width = max(len(f) for f in faults) + 2
    lines = [" " * width + " ".join(f"{op:>15}" for op in operations)]
    for fault in faults:
        row = [cells.get((fault, op)) for op in operations]
        lines.append(
            f"{fault:<{width}}"
            + " ".join(f"{(OUTCOMES[c['outcome']] + ' ' + str(c['injected']) + 'x') if c else '-':>15}" for c in row)
        )
    count = {name: sum(r["outcome"] == name for r in records) for name in OUTCOMES}
    lines.append(
        f"{len(records)} faults x operations ({len(faults)} faults, {len(operations)} operations), "
        f"{sum(r['injected'] for r in records)} faults injected: {count['retried']} succeeded after "
        f"retry, {count['clean']} failed cleanly, {count['lost']} lost or corrupted"
    )
    lines.append(
        "r succeeded after retry   f failed cleanly (one line naming the object)   "
        "LOST lost or corrupted   Nx times injected   - not run"
    )
    return lines
