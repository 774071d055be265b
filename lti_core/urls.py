"""Which URLs belong to this tool: the guard against open redirects through target_link_uri."""

from __future__ import annotations

from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import SplitResult, unquote, urlencode, urlsplit, urlunsplit

_DEFAULT_PORTS = {"http": 80, "https": 443}


def _origin(parts: SplitResult) -> tuple[str, str, int] | None:
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname or parts.username or parts.password:
        return None
    try:
        port = parts.port or _DEFAULT_PORTS[parts.scheme]
    except ValueError:
        return None
    return parts.scheme, parts.hostname.lower(), port


@lru_cache(maxsize=64)
def _base(base_url: str) -> tuple[tuple[str, str, int] | None, str]:
    parts = urlsplit(base_url)
    return _origin(parts), parts.path.rstrip("/")


def belongs_to_tool(uri: str, tool_base_urls: Iterable[str]) -> bool:
    """True when ``uri`` is at or below one of the tool's base URLs (same scheme, host, port, path prefix)."""
    if "\\" in uri or any(ch in uri for ch in "\r\n\t"):
        return False
    parts = urlsplit(uri)
    origin = _origin(parts)
    if origin is None:
        return False
    path = parts.path or "/"
    # A browser resolves "." and ".." (also percent-encoded) before it requests the URL.
    if any(segment in (".", "..") for segment in unquote(path).split("/")):
        return False
    for base in tool_base_urls:
        base_origin, base_path = _base(base)
        if base_origin == origin and (path == base_path or path.startswith(base_path + "/")):
            return True
    return False


def add_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` appended to whatever query string it already has (Moodle's URLs carry one)."""
    parts = urlsplit(url)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
