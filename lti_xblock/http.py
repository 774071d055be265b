"""Outbound HTTP for the Django host: the synchronous driver of lti_core's HTTP port, on the stdlib.

A launch never waits on more than one short request, so a blocking ``urllib`` call is enough. The
contract is lti_core.http's: every HTTP response comes back as an ``HttpResponse`` (a 404 too), and
anything else (no connection, the request's timeout exceeded, a body over the limit, a redirect to a
scheme other than http(s) or from https down to http) raises ``TransportError``.
"""

from __future__ import annotations

import http.client
import time
import urllib.error
import urllib.request
from typing import IO, Any
from urllib.parse import urljoin

from lti_core.http import HTTP_SCHEMES, MAX_RESPONSE_BODY, HttpRequest, HttpResponse, TransportError

MAX_REDIRECTS = 5
_CHUNK = 64 * 1024


class _RedirectHandler(urllib.request.HTTPRedirectHandler):
    """Follows redirects only to http(s), never from https down to http, and at most ``MAX_REDIRECTS``."""

    max_redirections = MAX_REDIRECTS

    def http_error_302(self, req: urllib.request.Request, fp: IO[bytes], code: int, msg: str, headers: Any) -> Any:
        location = headers.get("Location") or headers.get("URI")
        if location:
            # Checked here, before urllib's own check, which would hand the redirect back as the response.
            target = urljoin(req.full_url, location)
            if not target.lower().startswith(HTTP_SCHEMES):
                fp.close()
                raise TransportError(detail=f"redirect to a non-HTTP URL: {target[:80]}")
            if req.full_url.lower().startswith("https://") and not target.lower().startswith("https://"):
                fp.close()
                raise TransportError(detail=f"redirect from https to {target[:80]}")
        return super().http_error_302(req, fp, code, msg, headers)

    http_error_301 = http_error_303 = http_error_307 = http_error_308 = http_error_302


class UrllibTransport:
    """``lti_core.http.Transport`` on ``urllib.request``; ``max_body`` bytes at most per response."""

    def __init__(self, max_body: int = MAX_RESPONSE_BODY) -> None:
        self.max_body = max_body
        # Only the handlers an http(s) GET or POST needs: no file:, ftp: or data: URLs, even after a redirect.
        self._opener = urllib.request.OpenerDirector()
        for handler in (
            urllib.request.ProxyHandler(),
            urllib.request.HTTPHandler(),
            urllib.request.HTTPSHandler(),
            urllib.request.HTTPDefaultErrorHandler(),
            _RedirectHandler(),
            urllib.request.HTTPErrorProcessor(),
        ):
            self._opener.add_handler(handler)

    def send(self, request: HttpRequest) -> HttpResponse:
        if not request.url.lower().startswith(HTTP_SCHEMES):
            raise TransportError(detail=f"refusing a non-HTTP URL: {request.url[:80]}")
        deadline = time.monotonic() + request.timeout
        outgoing = urllib.request.Request(  # noqa: S310 - http(s) only, checked above and on redirects
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
