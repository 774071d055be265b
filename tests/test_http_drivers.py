"""The hosts' drivers of lti_core's HTTP port, against a real HTTP server on loopback.

The same contract for all: every HTTP response (a 503 too) is an ``HttpResponse``; no connection, a
timeout, a body over the limit, a redirect to another scheme or down from https is a ``TransportError``.
``UrllibTransport`` and ``PooledTransport`` (keep-alive, for the grade workers) are the Django host's
(synchronous), ``TornadoTransport`` the hub's (asynchronous). The server speaks HTTP/1.1 and counts
its connections, so keep-alive is measured where it happens.
"""

from __future__ import annotations

import asyncio
import base64
import json
import socket
import socketserver
import ssl
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import lti_xblock.http
from jupyter_lti.http import TornadoTransport
from lti_core.errors import ServiceUnavailable
from lti_core.http import HttpRequest, HttpResponse, Transport, TransportError
from lti_core.lti13.jwks import PlatformKeyCache, build_key_set_request
from lti_xblock.http import PooledTransport, UrllibTransport
from tests.browser.tls import make_certificate, server_context

LIMIT = 1000  # the drivers' body limit in these tests


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, unless an answer says Connection: close
    disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms wait for the client's ACK
    stop: threading.Event
    state: Server

    def setup(self) -> None:
        super().setup()
        self.number = self.state.accepted()
        self.on_connection = 0

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
        self.on_connection += 1
        self.state.served.append((path, self.number))
        if path == "/close":
            self.answer(200, b"closing", ("Connection", "close"))
        elif path == "/drop" or (path == "/drop-when-reused" and self.on_connection > 1):
            self.close_connection = True  # closed without a byte of an answer, as a server timing out an idle one
        elif path == "/drop-when-reused":
            self.answer(200, b"first")
        elif path == "/idle-close":  # kept alive by its headers, then closed: a server's idle timeout
            self.answer(200, b"bye")
            self.close_connection = True
        elif path == "/jwks":
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


class Server:
    """A loopback HTTP/1.1 server (TLS with ``tls``): its URL, connections accepted, requests served."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.stop = threading.Event()
        self.connections = 0
        self.served: list[tuple[str, int]] = []  # (path, the number of the connection it came on)
        self._lock = threading.Lock()
        attributes = {"stop": self.stop, "state": self}
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), type("H", (Handler,), attributes))
        self.httpd.daemon_threads = True
        if tls is not None:
            self.httpd.socket = tls.wrap_socket(self.httpd.socket, server_side=True)
        scheme = "https" if tls is not None else "http"
        self.url = f"{scheme}://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def accepted(self) -> int:
        """Count a new connection: its number."""
        with self._lock:
            self.connections += 1
            return self.connections

    def close(self) -> None:
        self.stop.set()
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture(scope="module")
def http_server() -> Iterator[Server]:
    running = Server()
    yield running
    running.close()


@pytest.fixture(scope="module")
def server(http_server: Server) -> str:
    return http_server.url


@pytest.fixture(scope="module")
def certificate(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    return make_certificate(tmp_path_factory.mktemp("tls"))


@pytest.fixture(scope="module")
def https_server(certificate: tuple[Path, Path]) -> Iterator[Server]:
    running = Server(server_context(*certificate))
    yield running
    running.close()


class SyncTornado:
    """TornadoTransport driven from a test, each request on its own event loop."""

    def __init__(self, max_body: int) -> None:
        self.transport = TornadoTransport(max_body=max_body)

    def send(self, request: HttpRequest) -> HttpResponse:
        return asyncio.run(self.transport.send(request))


@pytest.fixture(params=["urllib", "pooled", "tornado"])
def transport(request: pytest.FixtureRequest) -> Iterator[Transport]:
    if request.param == "pooled":
        with PooledTransport(max_body=LIMIT) as pooled:
            yield pooled
    else:
        yield UrllibTransport(max_body=LIMIT) if request.param == "urllib" else SyncTornado(max_body=LIMIT)


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


@pytest.mark.parametrize("driver", [UrllibTransport, PooledTransport])
def test_the_key_cache_on_the_django_hosts_drivers(server, driver):
    """The Django host's wiring, PlatformKeyCache(UrllibTransport()): a 503 or no connection is a 502."""
    cache = PlatformKeyCache(driver())
    for url in (server + "/busy", "http://127.0.0.1:9/jwks"):
        with pytest.raises(ServiceUnavailable) as caught:
            cache.key_for(url, "kid")
        assert caught.value.reason == "platform_jwks_unreachable"


