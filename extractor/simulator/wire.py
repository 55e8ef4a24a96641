"""HTTP/1.1 plumbing: a lean request reader and a one-write responder.

``BaseHTTPRequestHandler`` parses headers with the ``email`` package, measured at about
50 µs a request, a fifth of the simulator's whole cost; a benchmark's simulator shares
two cores with the client, so this reader splits the header lines itself. It handles
what API clients send: a request line, headers, and a ``Content-Length`` body. Every
answer goes out in a single write with Nagle off, which keeps small keep-alive
exchanges free of delayed-ACK stalls.
"""

from __future__ import annotations

import contextlib
import socket
import socketserver
import threading
from collections.abc import Callable
from http import HTTPStatus
from http.server import ThreadingHTTPServer
from urllib.parse import parse_qsl, urlsplit

import orjson

JSON_TYPE = "application/json;charset=UTF-8"
_MAX_LINE = 65536
_MAX_HEADERS = 100
_IDLE_TIMEOUT_S = 60.0


class Exchange:
    """One request, and the way to answer it (or not)."""

    def __init__(
        self, handler: Handler, method: str, target: str, headers: dict[str, str], body: bytes
    ) -> None:
        parts = urlsplit(target)
        self.handler = handler
        self.method = method
        self.path = parts.path
        self.query = parse_qsl(parts.query, keep_blank_values=True)
        self.params = dict(self.query)
        self.headers = headers
        """Request headers, names in lower case."""
        self.body = body

    def reply(
        self,
        status: int,
        body: bytes,
        headers: dict[str, str] | None = None,
        content_type: str = JSON_TYPE,
    ) -> None:
        """Send a whole answer in one write."""
        lines = [
            f"HTTP/1.1 {status} {HTTPStatus(status).phrase}",
            f"Content-Type: {content_type}",
            f"Content-Length: {len(body)}",
        ]
        lines.extend(f"{name}: {value}" for name, value in (headers or {}).items())
        if self.handler.close_connection:
            lines.append("Connection: close")
        self.handler.wfile.write(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)

    def reply_json(self, status: int, value: object, headers: dict[str, str] | None = None) -> None:
        """Send ``value`` as a JSON answer."""
        self.reply(status, orjson.dumps(value), headers)

    def hang_up(self) -> None:
        """End the connection without an answer."""
        self.handler.close_connection = True


class Handler(socketserver.StreamRequestHandler):
    """Reads requests off one keep-alive connection until it closes."""

    disable_nagle_algorithm = True
    timeout = _IDLE_TIMEOUT_S
    server: Server
    close_connection: bool

    def setup(self) -> None:
        super().setup()
        with self.server.lock:
            self.server.connections.add(self.connection)

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            with self.server.lock:
                self.server.connections.discard(self.connection)

    def handle(self) -> None:
        self.close_connection = False
        while not self.close_connection:
            try:
                self._one_request()
            except (TimeoutError, ConnectionError, OSError):
                self.close_connection = True

    def _refuse(self, status: int, message: str) -> None:
        self.close_connection = True
        body = orjson.dumps({"code": status, "msg": message})
        head = f"HTTP/1.1 {status} {HTTPStatus(status).phrase}\r\nContent-Type: {JSON_TYPE}\r\n"
        head += f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n"
        self.wfile.write(head.encode("latin-1") + body)

    def _one_request(self) -> None:
        line = self.rfile.readline(_MAX_LINE + 1)
        if not line:
            self.close_connection = True
            return
        if line in (b"\r\n", b"\n"):
            return
        parts = line.decode("latin-1").split()
        if len(line) > _MAX_LINE or len(parts) != 3 or not parts[2].startswith("HTTP/1."):
            self._refuse(400, "malformed request line")
            return
        method, target, version = parts
        headers: dict[str, str] = {}
        for _ in range(_MAX_HEADERS):
            raw = self.rfile.readline(_MAX_LINE + 1)
            if raw in (b"\r\n", b"\n", b""):
                break
            name, _, value = raw.decode("latin-1").partition(":")
            headers[name.strip().lower()] = value.strip()
        else:
            self._refuse(431, "too many header lines")
            return
        connection = headers.get("connection", "").lower()
        self.close_connection = connection == "close" or (
            version == "HTTP/1.0" and connection != "keep-alive"
        )
        if "chunked" in headers.get("transfer-encoding", "").lower():
            self._refuse(411, "send the body with a Content-Length")
            return
        try:
            length = int(headers.get("content-length") or 0)
        except ValueError:
            self._refuse(400, "bad Content-Length")
            return
        body = self.rfile.read(length) if length > 0 else b""
        if len(body) < length:
            self.close_connection = True
            return
        self.server.answer(Exchange(self, method, target, headers, body))


class Server(ThreadingHTTPServer):
    """One daemon thread per connection; closing cuts them rather than waiting for them."""

    daemon_threads = True
    block_on_close = False
    request_queue_size = 128

    def __init__(self, address: tuple[str, int], answer: Callable[[Exchange], None]) -> None:
        self.answer = answer
        self.connections: set[socket.socket] = set()
        self.lock = threading.Lock()
        super().__init__(address, Handler)

    def server_close(self) -> None:
        super().server_close()
        with self.lock:
            live = list(self.connections)
        for connection in live:
            with contextlib.suppress(OSError):
                connection.shutdown(socket.SHUT_RDWR)

    def server_bind(self) -> None:
        # HTTPServer.server_bind resolves the host's FQDN, a DNS round trip we don't need.
        socketserver.TCPServer.server_bind(self)
        host, port = self.server_address[:2]
        self.server_name, self.server_port = str(host), int(port)
