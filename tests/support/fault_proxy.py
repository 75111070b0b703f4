"""A misbehaving S3 endpoint: an HTTP proxy on 127.0.0.1 that injects faults.

The proxy forwards every request to a real S3 server (moto) and answers with its
response, unless a rule matches the request: then it answers with an error status,
resets the connection or closes it early part-way through the body, flips a byte of
the body, or stalls until the test releases it. Each rule fires ``count`` times.
Every request is recorded, with the fault it met. Optionally it speaks TLS, for
tests of certificate verification.
"""

from __future__ import annotations

import http.client
import socket
import ssl
import struct
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import urlsplit

# Headers that belong to one connection, not to the message being forwarded.
_HOP_BY_HOP = {
    "connection",
    "keep-alive",
    "transfer-encoding",
    "content-length",
    "expect",
    "proxy-connection",
}


@dataclass(frozen=True)
class Status:
    """Answer with an S3 error instead of forwarding (500, 503 SlowDown, ...)."""

    status: int = 500
    code: str = "InternalError"
    retry_after: int | None = None

    def body(self) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>injected by the fault proxy"
            "</Message><RequestId>fault</RequestId></Error>"
        ).encode()


@dataclass(frozen=True)
class Reset:
    """Send the headers and ``after`` body bytes (or nothing at all, when None),
    then reset the connection (RST). The request did reach the server."""

    after: int | None = None


@dataclass(frozen=True)
class Truncate:
    """Send the headers (whose Content-Length promises the whole body) and
    ``after`` body bytes, then close the connection cleanly."""

    after: int = 0


@dataclass(frozen=True)
class Flip:
    """Forward the response with one body byte inverted, at ``at`` (or the middle)."""

    at: int | None = None


@dataclass(frozen=True)
class Stall:
    """Send the headers and ``after`` body bytes (or nothing at all, when None),
    then hold the connection until the test calls ``FaultProxy.release``."""

    after: int | None = None


Fault = Status | Reset | Truncate | Flip | Stall


@dataclass
class Rule:
    """Inject ``fault`` into the next ``count`` requests whose method is ``method``
    (or any, for ``*``) and whose path contains ``path``."""

    method: str
    path: str
    fault: Fault
    count: int = 1

    def matches(self, method: str, path: str) -> bool:
        return self.count > 0 and self.method in ("*", method) and self.path in path


@dataclass(frozen=True)
class Seen:
    """One request as the proxy received it, and the fault it met (or None)."""

    method: str
    path: str
    headers: dict[str, str]
    fault: Fault | None


class FaultProxy:
    """The running proxy: add rules, read what it saw, release stalls."""

    def __init__(self, endpoint: str, upstream: str) -> None:
        self.endpoint = endpoint
        self.upstream = upstream
        self._rules: list[Rule] = []
        self._seen: list[Seen] = []
        self._lock = threading.Lock()
        self._released = threading.Event()
        self.stalled = threading.Semaphore(0)

    def inject(self, method: str, path: str, fault: Fault, count: int = 1) -> Rule:
        """Add a rule; rules are tried in the order they were added."""
        rule = Rule(method, path, fault, count)
        with self._lock:
            self._rules.append(rule)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rules.clear()

    def release(self) -> None:
        """Let every stalled response (now and later) end: the connection closes."""
        self._released.set()

    @property
    def requests(self) -> list[Seen]:
        with self._lock:
            return list(self._seen)

    def faults(self) -> list[Seen]:
        """The requests that met a fault."""
        return [seen for seen in self.requests if seen.fault is not None]

    def _take(self, method: str, path: str, headers: dict[str, str]) -> Fault | None:
        with self._lock:
            fault = None
            for rule in self._rules:
                if rule.matches(method, path):
                    rule.count -= 1
                    fault = rule.fault
                    break
            self._seen.append(Seen(method, path, headers, fault))
            return fault

    def _wait_for_release(self) -> None:
        self.stalled.release()
        self._released.wait()


