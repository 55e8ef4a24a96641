"""The transports' one mapping of foreign exceptions, and the pooled transport against
a real server on loopback."""

from __future__ import annotations

import socket
import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import requests
import urllib3

from extractor.errors import FatalApiError, GatewayUnreachableError, TransientApiError
from extractor.gateway._transport import PooledTransport, SessionTransport, translate


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


class _Slow(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/slow":
            threading.Event().wait(2)
        body = b'{"code": 0}'
        self.send_response(200)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), _Slow)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_port}"
    httpd.shutdown()
    httpd.server_close()


@pytest.mark.parametrize(
    "make", [PooledTransport, lambda **kw: SessionTransport(None, **kw)], ids=["pooled", "session"]
)
def test_transports_on_loopback(server: str, make: object) -> None:
    transport = make(pool_size=2, timeout_s=0.5, verify=True, ca_bundle=None)  # type: ignore[operator]
    answer = transport.send("GET", f"{server}/fast", {}, None)
    assert (answer.status, answer.content) == (200, b'{"code": 0}')
    with pytest.raises(TransientApiError, match=r"did not answer within 0\.5 s"):
        transport.send("GET", f"{server}/slow", {}, None)
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    with pytest.raises(GatewayUnreachableError, match="cannot connect"):
        transport.send("GET", f"http://127.0.0.1:{closed}/x", {}, None)
    transport.close()
