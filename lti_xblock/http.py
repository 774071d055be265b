"""Outbound HTTP for the Django host: the synchronous driver of lti_core's HTTP port, on the stdlib.

A launch never waits on more than one short request, so a blocking ``urllib`` call is enough. The
contract is lti_core.http's: every HTTP response comes back as an ``HttpResponse`` (a 404 too), and
anything else (no connection, the request's timeout exceeded, a body over the limit) raises
``TransportError``; lti_core's ``SyncDriver`` follows redirects by the port's rules.
"""

from __future__ import annotations

import base64
import http.client
import select
import ssl
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Mapping
from typing import Any
from urllib.parse import unquote, urlsplit

from lti_core.http import MAX_RESPONSE_BODY, HttpRequest, HttpResponse, SyncDriver, TransportError

_CHUNK = 64 * 1024


class UrllibTransport(SyncDriver):
    """``lti_core.http.Transport`` on ``urllib.request``; ``max_body`` bytes at most per response."""

    def __init__(self, max_body: int = MAX_RESPONSE_BODY) -> None:
        self.max_body = max_body
        # Only the handlers one http(s) request needs: no file:, ftp: or data: URLs, and no redirect
        # handler: a redirect comes back as an answer, and lti_core's rules decide whether to follow it.
        self._opener = urllib.request.OpenerDirector()
        for handler in (
            urllib.request.ProxyHandler(),
            urllib.request.HTTPHandler(),
            urllib.request.HTTPSHandler(),
            urllib.request.HTTPDefaultErrorHandler(),
            urllib.request.HTTPErrorProcessor(),
        ):
            self._opener.add_handler(handler)

    def exchange(self, request: HttpRequest) -> HttpResponse:
        deadline = time.monotonic() + request.timeout
        outgoing = urllib.request.Request(  # noqa: S310 - http(s) only: SyncDriver checks every URL
            request.url,
            data=request.body or None,
            headers=dict(request.headers),
            method=request.method,
        )
        try:
            try:
                response = self._opener.open(outgoing, timeout=request.timeout)
            except urllib.error.HTTPError as error:  # a status urllib does not pass through: still an answer
                response = error
            with response:
                body = self._read(response, deadline)
                return HttpResponse(response.getcode(), tuple(response.headers.items()), body)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise TransportError(detail=f"{request.method} {request.url[:80]}: {exc!r}"[:300]) from exc

    def _read(self, response: Any, deadline: float) -> bytes:
        """The body, within the request's timeout and ``max_body``; a slow drip cannot hold a launch."""
        chunks: list[bytes] = []
        size = 0
        while True:
            if time.monotonic() > deadline:
                raise TransportError(detail="timed out reading the response body")
            # read1: what has arrived, so the deadline is checked between chunks of a slow body.
            chunk = response.read1(min(_CHUNK, self.max_body + 1 - size))
            if not chunk:
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_body:
                raise TransportError(detail=f"response body over {self.max_body} bytes")
            chunks.append(chunk)


#: (scheme, host, port): the connections one pool keeps for one origin.
Origin = tuple[str, str, int]
#: Seconds a connection may stay idle and be reused unchecked; after that, whether the server closed
#: it is checked first.
CHECK_IDLE_AFTER = 1.0
#: Errors on a kept-alive connection that mean the server closed it before reading the request:
#: nothing came back, not one byte of a response (``RemoteDisconnected``: an empty status line).
_STALE = (http.client.RemoteDisconnected, ConnectionResetError, ConnectionAbortedError, BrokenPipeError)


class _Connection(http.client.HTTPConnection):
    """An ``HTTPConnection`` that writes a request's head and body at once: one system call, and no
    wait for the server's delayed ACK between two small writes (Nagle's algorithm)."""

    _held: list[bytes] | None = None
    idle_since = 0.0  # time.monotonic() when it was last given back to the pool
    #: Set when the connection goes to an http proxy: requests name the whole URL, with these headers.
    via_proxy: dict[str, str] | None = None

    def send(self, data: Any) -> None:
        if self._held is not None and isinstance(data, bytes):
            self._held.append(data)
            return
        super().send(data)

    def send_request(self, method: str, target: str, body: bytes, headers: dict[str, str]) -> None:
        """``request``, written in one piece (connecting first if need be)."""
        self._held = []
        try:
            self.request(method, target, body=body or None, headers=headers)
            whole = b"".join(self._held)
        finally:
            self._held = None
        self.send(whole)


class _TlsConnection(_Connection, http.client.HTTPSConnection):
    """The same over TLS."""


