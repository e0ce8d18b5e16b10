"""A fault-injecting HTTP proxy for an S3 API server (moto in the tests).

Clients point their S3 endpoint at the proxy; it forwards every request to the real
server and returns the real answer, except that it fails a seeded share of requests the
way object stores do under load: `500 InternalError`, `503 SlowDown` (S3's throttling
answer, XML body as AWS sends it) or a connection reset with no answer at all. Requests
whose path contains one of `always_fail` fail every time (a persistently broken object).

The faults happen before the request reaches the server, so a failed write never lands:
a client that sees an error and does not retry has really lost that request.
"""

from __future__ import annotations

import collections
import http.client
import http.server
import random
import socket
import struct
import threading
from urllib.parse import urlsplit

FAULTS = ("500", "503", "reset")

_ERROR_XML = {
    "500": (500, "InternalError", "We encountered an internal error. Please try again."),
    "503": (503, "SlowDown", "Please reduce your request rate."),
}
_HOP_BY_HOP = {"connection", "keep-alive", "proxy-connection", "transfer-encoding", "te", "trailer", "upgrade"}


class FaultProxy:
    """`with FaultProxy(upstream, rate=0.2) as proxy:` ... `proxy.url` is the endpoint to use.

    `counts` tallies requests forwarded and faults injected by kind, so a test can check
    that faults really happened.
    """

    def __init__(self, upstream: str, rate: float = 0.0, faults: tuple[str, ...] = FAULTS,
                 always_fail: tuple[str, ...] = (), seed: int = 0):
        parts = urlsplit(upstream)
        self.upstream = (parts.hostname, parts.port)
        self.rate, self.faults, self.always_fail = rate, faults, always_fail
        self.random = random.Random(seed)
        self.lock = threading.Lock()
        self.counts: collections.Counter = collections.Counter()
        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _handler(self))
        self.server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FaultProxy:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()

    def choose_fault(self, path: str) -> str | None:
        """The fault to inject for a request to `path`, or None to forward it."""
        with self.lock:
            self.counts["requests"] += 1
            if any(part in path for part in self.always_fail):
                fault = "500"
                self.counts["always_fail"] += 1
            elif self.rate and self.random.random() < self.rate:
                fault = self.random.choice(self.faults)
            else:
                return None
            self.counts[fault] += 1
            return fault


def _handler(proxy: FaultProxy) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:  # quiet: the tests read `counts`
            pass

        def _body(self) -> bytes:
            if self.headers.get("Transfer-Encoding", "").lower() == "chunked":
                chunks = []
                while size := int(self.rfile.readline().split(b";")[0].strip() or b"0", 16):
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
                while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                    pass  # trailers
                return b"".join(chunks)
            return self.rfile.read(int(self.headers.get("Content-Length") or 0))

        def _reset(self) -> None:
            """Close with RST (SO_LINGER 0): the client sees 'connection reset by peer'."""
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
            self.close_connection = True
            self.connection.close()

        def _error(self, fault: str) -> None:
            status, code, message = _ERROR_XML[fault]
            body = (f'<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>{code}</Code>'
                    f"<Message>{message}</Message><Resource>{self.path}</Resource>"
                    "<RequestId>faultproxy</RequestId></Error>").encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/xml")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(body)

        def _forward(self, body: bytes) -> None:
            conn = http.client.HTTPConnection(*proxy.upstream, timeout=60)
            try:
                conn.putrequest(self.command, self.path, skip_host=True, skip_accept_encoding=True)
                for name, value in self.headers.items():
                    if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                        conn.putheader(name, value)  # Host kept as signed by the client
                conn.putheader("Content-Length", str(len(body)))
                conn.endheaders(body)
                answer = conn.getresponse()
                payload = answer.read()
            finally:
                conn.close()
            self.send_response(answer.status, answer.reason)
            for name, value in answer.getheaders():
                if name.lower() not in _HOP_BY_HOP and name.lower() != "content-length":
                    self.send_header(name, value)
            # A HEAD answer's Content-Length is the object's size, not this (empty) body's.
            length = answer.getheader("Content-Length", "0") if self.command == "HEAD" else str(len(payload))
            self.send_header("Content-Length", length)
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(payload)

        def _any(self) -> None:
            body = self._body()
            fault = proxy.choose_fault(self.path)
            if fault == "reset":
                self._reset()
            elif fault:
                self._error(fault)
            else:
                self._forward(body)

        do_GET = do_PUT = do_POST = do_HEAD = do_DELETE = _any

    return Handler
