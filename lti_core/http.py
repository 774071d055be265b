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

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Protocol

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
