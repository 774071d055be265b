"""Outbound HTTP for the hub, on tornado's async client: nothing here ever blocks the hub's event loop.

The platform key cache of lti_core is sans-IO. ``PlatformKeyLoader`` drives it the asynchronous way:
lti_core says which key set a launch needs, this module fetches it while the loop serves other
requests, and one fetch per key set URL is in flight at a time, however many launches wait on it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

from tornado.httpclient import AsyncHTTPClient, HTTPClientError, HTTPRequest

from lti_core.lti13.jwks import FetchResult, PlatformKeyCache
from lti_core.lti13.launch import LaunchValidator

TIMEOUT_SECONDS = 5.0
MAX_BODY = 1024 * 1024

Fetch = Callable[[str], Awaitable[FetchResult | None]]


async def fetch(url: str, timeout: float = TIMEOUT_SECONDS) -> FetchResult | None:
    """GET ``url``: the response, or None when the platform could not be reached at all."""
    if not url.startswith(("https://", "http://")):
        return None
    request = HTTPRequest(
        url,
        headers={"Accept": "application/json", "User-Agent": "lti-publish"},
        connect_timeout=timeout,
        request_timeout=timeout,
        follow_redirects=True,
    )
    try:
        response = await AsyncHTTPClient(max_body_size=MAX_BODY).fetch(request, raise_error=False)
    except (TimeoutError, OSError, HTTPClientError):
        return None
    if response.code == 599:  # tornado's code for "no HTTP response" (refused, reset, timed out)
        return None
    return FetchResult(response.code, response.body or b"", dict(response.headers.get_all()))


class PlatformKeyLoader:
    """Fills a ``PlatformKeyCache`` before ``LaunchValidator.validate`` needs it, without blocking."""

    def __init__(self, keys: PlatformKeyCache, fetcher: Fetch = fetch) -> None:
        self.keys = keys
        self._fetch = fetcher
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
            result = await self._fetch(url)
            self._generation[url] = generation + 1
            self.keys.accept(url, result)