# -- PooledTransport: keep-alive, TLS, threads ------------------------------------------------------


def test_the_pooled_driver_keeps_connections_alive(http_server):
    before = http_server.connections
    with PooledTransport() as pooled:
        for _ in range(20):
            assert pooled.send(get(http_server.url + "/jwks")).status == 200
        assert pooled.send(HttpRequest("POST", http_server.url + "/token", body=b"x")).status == 200
    assert http_server.connections - before == 1


def test_urllib_opens_a_connection_per_request(http_server):
    before = http_server.connections
    urllib = UrllibTransport()
    for _ in range(3):
        urllib.send(get(http_server.url + "/jwks"))
    assert http_server.connections - before == 3


def test_connection_close_and_a_failure_drop_the_connection(http_server):
    before = http_server.connections
    with PooledTransport(max_body=LIMIT) as pooled:
        assert pooled.send(get(http_server.url + "/close")).body == b"closing"
        assert pooled.send(get(http_server.url + "/jwks")).status == 200  # a new connection
        with pytest.raises(TransportError):
            pooled.send(get(http_server.url + "/big"))  # over the limit: the rest of the body is unread
        assert pooled.send(get(http_server.url + "/jwks")).status == 200  # so a new connection again
        with pytest.raises(TransportError):
            pooled.send(get(http_server.url + "/drip", timeout=0.3))
        assert pooled.send(get(http_server.url + "/exact")).body == b"x" * LIMIT
        assert pooled.send(get(http_server.url + "/jwks")).status == 200  # kept from /exact
    assert http_server.connections - before == 4


def test_a_reused_connection_closed_unanswered_is_tried_once_more(http_server):
    with PooledTransport() as pooled:
        assert pooled.send(get(http_server.url + "/drop-when-reused")).body == b"first"
        # The kept connection is closed by the server without a byte of an answer: sent again, on a new one.
        del http_server.served[:]
        assert pooled.send(get(http_server.url + "/drop-when-reused")).body == b"first"
        (_, kept), (_, fresh) = http_server.served
        assert fresh == kept + 1
    # On a new connection that is a failure, never sent twice.
    del http_server.served[:]
    with PooledTransport() as pooled, pytest.raises(TransportError, match="RemoteDisconnected"):
        pooled.send(get(http_server.url + "/drop"))
    assert [path for path, _ in http_server.served] == ["/drop"]


@pytest.mark.parametrize("check_after", [0.0, 60.0])  # checked before reuse; or found closed, and sent again
def test_a_connection_the_server_closed_while_idle_is_not_reused(http_server, check_after, monkeypatch):
    monkeypatch.setattr(lti_xblock.http, "CHECK_IDLE_AFTER", check_after)
    with PooledTransport() as pooled:
        before = http_server.connections
        assert pooled.send(get(http_server.url + "/idle-close")).body == b"bye"
        time.sleep(0.05)  # the server's close reaches the idle connection
        del http_server.served[:]
        assert pooled.send(get(http_server.url + "/jwks")).status == 200
        assert [path for path, _ in http_server.served] == ["/jwks"]
    assert http_server.connections - before == 2


def test_the_pooled_driver_across_threads(http_server):
    before = http_server.connections
    with PooledTransport(max_idle=8) as pooled:

        def post(n: int) -> str:
            request = HttpRequest("POST", http_server.url + "/echo", (("Content-Type", "text/plain"),), str(n).encode())
            return str(json.loads(pooled.send(request).body)["body"])

        with ThreadPoolExecutor(8) as threads:
            answers = list(threads.map(post, range(400)))
    assert answers == [str(n) for n in range(400)]
    assert http_server.connections - before <= 8


def test_tls_with_certificate_verification(https_server, certificate):
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    before = https_server.connections
    with PooledTransport(ssl_context=trusted) as pooled:
        for host in ("127.0.0.1", "127.0.0.1", "localhost"):
            response = pooled.send(build_key_set_request(https_server.url.replace("127.0.0.1", host) + "/jwks"))
            assert response.status == 200
    assert https_server.connections - before == 2  # one per origin: the address, and localhost