@dataclass(frozen=True)
class _Response:
    status: int
    reason: str
    headers: list[tuple[str, str]]
    body: bytes


def _handler(proxy: FaultProxy) -> type[BaseHTTPRequestHandler]:
    upstream = urlsplit(proxy.upstream)

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _answer(self) -> None:
            body = self._request_body()
            headers = {k.lower(): v for k, v in self.headers.items()}
            fault = proxy._take(self.command, self.path, headers)
            if isinstance(fault, Status):
                self._send_status(fault)
                return
            response = self._forward(body)
            if isinstance(fault, Flip):
                response = _flipped(response, fault)
            if isinstance(fault, Reset | Truncate | Stall):
                self._misbehave(response, fault)
                return
            self._send(response, response.body)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _answer

        def _request_body(self) -> bytes:
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _forward(self, body: bytes) -> _Response:
            connection = http.client.HTTPConnection(
                upstream.hostname or "127.0.0.1", upstream.port, timeout=60
            )
            headers = {
                k: v for k, v in self.headers.items() if k.lower() not in _HOP_BY_HOP
            }
            headers["Content-Length"] = str(len(body))
            try:
                connection.request(self.command, self.path, body, headers)
                answer = connection.getresponse()
                data = answer.read()
                kept = [
                    (k, v)
                    for k, v in answer.getheaders()
                    if k.lower() not in _HOP_BY_HOP
                ]
                if self.command == "HEAD":
                    length = answer.getheader("Content-Length")
                    kept.append(("Content-Length", length or "0"))
                return _Response(answer.status, answer.reason, kept, data)
            finally:
                connection.close()

        def _send(self, response: _Response, sent: bytes) -> None:
            self.send_response(response.status, response.reason)
            for name, value in response.headers:
                self.send_header(name, value)
            if self.command != "HEAD":
                self.send_header("Content-Length", str(len(response.body)))
            self.end_headers()
            self.wfile.write(sent)
            self.wfile.flush()

        def _send_status(self, fault: Status) -> None:
            body = fault.body()
            self.send_response(fault.status)
            if fault.retry_after is not None:
                self.send_header("Retry-After", str(fault.retry_after))
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def _misbehave(
            self, response: _Response, fault: Reset | Truncate | Stall
        ) -> None:
            if fault.after is not None:
                self._send(response, response.body[: fault.after])
            if isinstance(fault, Stall):
                proxy._wait_for_release()
            if isinstance(fault, Reset):
                _reset(self.connection)
            self.close_connection = True

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: the tests report what matters."""

    return Handler


def _flipped(response: _Response, fault: Flip) -> _Response:
    if not response.body:
        return response
    at = len(response.body) // 2 if fault.at is None else fault.at
    body = bytearray(response.body)
    body[at] ^= 0xFF
    return _Response(response.status, response.reason, response.headers, bytes(body))


def _reset(connection: socket.socket) -> None:
    """Close so that the peer gets a TCP reset instead of an orderly end."""
    connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))


@contextmanager
def fault_proxy(
    upstream: str, *, tls: ssl.SSLContext | None = None
) -> Iterator[FaultProxy]:
    """A proxy on 127.0.0.1 (free port) in front of ``upstream``; stopped after.

    With ``tls``, it serves HTTPS with that context's certificate. Stalled
    responses are released when the proxy stops, so no thread is left waiting.
    """
    server = ThreadingHTTPServer(("127.0.0.1", 0), BaseHTTPRequestHandler)
    scheme = "http"
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
        scheme = "https"
    port = server.server_address[1]
    proxy = FaultProxy(f"{scheme}://127.0.0.1:{port}", upstream)
    server.RequestHandlerClass = _handler(proxy)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield proxy
    finally:
        proxy.release()
        server.shutdown()
        server.server_close()
        thread.join()