class PooledTransport(SyncDriver):
    """``lti_core.http.Transport`` on ``http.client`` with keep-alive: a grade worker sends thousands of
    requests to a few platforms, and a TCP (and TLS) handshake per request would cost more than the
    request. Thread-safe: a connection serves one request at a time, and goes back to its origin's
    idle pool (at most ``max_idle`` kept per origin) once its response is read in full.

    TLS verifies certificates against the system's CAs (``ssl.create_default_context``) unless an
    ``ssl_context`` is given (tests: a loopback CA). A connection is dropped on any error, on a
    ``Connection: close`` answer, and when found closed by the server while idle. A request is sent
    again once, on a new connection, only when a reused connection failed before one byte of a
    response came back: the sign of a server that closed it while idle, before reading the request.

    Proxies as urllib finds them (``HTTPS_PROXY``, ``HTTP_PROXY``, ``NO_PROXY``), or ``proxies``
    (``{"https": "http://proxy:3128", "no": "localhost"}``): https through a CONNECT tunnel, TLS
    verified end to end with the platform; http sent to the proxy.
    """

    def __init__(
        self,
        max_body: int = MAX_RESPONSE_BODY,
        *,
        max_idle: int = 8,
        ssl_context: ssl.SSLContext | None = None,
        proxies: Mapping[str, str] | None = None,
    ) -> None:
        self.max_body = max_body
        self.max_idle = max(1, max_idle)
        self._ssl_context = ssl_context if ssl_context is not None else ssl.create_default_context()
        self._proxies = dict(urllib.request.getproxies() if proxies is None else proxies)
        self._idle: dict[Origin, list[_Connection]] = {}
        self._lock = threading.Lock()
        self._closed = False

    def close(self) -> None:
        """Close every idle connection; those in use close when their request ends."""
        with self._lock:
            self._closed = True
            idle, self._idle = self._idle, {}
        for connections in idle.values():
            for connection in connections:
                connection.close()

    def __enter__(self) -> PooledTransport:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def exchange(self, request: HttpRequest) -> HttpResponse:
        deadline = time.monotonic() + request.timeout
        try:
            origin, target = _origin_and_target(request.url)
            connection, reused = self._checkout(origin, request.timeout)
            try:
                return self._exchange_on(connection, origin, target, request, deadline)
            except _STALE:
                if not reused:
                    raise
            connection, _ = self._checkout(origin, _remaining(deadline), fresh=True)
            return self._exchange_on(connection, origin, target, request, deadline)
        except (OSError, http.client.HTTPException, ValueError) as exc:
            raise TransportError(detail=f"{request.method} {request.url[:80]}: {exc!r}"[:300]) from exc

    def _exchange_on(
        self, connection: _Connection, origin: Origin, target: str, request: HttpRequest, deadline: float
    ) -> HttpResponse:
        """One request on ``connection``: given back to the pool after a complete answer, else closed."""
        kept = False
        try:
            _fit_timeout(connection, deadline, request.timeout)
            headers = dict(request.headers)
            if connection.via_proxy is not None:
                target = request.url.split("#", 1)[0]  # absolute-form, as a proxy is asked
                headers.update(connection.via_proxy)
            connection.send_request(request.method, target, request.body, headers)
            _fit_timeout(connection, deadline, request.timeout)
            response = connection.getresponse()
            body = self._read(connection, response, deadline, request.timeout)
            kept = not response.will_close
            return HttpResponse(response.status, tuple(response.getheaders()), body)
        finally:
            if kept:
                self._checkin(origin, connection)
            else:
                connection.close()

    def _read(
        self, connection: _Connection, response: http.client.HTTPResponse, deadline: float, timeout: float
    ) -> bytes:
        """The body, within the request's timeout and ``max_body``; a slow drip cannot hold a worker."""
        chunks: list[bytes] = []
        size = 0
        while True:
            _fit_timeout(connection, deadline, timeout)
            # read1: what has arrived, so the deadline is checked between chunks of a slow body.
            chunk = response.read1(min(_CHUNK, self.max_body + 1 - size))
            if not chunk:
                # The whole body is read: closing the response (not the socket) frees the connection
                # for its next request (read1 leaves a Content-Length response open at its end).
                response.close()
                return b"".join(chunks)
            size += len(chunk)
            if size > self.max_body:
                raise TransportError(detail=f"response body over {self.max_body} bytes")
            chunks.append(chunk)

    def _checkout(self, origin: Origin, timeout: float, *, fresh: bool = False) -> tuple[_Connection, bool]:
        """A connection to ``origin`` and whether it served a request before: an idle one still open,
        or a new one (not connected yet: ``request`` connects, within the timeout)."""
        while not fresh:
            with self._lock:
                idle = self._idle.get(origin)
                connection = idle.pop() if idle else None
            if connection is None:
                break
            # A connection idle for a moment is not checked (a system call, and a wait for the GIL
            # under load): servers keep idle connections for seconds; the retry covers the rest.
            if time.monotonic() - connection.idle_since < CHECK_IDLE_AFTER or not _closed_by_peer(connection):
                return connection, True
            connection.close()
        scheme, host, port = origin
        proxy = self._proxy_for(scheme, host)
        if proxy is None:
            if scheme == "https":
                return _TlsConnection(host, port, timeout=timeout, context=self._ssl_context), False
            return _Connection(host, port, timeout=timeout), False
        proxy_host, proxy_port, authorization = proxy
        if scheme == "https":
            tunnel = _TlsConnection(proxy_host, proxy_port, timeout=timeout, context=self._ssl_context)
            tunnel.set_tunnel(host, port, headers=authorization)
            return tunnel, False
        proxied = _Connection(proxy_host, proxy_port, timeout=timeout)
        proxied.via_proxy = authorization
        return proxied, False

    def _proxy_for(self, scheme: str, host: str) -> tuple[str, int, dict[str, str]] | None:
        """The proxy for ``scheme`` to ``host`` (host, port, its Proxy-Authorization header), or None."""
        url = self._proxies.get(scheme)
        if not url or _bypassed(host, self._proxies.get("no", "")):
            return None
        parts = urlsplit(url if "://" in url else f"http://{url}")
        if not parts.hostname:
            raise ValueError(f"a proxy without a host: {scheme} proxy")
        authorization: dict[str, str] = {}
        if parts.username is not None:
            credentials = f"{unquote(parts.username)}:{unquote(parts.password or '')}".encode()
            authorization["Proxy-Authorization"] = "Basic " + base64.b64encode(credentials).decode("ascii")
        return parts.hostname, parts.port or 8080, authorization

    def _checkin(self, origin: Origin, connection: _Connection) -> None:
        connection.idle_since = time.monotonic()
        with self._lock:
            idle = self._idle.setdefault(origin, []) if not self._closed else None
            if idle is not None and len(idle) < self.max_idle:
                idle.append(connection)
                return
        connection.close()


