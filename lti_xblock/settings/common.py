"""Settings the LMS merges in (edx-django-utils plugin settings)."""

from __future__ import annotations

from typing import Any

# lti_xblock.proxy.MIDDLEWARE; not imported: settings hooks run before Django is set up.
PROXY_MIDDLEWARE = "lti_xblock.proxy.TrustedProxyMiddleware"


def plugin_settings(settings: Any) -> None:
    # TRUSTED_PROXIES: reverse proxies (IPs or CIDR networks) whose X-Forwarded-* headers give the public URL
    # that LTI 1.1 signatures and LTI 1.3 target links are checked against. Empty: the LMS's own view of the
    # request (its ALLOWED_HOSTS, and its USE_X_FORWARDED_HOST/SECURE_PROXY_SSL_HEADER if it sets them: this
    # plugin never does, they believe any client).
    # APPROVE_REGISTRATIONS: platforms registered by LTI Dynamic Registration wait for an admin's
    # `lti-publish registrations approve` before they can launch (False: they can launch at once).
    defaults = {"HOST": "openedx", "TOOL_BASE_URLS": [], "TRUSTED_PROXIES": [], "APPROVE_REGISTRATIONS": True}
    settings.LTI_PUBLISH = {**defaults, **getattr(settings, "LTI_PUBLISH", {})}
    # First, before anything that reads the host or scheme or rewrites REMOTE_ADDR from X-Forwarded-For;
    # with an empty TRUSTED_PROXIES it changes nothing.
    middleware = list(getattr(settings, "MIDDLEWARE", []))
    if PROXY_MIDDLEWARE not in middleware:
        settings.MIDDLEWARE = [PROXY_MIDDLEWARE, *middleware]
