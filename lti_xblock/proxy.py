"""The public scheme and host behind trusted reverse proxies, for Django (the workbench demo and the LMS).

LTI 1.1 launches are verified against ``request.build_absolute_uri()`` and LTI 1.3 target links against the
request's own base URL: behind a TLS-terminating proxy those must be the public URL, and never a URL a
client names in an X-Forwarded-* header. ``TrustedProxyMiddleware`` rewrites ``request.META`` from the
proxies listed in ``LTI_PUBLISH["TRUSTED_PROXIES"]`` (IP addresses or CIDR networks), by lti_core's rule.
Django's own ``USE_X_FORWARDED_HOST`` and ``SECURE_PROXY_SSL_HEADER`` believe any client and are not needed.

Put it first in MIDDLEWARE, before anything that reads the host or the scheme (SecurityMiddleware,
CommonMiddleware) or rewrites REMOTE_ADDR from X-Forwarded-For. With an empty list (the default) it does
nothing: the site's own settings apply, as in an LMS that has its own.
"""

from __future__ import annotations

from collections.abc import Callable, MutableMapping
from typing import Any

from django.conf import settings
from django.core.exceptions import ImproperlyConfigured
from django.http import HttpRequest, HttpResponse

from lti_core.forwarded import PublicOrigin, ReceivedRequest, TrustedProxies, public_origin, trusted_networks

MIDDLEWARE = "lti_xblock.proxy.TrustedProxyMiddleware"


def trusted_proxies() -> TrustedProxies:
    """``LTI_PUBLISH["TRUSTED_PROXIES"]``, read at each request (tests and operators change settings)."""
    entries = getattr(settings, "LTI_PUBLISH", {}).get("TRUSTED_PROXIES", [])
    if isinstance(entries, str):  # a single address from an ENV token
        entries = [entries]
    try:
        return trusted_networks(entries)
    except ValueError as error:
        raise ImproperlyConfigured(f'LTI_PUBLISH["TRUSTED_PROXIES"]: {error}') from None


def received_request(meta: MutableMapping[str, Any]) -> ReceivedRequest:
    host = meta.get("HTTP_HOST") or f"{meta.get('SERVER_NAME', '')}:{meta.get('SERVER_PORT', '')}"
    return ReceivedRequest(
        scheme=str(meta.get("wsgi.url_scheme", "http")),
        host=str(host),
        peer=str(meta.get("REMOTE_ADDR", "")),
        forwarded_for=str(meta.get("HTTP_X_FORWARDED_FOR", "")),
        forwarded_proto=str(meta.get("HTTP_X_FORWARDED_PROTO", "")),
        forwarded_host=str(meta.get("HTTP_X_FORWARDED_HOST", "")),
    )


def apply(meta: MutableMapping[str, Any], origin: PublicOrigin) -> None:
    """Make Django see ``origin``: ``get_host()``, ``scheme``, ``is_secure()``, ``build_absolute_uri()``.

    The forwarded headers are replaced by the vetted values too, so that code reading them later (Django
    with ``USE_X_FORWARDED_HOST`` or ``SECURE_PROXY_SSL_HEADER`` set by the site) gets the same answer.
    """
    secure = origin.scheme == "https"
    meta["HTTP_HOST"] = meta["HTTP_X_FORWARDED_HOST"] = origin.host
    meta["wsgi.url_scheme"] = meta["HTTP_X_FORWARDED_PROTO"] = origin.scheme
    meta["HTTPS"] = "on" if secure else "off"
    ssl_header = getattr(settings, "SECURE_PROXY_SSL_HEADER", None)
    if ssl_header:
        name, secure_value = ssl_header
        meta[name] = secure_value if secure else ""


class TrustedProxyMiddleware:
    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        trusted = trusted_proxies()
        if trusted:
            apply(request.META, public_origin(received_request(request.META), trusted))
        return self.get_response(request)
