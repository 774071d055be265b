"""Cookies that survive in the platform's frame: ``Partitioned`` on every ``SameSite=None; Secure`` one.

A launched session lives in the platform's cross-site frame (Moodle's "Embed", Canvas, Open edX).
Over HTTPS its cookies are ``SameSite=None; Secure`` (the settings do that); browsers that block
third-party cookies still keep them when they are also ``Partitioned`` (CHIPS): kept per top-level
site, so the platform's frame has its own jar. Django (and Python before 3.14) cannot write that
attribute, so this middleware rewrites the Set-Cookie lines on the way out. Cookies that are not
``SameSite=None; Secure`` are left alone: browsers refuse ``Partitioned`` without ``Secure``.
"""

from __future__ import annotations

from collections.abc import Callable, Container
from http.cookies import Morsel

from django.http import HttpRequest, HttpResponseBase

from lti_core.cookies import partitioned_cookie


class HeaderMorsel(Morsel[str]):
    """A cookie written as the Set-Cookie value given (Python's Morsel knows no ``Partitioned``)."""

    def __init__(self, name: str, header: str) -> None:
        super().__init__()
        self.set(name, "", "")
        self._header = header

    def OutputString(self, attrs: Container[str] | None = None) -> str:  # noqa: N802 - the stdlib's name
        return self._header


def set_cookie_header(response: HttpResponseBase, name: str, header: str) -> None:
    """Set cookie ``name`` on ``response`` as the Set-Cookie value ``header`` (lti_core's)."""
    dict.__setitem__(response.cookies, name, HeaderMorsel(name, header))


class PartitionedCookieMiddleware:
    """Put it first in MIDDLEWARE, so it sees the cookies every other middleware set."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponseBase]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponseBase:
        response = self.get_response(request)
        if not request.is_secure():
            return response  # browsers refuse Partitioned (and Secure) cookies over plain HTTP
        for name, morsel in list(response.cookies.items()):
            header = morsel.OutputString()
            if not isinstance(morsel, HeaderMorsel) and partitioned_cookie(header) != header:
                set_cookie_header(response, name, partitioned_cookie(header))
        return response
