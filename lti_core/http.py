"""The sans-IO HTTP port: what lti_core asks of a host when it needs to talk to a platform.

lti_core never opens a socket. A client in the core (the platform key cache; later the token, AGS,
NRPS and registration clients) builds an ``HttpRequest``, the host sends it with its own driver, and
the core interprets the ``HttpResponse``. Both are plain, immutable data, so the core's decisions are
tested without a network and the same code serves a synchronous host (Django: ``Transport``) and an
asynchronous one (JupyterHub's tornado loop: ``AsyncTransport``).

The contract of a driver:

* It returns an ``HttpResponse`` for every HTTP response it received, whatever its status (a 404 or a
  503 is an answer, not a failure), with the body of at most ``MAX_RESPONSE_BODY`` bytes.
* When no usable response came back (refused, reset, DNS failure, ``timeout`` exceeded, a body over
  ``MAX_RESPONSE_BODY``, a redirect to a scheme other than http(s) or from https to http), it raises
  ``TransportError``, a ``ServiceUnavailable``: an unhandled one becomes the host's 502 page. It never
  returns None and never lets ``OSError`` or its HTTP library's exceptions escape.
* It only fetches ``http://`` and ``https://`` URLs (others: ``TransportError``).
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Protocol
from urllib.parse import urljoin

from lti_core.errors import ServiceUnavailable
from lti_core.i18n import N_

#: Header fields as (name, value) pairs, in order; a name may repeat (``Link``, ``Set-Cookie``).
Headers = tuple[tuple[str, str], ...]

#: Seconds a driver may spend on one request, from connecting to the last byte of the body.
DEFAULT_TIMEOUT = 5.0
#: The largest response body a driver accepts; a larger one is a ``TransportError``.
MAX_RESPONSE_BODY = 1024 * 1024
USER_AGENT = "lti-publish"
HTTP_SCHEMES = ("http://", "https://")
#: Redirects followed per request; one more is a ``TransportError``.
MAX_REDIRECTS = 5
_REDIRECTS = frozenset({301, 302, 303, 307, 308})


class TransportError(ServiceUnavailable):
    """No usable HTTP response: the platform could not be reached, or answered too slowly or too much (502)."""

    reason = "platform_unreachable"
    message = N_("The platform could not be reached. Please try again in a moment.")


def header_value(headers: Iterable[tuple[str, str]], name: str) -> str | None:
    """The first value of the header ``name`` (case-insensitive), or None."""
    lowered = name.lower()
    return next((value for key, value in headers if key.lower() == lowered), None)


@dataclass(frozen=True)
class HttpRequest:
    """One HTTP request a core client wants sent."""

    method: str
    url: str
    headers: Headers = ()
    body: bytes = b""
    timeout: float = DEFAULT_TIMEOUT

    def header(self, name: str) -> str | None:
        """The first value of the header ``name`` (case-insensitive), or None."""
        return header_value(self.headers, name)


@dataclass(frozen=True)
class HttpResponse:
    """The response a driver received, whatever its status."""

    status: int
    headers: Headers = ()
    body: bytes = b""

    def header(self, name: str) -> str | None:
        """The first value of the header ``name`` (case-insensitive), or None."""
        return header_value(self.headers, name)


class Transport(Protocol):
    """A synchronous driver of the port (the Django host's)."""

    def send(self, request: HttpRequest) -> HttpResponse:
        """The response to ``request``; ``TransportError`` when there is none (see the module's contract)."""
        ...


class AsyncTransport(Protocol):
    """An asynchronous driver of the port (the hub's): the same contract, awaited."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        """The response to ``request``; ``TransportError`` when there is none (see the module's contract)."""
        ...


def check_url(request: HttpRequest) -> HttpRequest:
    """``request``, if it may be sent: only http(s) URLs are ever fetched."""
    if not request.url.lower().startswith(HTTP_SCHEMES):
        raise TransportError(detail=f"refusing a non-HTTP URL: {request.url[:80]}")
    return request


def redirected(request: HttpRequest, response: HttpResponse) -> HttpRequest | None:
    """The request a redirect ``response`` leads to, or None when it is no redirect.

    Only to http(s) and never from https down to http (``TransportError``). 307 and 308 repeat the
    request, body included; the others become a GET without the body, as browsers and urllib do.
    """
    location = response.header("Location")
    if response.status not in _REDIRECTS or location is None:
        return None
    target = urljoin(request.url, location)
    if not target.lower().startswith(HTTP_SCHEMES):
        raise TransportError(detail=f"redirect to a non-HTTP URL: {target[:80]}")
    if request.url.lower().startswith("https://") and not target.lower().startswith("https://"):
        raise TransportError(detail=f"redirect from https to {target[:80]}")
    if response.status in (307, 308):
        return replace(request, url=target)
    kept = tuple((k, v) for k, v in request.headers if k.lower() not in ("content-type", "content-length"))
    return replace(request, method="HEAD" if request.method == "HEAD" else "GET", url=target, headers=kept, body=b"")


def _too_many_redirects(request: HttpRequest) -> TransportError:
    return TransportError(detail=f"more than {MAX_REDIRECTS} redirects from {request.url[:80]}")


class SyncDriver(ABC):
    """A ``Transport`` from a driver that sends one request and returns what came back, redirects
    included: the URL and redirect rules of the port are applied here, the same for every driver."""

    def send(self, request: HttpRequest) -> HttpResponse:
        for _ in range(MAX_REDIRECTS + 1):
            response = self.exchange(check_url(request))
            follow = redirected(request, response)
            if follow is None:
                return response
            request = follow
        raise _too_many_redirects(request)

    @abstractmethod
    def exchange(self, request: HttpRequest) -> HttpResponse:
        """One request, one response (a redirect is returned, not followed); see the module's contract."""


class AsyncDriver(ABC):
    """The same as ``SyncDriver`` for an asynchronous driver: an ``AsyncTransport``."""

    async def send(self, request: HttpRequest) -> HttpResponse:
        for _ in range(MAX_REDIRECTS + 1):
            response = await self.exchange(check_url(request))
            follow = redirected(request, response)
            if follow is None:
                return response
            request = follow
        raise _too_many_redirects(request)

    @abstractmethod
    async def exchange(self, request: HttpRequest) -> HttpResponse:
        """One request, one response (a redirect is returned, not followed); see the module's contract."""
