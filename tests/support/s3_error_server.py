"""A tiny local HTTP server that answers every S3 request with one chosen error.

moto does not produce some error shapes real S3 services send (403 for a denied
request, a 301 for a bucket in another region, 503 SlowDown); this server does, on
127.0.0.1, so the client code path and messages are tested against real responses.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass(frozen=True)
class S3Error:
    """The answer: status, S3 error code, and extra headers."""

    status: int
    code: str
    message: str = "error made by the test server"
    headers: dict[str, str] = field(default_factory=dict)

    def body(self) -> bytes:
        return (
            '<?xml version="1.0" encoding="UTF-8"?>\n'
            f"<Error><Code>{self.code}</Code><Message>{self.message}</Message>"
            "<RequestId>test</RequestId></Error>"
        ).encode()


ACCESS_DENIED = S3Error(403, "AccessDenied", "Access Denied")
WRONG_REGION = S3Error(
    301,
    "PermanentRedirect",
    "The bucket you are attempting to access must be addressed using the specified"
    " endpoint.",
    {"x-amz-bucket-region": "eu-west-3"},
)
NO_SUCH_BUCKET = S3Error(404, "NoSuchBucket", "The specified bucket does not exist")


@dataclass
class ErrorServer:
    endpoint: str
    requests: list[str]


@contextmanager
def s3_error_server(error: S3Error) -> Iterator[ErrorServer]:
    """Serve ``error`` to every request on 127.0.0.1 with a free port."""
    seen: list[str] = []

    class Handler(BaseHTTPRequestHandler):
        def _answer(self) -> None:
            seen.append(f"{self.command} {self.path}")
            body = b"" if self.command == "HEAD" else error.body()
            self.send_response(error.status)
            for name, value in error.headers.items():
                self.send_header(name, value)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _answer

        def log_message(self, format: str, *args: object) -> None:
            """Quiet: failures are reported by the tests."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield ErrorServer(f"http://127.0.0.1:{server.server_address[1]}", seen)
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