def test_tls_refused_without_the_ca(https_server):
    with PooledTransport() as pooled, pytest.raises(TransportError, match="CERTIFICATE_VERIFY_FAILED"):
        pooled.send(get(https_server.url + "/jwks"))


def test_no_request_after_close_keeps_a_connection(http_server):
    pooled = PooledTransport()
    pooled.send(get(http_server.url + "/jwks"))
    pooled.close()
    assert pooled._idle == {}  # noqa: SLF001 - what close let go
    assert pooled.send(get(http_server.url + "/jwks")).status == 200  # still usable, unpooled
    assert pooled._idle == {}  # noqa: SLF001


# -- PooledTransport through a proxy -----------------------------------------------------------------


class Proxy(socketserver.ThreadingTCPServer):
    """A forward proxy on loopback: CONNECT tunnels (https), and absolute-form http requests, which it
    answers itself with what it was asked. ``asked`` keeps each request line and Proxy-Authorization."""

    daemon_threads = True

    def __init__(self) -> None:
        self.asked: list[tuple[str, str | None]] = []
        super().__init__(("127.0.0.1", 0), ProxyHandler)
        threading.Thread(target=self.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://user:p%40ss@127.0.0.1:{self.server_address[1]}"


class ProxyHandler(socketserver.StreamRequestHandler):
    server: Proxy

    def handle(self) -> None:
        while line := self.rfile.readline().decode().strip():
            head = dict(h.split(": ", 1) for h in iter(lambda: self.rfile.readline().decode().strip(), ""))
            self.server.asked.append((line, head.get("Proxy-Authorization")))
            method, target, _ = line.split()
            if method != "CONNECT":
                body = target.encode()
                self.wfile.write(b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n%s" % (len(body), body))
                continue
            host, port = target.rsplit(":", 1)
            with socket.create_connection((host, int(port))) as upstream:
                self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self.wfile.flush()
                pipe = threading.Thread(target=_pipe, args=(upstream, self.connection), daemon=True)
                pipe.start()
                _pipe(self.connection, upstream)
                pipe.join(5)
            return


def _pipe(source: socket.socket, sink: socket.socket) -> None:
    try:
        while data := source.recv(65536):
            sink.sendall(data)
        sink.shutdown(socket.SHUT_WR)
    except OSError:
        pass


@pytest.fixture(scope="module")
def proxy_server() -> Iterator[Proxy]:
    running = Proxy()
    yield running
    running.shutdown()
    running.server_close()


@pytest.fixture
def proxy(proxy_server: Proxy) -> Proxy:
    proxy_server.asked.clear()
    return proxy_server


def test_https_through_a_proxy_tunnel(https_server, certificate, proxy):
    trusted = ssl.create_default_context(cafile=str(certificate[0]))
    with PooledTransport(ssl_context=trusted, proxies={"https": proxy.url}) as pooled:
        for _ in range(3):
            assert pooled.send(build_key_set_request(https_server.url + "/jwks")).status == 200
    port = https_server.url.rsplit(":", 1)[1]
    credentials = "Basic " + base64.b64encode(b"user:p@ss").decode()
    assert proxy.asked == [(f"CONNECT 127.0.0.1:{port} HTTP/1.0", credentials)]  # one tunnel, kept alive
    with PooledTransport(proxies={"https": proxy.url}) as pooled, pytest.raises(TransportError, match="CERTIFICATE"):
        pooled.send(get(https_server.url + "/jwks"))  # the platform's certificate is still verified


def test_http_through_a_proxy_and_no_proxy(http_server, proxy):
    with PooledTransport(proxies={"http": proxy.url}) as pooled:
        assert pooled.send(get(http_server.url + "/jwks?x=1")).body == f"{http_server.url}/jwks?x=1".encode()
    assert proxy.asked[0][0].startswith(f"GET {http_server.url}/jwks?x=1 HTTP/1.1")
    with PooledTransport(proxies={"http": proxy.url, "no": "example.org, 127.0.0.1"}) as pooled:
        assert json.loads(pooled.send(get(http_server.url + "/jwks")).body)["seen"]  # straight to the server
    assert len(proxy.asked) == 1