def _bypassed(host: str, no_proxy: str) -> bool:
    """Whether ``host`` is one ``NO_PROXY`` names (``*``, the host, or a domain above it), as urllib reads it."""
    names = [name.strip().lstrip(".").lower() for name in no_proxy.split(",") if name.strip()]
    host = host.lower()
    return any(name == "*" or host == name or host.endswith("." + name) for name in names)


def _origin_and_target(url: str) -> tuple[Origin, str]:
    """The URL's (scheme, host, port) and the request target (path and query) sent to it."""
    parts = urlsplit(url)
    scheme = parts.scheme.lower()
    if scheme not in ("http", "https") or not parts.hostname:
        raise ValueError(f"not an http(s) URL with a host: {url[:80]}")
    port = parts.port or (443 if scheme == "https" else 80)
    target = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
    return (scheme, parts.hostname, port), target


def _remaining(deadline: float) -> float:
    left = deadline - time.monotonic()
    if left <= 0:
        raise TransportError(detail="timed out")
    return left


def _fit_timeout(connection: _Connection, deadline: float, timeout: float) -> None:
    """Give the next connect, write or read on ``connection`` what is left of the request's time.

    Within a slack (a tenth of the timeout, at most 0.25 s) the socket's timeout is left as it is:
    setting it is a system call, and a fast request on a kept connection then makes none.
    """
    left = _remaining(deadline)
    current = connection.sock.gettimeout() if connection.sock is not None else connection.timeout
    slack = min(timeout / 10, 0.25)
    if current is not None and left - slack <= current <= left + slack:
        return
    connection.timeout = left
    if connection.sock is not None:
        connection.sock.settimeout(left)


def _closed_by_peer(connection: _Connection) -> bool:
    """Whether an idle connection has something to read: the server's end of it (or bytes no request
    asked for); either way it cannot carry another request."""
    sock = connection.sock
    if sock is None:
        return True
    try:
        if hasattr(select, "poll"):  # poll: a process with many files open has descriptors past select's limit
            poller = select.poll()
            poller.register(sock, select.POLLIN)
            return bool(poller.poll(0))
        readable, _, _ = select.select([sock], [], [], 0)
    except (OSError, ValueError):
        return True
    return bool(readable)
