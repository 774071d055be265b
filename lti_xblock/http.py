"""Outbound HTTP for the Django host (stdlib only: a launch never waits on more than one short GET)."""

from __future__ import annotations

import urllib.error
import urllib.request

from lti_core.lti13.jwks import FetchResult

TIMEOUT_SECONDS = 5.0
MAX_BODY = 1024 * 1024


def fetch(url: str) -> FetchResult:
    """GET ``url``; network failures raise OSError, which the key cache treats as "unreachable"."""
    if not url.startswith(("https://", "http://")):
        raise OSError(f"refusing to fetch a non-HTTP URL: {url[:80]}")
    headers = {"Accept": "application/json", "User-Agent": "lti-publish"}
    request = urllib.request.Request(url, headers=headers)  # noqa: S310 - scheme checked just above
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_SECONDS) as response:  # noqa: S310 - http(s) only, checked above
            return FetchResult(response.status, response.read(MAX_BODY), dict(response.headers.items()))
    except urllib.error.HTTPError as exc:
        return FetchResult(exc.code, b"", dict(exc.headers.items()) if exc.headers else {})
