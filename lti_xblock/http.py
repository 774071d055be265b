"""Outbound HTTP for the Django host: the synchronous driver of lti_core's HTTP port, on the stdlib.

A launch never waits on more than one short request, so a blocking ``urllib`` call is enough. The
contract is lti_core.http's: every HTTP response comes back as an ``HttpResponse`` (a 404 too), and
anything else (no connection, the request's timeout exceeded, a body over the limit) raises
``TransportError``; lti_core's ``SyncDriver`` follows redirects by the port's rules.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from typing import Any

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
