"""The hosts' drivers of lti_core's HTTP port, against a real HTTP server on loopback.

The same contract for both: every HTTP response (a 503 too) is an ``HttpResponse``; no connection, a
timeout, a body over the limit, a redirect to another scheme or down from https is a ``TransportError``.
``UrllibTransport`` is the Django host's (synchronous), ``TornadoTransport`` the hub's (asynchronous).
"""

from __future__ import annotations

import asyncio
import json
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from jupyter_lti.http import TornadoTransport
from lti_core.errors import ServiceUnavailable
from lti_core.http import HttpRequest, HttpResponse, Transport, TransportError
from lti_core.lti13.jwks import PlatformKeyCache, build_key_set_request
from lti_xblock.http import UrllibTransport

LIMIT = 1000  # the drivers' body limit in these tests


class Handler(BaseHTTPRequestHandler):
    stop: threading.Event

    def log_message(self, format: str, *args: object) -> None:  # noqa: A002 - the base class's name
        pass

    def handle(self) -> None:
        try:
            super().handle()
        except (BrokenPipeError, ConnectionResetError):
            pass  # the driver gave up first (a timeout, a body over the limit): that is the test

    def answer(self, status: int, body: bytes, *headers: tuple[str, str]) -> None:
        self.send_response(status)
        for name, value in headers:
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self) -> None:  # noqa: N802 - http.server's name
        path = self.path
        if path == "/jwks":
            body = json.dumps({"seen": {"accept": self.headers["Accept"], "ua": self.headers["User-Agent"]}})
            self.answer(200, body.encode(), ("Cache-Control", "max-age=60"), ("X-Twice", "1"), ("X-Twice", "2"))
        elif path == "/busy":
            self.answer(503, b"busy", ("Retry-After", "5"))
        elif path == "/exact":
            self.answer(200, b"x" * LIMIT)
        elif path == "/big":
            self.answer(200, b"x" * (LIMIT + 1))
        elif path == "/huge-unannounced":  # no Content-Length: the body ends with the connection
            self.send_response(200)
            self.send_header("Connection", "close")
            self.end_headers()
            for _ in range(100):
                self.wfile.write(b"y" * 1000)
        elif path == "/slow":
            self.stop.wait(3)
            self.answer(200, b"late")
        elif path == "/drip":  # prompt headers, then a body that trickles in longer than the timeout
            self.send_response(200)
            self.send_header("Content-Length", "50")
            self.end_headers()
            for _ in range(50):
                if self.stop.wait(0.05):
                    return
                self.wfile.write(b"z")
                self.wfile.flush()
        elif path == "/to-jwks":
            self.answer(302, b"", ("Location", "/jwks"))
        elif path == "/to-file":
            self.answer(302, b"", ("Location", "file:///etc/passwd"))
        elif path == "/loop":
            self.answer(302, b"", ("Location", "/loop"))
        else:
            self.answer(404, b"no such page")

    def do_POST(self) -> None:  # noqa: N802 - http.server's name
        body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        echo = {"method": self.command, "type": self.headers["Content-Type"], "body": body.decode()}
        self.answer(200, json.dumps(echo).encode(), ("Content-Type", "application/json"))


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    stop = threading.Event()
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (Handler,), {"stop": stop}))
    httpd.daemon_threads = True
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    stop.set()
    httpd.shutdown()
    httpd.server_close()


class SyncTornado:
    """TornadoTransport driven from a test, each request on its own event loop."""

    def __init__(self, max_body: int) -> None:
        self.transport = TornadoTransport(max_body=max_body)

    def send(self, request: HttpRequest) -> HttpResponse:
        return asyncio.run(self.transport.send(request))


@pytest.fixture(params=["urllib", "tornado"])
def transport(request: pytest.FixtureRequest) -> Transport:
    return UrllibTransport(max_body=LIMIT) if request.param == "urllib" else SyncTornado(max_body=LIMIT)


def get(url: str, timeout: float = 5.0) -> HttpRequest:
    return HttpRequest("GET", url, (("Accept", "application/json"),), timeout=timeout)


def test_a_response_with_its_status_headers_and_body(transport, server):
    response = transport.send(build_key_set_request(server + "/jwks"))
    assert response.status == 200
    assert json.loads(response.body) == {"seen": {"accept": "application/json", "ua": "lti-publish"}}
    assert response.header("cache-control") == "max-age=60"
    assert [v for k, v in response.headers if k.lower() == "x-twice"] == ["1", "2"]


@pytest.mark.parametrize(("path", "status", "body"), [("/busy", 503, b"busy"), ("/missing", 404, b"no such page")])
def test_an_error_status_is_an_answer_not_a_failure(transport, server, path, status, body):
    response = transport.send(get(server + path))
    assert (response.status, response.body) == (status, body)
    if status == 503:
        assert response.header("Retry-After") == "5"


def test_a_post_sends_its_body(transport, server):
    request = HttpRequest(
        "POST", server + "/token", (("Content-Type", "application/x-www-form-urlencoded"),), b"grant_type=x"
    )
    assert json.loads(transport.send(request).body) == {
        "method": "POST",
        "type": "application/x-www-form-urlencoded",
        "body": "grant_type=x",
    }


def test_the_body_size_limit(transport, server):
    assert transport.send(get(server + "/exact")).body == b"x" * LIMIT
    for path in ("/big", "/huge-unannounced"):
        with pytest.raises(TransportError, match="over 1000 bytes"):
            transport.send(get(server + path))


@pytest.mark.parametrize("path", ["/slow", "/drip"])
def test_a_timeout_is_a_failure(transport, server, path):
    started = time.monotonic()
    with pytest.raises(TransportError) as caught:
        transport.send(get(server + path, timeout=0.5))
    assert time.monotonic() - started < 2.0
    assert (caught.value.status, caught.value.reason) == (502, "platform_unreachable")


def test_no_connection_is_a_failure(transport):
    with socket.socket() as probe:  # a port nobody listens on
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(TransportError):
        transport.send(get(f"http://127.0.0.1:{port}/jwks"))


def test_redirects_are_followed_only_to_http(transport, server):
    response = transport.send(build_key_set_request(server + "/to-jwks"))
    assert response.status == 200
    assert json.loads(response.body)["seen"]["accept"] == "application/json"
    with pytest.raises(TransportError, match="non-HTTP"):
        transport.send(get(server + "/to-file"))


def test_a_redirect_loop_ends(transport, server):
    try:
        response = transport.send(get(server + "/loop"))
    except TransportError:
        return
    assert response.status == 302  # urllib hands back the last redirect; either way it ends


@pytest.mark.parametrize("url", ["file:///etc/passwd", "ftp://moodle.example/jwks", "data:,{}", "/relative"])
def test_only_http_urls_are_fetched(transport, url):
    with pytest.raises(TransportError, match="non-HTTP"):
        transport.send(get(url))


def test_the_key_cache_on_the_urllib_driver(server):
    """The Django host's wiring, PlatformKeyCache(UrllibTransport()): a 503 or no connection is a 502."""
    cache = PlatformKeyCache(UrllibTransport())
    for url in (server + "/busy", "http://127.0.0.1:9/jwks"):
        with pytest.raises(ServiceUnavailable) as caught:
            cache.key_for(url, "kid")
        assert caught.value.reason == "platform_jwks_unreachable"
