"""Which URLs belong to this tool: the guards against open redirects through target_link_uri and landing places."""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from functools import lru_cache
from urllib.parse import SplitResult, quote, unquote, urlencode, urlsplit, urlunsplit

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


# Printable ASCII a Location header may carry as is; anything else (non-ASCII letters, spaces, quotes) is
# percent-encoded. "%" stays: escapes already in the path are kept, not encoded twice.
_LOCATION_SAFE = "".join(chr(c) for c in range(0x21, 0x7F) if chr(c) not in '"<>\\^`{|}')
# Servers and frameworks may decode a path again after the browser has: check what it means that many times.
_MAX_DECODES = 3


def _plain_char(ch: str) -> bool:
    if ch.isascii():
        return ch == " " or ch.isprintable()
    # Letters, marks and digits of any script (notebook names); no look-alikes of "/" or "." ("∕", "․").
    return unicodedata.category(ch)[0] in "LMN"


def _plain(text: str) -> bool:
    """No backslash (browsers read it as "/"), no controls or invisible characters (browsers drop tab, CR and
    LF anywhere, and spaces at the ends), no compatibility characters that normalise to others (fullwidth
    "／" or "．"), no non-ASCII punctuation or symbols; spaces inside are kept, they are encoded."""
    if text != text.strip() or "\\" in text or unicodedata.normalize("NFKC", text) != text:
        return False
    return all(_plain_char(ch) for ch in text)


def _decoded(text: str) -> str | None:
    """``text`` with percent escapes decoded until nothing changes; None when that takes too many rounds."""
    for _ in range(_MAX_DECODES):
        decoded = unquote(text)
        if decoded == text:
            return text
        text = decoded
    return None


def _wanted_path(parts: SplitResult, wanted: str, base_url: str, relative_to: str) -> str | None:
    """The absolute path ``wanted`` names, before any check of the path itself; None for another origin."""
    if wanted.startswith("//") or (parts.netloc and not parts.scheme):
        return None  # scheme-relative: another host, whatever follows
    if parts.scheme or parts.netloc:
        same_origin = _origin(parts) is not None and _origin(parts) == _base(base_url)[0]
        return (parts.path or "/") if same_origin else None
    if parts.path.startswith("/"):
        return parts.path
    return (relative_to or _base(base_url)[1]).rstrip("/") + "/" + parts.path


def _path_is_inside(path: str, base_path: str) -> bool:
    decoded = _decoded(path)
    if decoded is None or not _plain(decoded):
        return False
    segments, decoded_segments = path.split("/"), decoded.split("/")
    if len(segments) != len(decoded_segments):
        return False  # an encoded "/" (%2F): one more decoding makes "//host" or climbs out
    if any(segment in (".", "..") for segment in decoded_segments) or "" in segments[1:-1]:
        return False  # dot segments climb out; empty ones ("//") are read as a host by some redirects
    return path.startswith("/") and (path == base_path or path.startswith(base_path + "/"))


def safe_landing_path(wanted: str, base_url: str, *, relative_to: str = "") -> str | None:
    """Where to send the browser for ``wanted`` (from a launch: a custom parameter, a ``next``): a path and query
    inside ``base_url``, starting with exactly one "/", ready for a Location header; None if it may lead outside.

    ``wanted`` may be an absolute path, a URL of the same origin as ``base_url``, or a relative path, which is
    taken below ``relative_to`` (a path the host chooses, default the base path). Fragments are dropped.
    """
    if not wanted or not _plain(wanted):
        return None
    parts = urlsplit(wanted)
    path = _wanted_path(parts, wanted, base_url, relative_to)
    if path is None or not _path_is_inside(path, _base(base_url)[1]):
        return None
    query = _decoded(parts.query)
    if query is None or (query and not _plain(query)):
        return None
    location = quote(path, safe=_LOCATION_SAFE)
    return location + (f"?{quote(parts.query, safe=_LOCATION_SAFE)}" if parts.query else "")


def add_query(url: str, params: dict[str, str]) -> str:
    """``url`` with ``params`` appended to whatever query string it already has (Moodle's URLs carry one)."""
    parts = urlsplit(url)
    extra = urlencode(params)
    query = f"{parts.query}&{extra}" if parts.query else extra
    return urlunsplit((parts.scheme, parts.netloc, parts.path, query, parts.fragment))
