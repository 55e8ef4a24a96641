"""The transports' one mapping of foreign exceptions, and both transports against a real
server on loopback: what an answer carries, and how each way of failing is mapped."""

from __future__ import annotations

import json
import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import urllib3

from extractor.config import GatewayConfig
from extractor.errors import FatalApiError, GatewayUnreachableError, TransientApiError
from extractor.gateway._transport import PooledTransport, SessionTransport, Transport, translate


@pytest.mark.parametrize(
    ("raised", "kind"),
    [
        pytest.param(ConnectionRefusedError(111, "refused"), GatewayUnreachableError, id="refused"),
        pytest.param(
            socket.gaierror(-2, "Name or service not known"),
            GatewayUnreachableError,
            id="unknown-host",
        ),
        pytest.param(
            urllib3.exceptions.ConnectTimeoutError(None, "connect timed out"),
            GatewayUnreachableError,
            id="urllib3-connect-timeout",
        ),
        pytest.param(
            requests.exceptions.ConnectTimeout("connect timed out"),
            GatewayUnreachableError,
            id="requests-connect-timeout",
        ),
        pytest.param(
            urllib3.exceptions.ReadTimeoutError(None, "/", "read timed out"),
            TransientApiError,
            id="urllib3-read-timeout",
        ),
        pytest.param(
            requests.exceptions.ReadTimeout("read timed out"),
            TransientApiError,
            id="requests-read-timeout",
        ),
        pytest.param(
            requests.exceptions.ConnectionError("Connection aborted"),
            TransientApiError,
            id="reset-after-sending",
        ),
        pytest.param(
            urllib3.exceptions.ProtocolError("Connection aborted"),
            TransientApiError,
            id="urllib3-protocol",
        ),
        pytest.param(
            ssl.SSLCertVerificationError("certificate verify failed"), FatalApiError, id="tls"
        ),
        pytest.param(
            requests.exceptions.SSLError("bad certificate"),
            TransientApiError,
            id="requests-ssl-without-cause",
        ),
    ],
)
def test_each_failure_is_mapped_by_what_it_says_of_the_gateway(
    raised: Exception, kind: type[Exception]
) -> None:
    assert type(translate(raised, 5)) is kind


def test_a_wrapped_refusal_is_found_under_requests_and_urllib3() -> None:
    inner = urllib3.exceptions.NewConnectionError(None, "Failed to establish a new connection")
    outer = requests.exceptions.ConnectionError(
        urllib3.exceptions.MaxRetryError(None, "/x", reason=inner)
    )
    assert isinstance(translate(outer, 5), GatewayUnreachableError)


class _Gateway(BaseHTTPRequestHandler):
    """Answers ``/status/N`` with status N, a header and a body naming the request;
    ``/slow`` after two seconds; ``/hang-up`` by closing the connection unanswered."""

    protocol_version = "HTTP/1.1"  # keep-alive, as the gateway
    seen: list[dict[str, object]]

    def do_GET(self) -> None:
        self._answer()

    def do_POST(self) -> None:
        self._answer()

    def _answer(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        request = {
            "method": self.command,
            "path": self.path,
            "signature": self.headers.get("apim-signature"),
            "body": self.rfile.read(length).decode(),
            "port": self.client_address[1],
        }
        self.seen.append(request)
        if self.path == "/hang-up":
            self.close_connection = True
            return
        if self.path == "/slow":
            threading.Event().wait(2)
        path = self.path.split("?")[0]
        status = int(path.split("/")[2]) if path.startswith("/status/") else 200
        body = json.dumps(request).encode()
        self.send_response(status)
        self.send_header("Retry-After", "7")
        self.send_header("Location", "/elsewhere")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[tuple[str, list[dict[str, object]]]]:
    seen: list[dict[str, object]] = []
    handler = type("Handler", (_Gateway,), {"seen": seen})
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}", seen
    httpd.shutdown()
    httpd.server_close()


LOOPBACK = GatewayConfig(
    base_url="http://127.0.0.1", app_key="k", app_secret="s", org_id="o", user_id="u", timeout_s=0.5
)


@pytest.fixture(params=[PooledTransport, SessionTransport], ids=["pooled", "session"])
def transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    made: Transport = request.param(LOOPBACK, pool_size=2)
    yield made
    made.close()


def test_an_answer_carries_status_headers_and_body(
    server: tuple[str, list[dict[str, object]]], transport: Transport
) -> None:
    url, seen = server
    headers = {"apim-signature": "abc", "Content-Type": "application/json"}
    answer = transport.send("POST", f"{url}/status/200?b=2&a=1", headers, b'{"k": 1}')
    assert answer.status == 200
    assert json.loads(answer.content) == seen[0]
    assert seen[0] == {
        "method": "POST",
        "path": "/status/200?b=2&a=1",
        "signature": "abc",
        "body": '{"k": 1}',
        "port": seen[0]["port"],
    }
    assert answer.headers["retry-after"] == answer.headers["Retry-After"] == "7"


@pytest.mark.parametrize("status", [302, 404, 429, 503])
def test_an_error_status_is_an_answer_sent_once_and_not_followed(
    server: tuple[str, list[dict[str, object]]], transport: Transport, status: int
) -> None:
    url, seen = server
    answer = transport.send("GET", f"{url}/status/{status}", {}, None)
    assert answer.status == status
    assert [r["path"] for r in seen] == [f"/status/{status}"], "no retry, no redirect"


def test_connections_are_kept_alive(
    server: tuple[str, list[dict[str, object]]], transport: Transport
) -> None:
    url, seen = server
    for _ in range(3):
        assert transport.send("GET", f"{url}/status/200", {}, None).status == 200
    assert len({r["port"] for r in seen}) == 1


def test_a_silent_gateway_is_a_transient_timeout(
    server: tuple[str, list[dict[str, object]]], transport: Transport
) -> None:
    url, _ = server
    with pytest.raises(TransientApiError, match=r"did not answer within 0\.5 s") as info:
        transport.send("GET", f"{url}/slow", {}, None)
    assert not isinstance(info.value, GatewayUnreachableError)


def test_a_connection_closed_unanswered_is_transient(
    server: tuple[str, list[dict[str, object]]], transport: Transport
) -> None:
    url, _ = server
    with pytest.raises(TransientApiError, match="connection failed") as info:
        transport.send("GET", f"{url}/hang-up", {}, None)
    assert not isinstance(info.value, GatewayUnreachableError)


def test_a_refused_connection_is_an_unreachable_gateway(transport: Transport) -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(GatewayUnreachableError, match=r"cannot connect.*refused"):
        transport.send("GET", f"http://127.0.0.1:{closed}/x", {}, None)
