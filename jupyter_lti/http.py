"""Outbound HTTP for the hub, on tornado's async client: nothing here ever blocks the hub's event loop.

``TornadoTransport`` is the asynchronous driver of lti_core's HTTP port (``lti_core.http``): every
HTTP response comes back as an ``HttpResponse``, anything else raises ``TransportError``.

The platform key cache of lti_core is sans-IO. ``PlatformKeyLoader`` drives it the asynchronous way:
lti_core says which key set a launch needs, this module fetches it while the loop serves other
requests, and one fetch per key set URL is in flight at a time, however many launches wait on it.
"""

from __future__ import annotations

import asyncio

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from lti_core.http import MAX_RESPONSE_BODY, AsyncDriver, AsyncTransport, HttpRequest, HttpResponse, TransportError
from lti_core.lti13.jwks import PlatformKeyCache, build_key_set_request
from lti_core.lti13.launch import LaunchValidator


class _BodyTooLarge(Exception):
    """Raised from the streaming callback: stops reading a response over the limit."""


class TornadoTransport(AsyncDriver):
    """``lti_core.http.AsyncTransport`` on tornado's ``AsyncHTTPClient``; ``max_body`` bytes at most per response.

    The size limit is counted here, not left to the client's ``max_body_size``: the hub shares one
    ``AsyncHTTPClient`` per loop (possibly curl's), created with settings this module does not choose.
    """

    def __init__(self, max_body: int = MAX_RESPONSE_BODY) -> None:
        self.max_body = max_body

    async def exchange(self, request: HttpRequest) -> HttpResponse:
        chunks: list[bytes] = []
        size = 0

        def collect(chunk: bytes) -> None:
            nonlocal size
            size += len(chunk)
            if size > self.max_body:
                raise _BodyTooLarge
            chunks.append(chunk)

        outgoing = HTTPRequest(
            request.url,
            method=request.method,
            headers=dict(request.headers),
            body=request.body if request.body or request.method not in ("GET", "HEAD", "DELETE", "OPTIONS") else None,
            connect_timeout=request.timeout,
            request_timeout=request.timeout,
            follow_redirects=False,
            streaming_callback=collect,
        )
        try:
            response = await AsyncHTTPClient().fetch(outgoing, raise_error=False)
        except (_BodyTooLarge, TimeoutError, OSError, HTTPClientError, ValueError) as exc:
            # tornado's simple client logs the callback's exception and closes the connection (a 599).
            if size > self.max_body:
                raise TransportError(detail=f"response body over {self.max_body} bytes") from exc
            raise TransportError(detail=f"{request.method} {request.url[:80]}: {exc!r}"[:300]) from exc
        if size > self.max_body:  # a client that swallowed the callback's exception
            raise TransportError(detail=f"response body over {self.max_body} bytes")
        if response.code == 599:  # tornado's code for "no HTTP response" (refused, reset, timed out)
            raise TransportError(detail=f"{request.method} {request.url[:80]}: {response.error!r}"[:300])
        return HttpResponse(response.code, tuple(response.headers.get_all()), b"".join(chunks))


class PlatformKeyLoader:
    """Fills a ``PlatformKeyCache`` before ``LaunchValidator.validate`` needs it, without blocking."""

    def __init__(self, keys: PlatformKeyCache, transport: AsyncTransport | None = None) -> None:
        self.keys = keys
        self._transport: AsyncTransport = transport if transport is not None else TornadoTransport()
        self._locks: dict[str, asyncio.Lock] = {}
        # Bumped by every completed fetch of a URL: a launch that waited on the lock while another
        # one fetched the same key set uses that result instead of fetching again.
        self._generation: dict[str, int] = {}

    async def prepare(self, validator: LaunchValidator, id_token: str, state: str) -> None:
        """Fetch the key set ``validator`` needs for this launch, if it is not cached.

        ``key_set_to_fetch`` reads the store: the hub calls it in its store threads, then ``load``.
        """
        await self.load(validator.key_set_to_fetch(id_token, state))

    async def load(self, wanted: tuple[str, str] | None) -> None:
        """Fetch ``(key set URL, kid)``, as ``LaunchValidator.key_set_to_fetch`` named it (None: nothing)."""
        if wanted is None:
            return  # steady state: the key is cached (or validate will refuse the launch anyway)
        url, kid = wanted
        generation = self._generation.get(url, 0)
        async with self._locks.setdefault(url, asyncio.Lock()):
            if self._generation.get(url, 0) != generation or self.keys.cached_key(url, kid) is not None:
                return
            try:
                result: HttpResponse | None = await self._transport.send(build_key_set_request(url))
            except TransportError:
                result = None
            self._generation[url] = generation + 1
            self.keys.accept(url, result)
