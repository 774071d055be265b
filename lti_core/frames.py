"""Who may show the tool in a frame: the Content-Security-Policy ``frame-ancestors`` rule.

A host that sends ``frame-ancestors`` (JupyterHub and its users' servers send ``'none'``) lists the
platforms' origins instead (https://www.w3.org/TR/CSP3/#directive-frame-ancestors); a source is only
ever an origin, a host wildcard or ``'self'``, so a configured value can never add a directive.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence

from lti_core.lti13.binding import origin_of

SELF = "'self'"
# An origin, or an origin whose host starts with a wildcard label: what CSP calls a host-source with a
# scheme and no path. Nothing else is accepted, so a value can never add a directive or a source.
_SOURCE = re.compile(
    r"https?://(\*\.)?([a-z0-9]([a-z0-9-]*[a-z0-9])?(\.[a-z0-9]([a-z0-9-]*[a-z0-9])?)*|\[[0-9a-f:.]+\])(:[0-9]{1,5})?"
)


def frame_source(value: str) -> str:
    """A ``frame-ancestors`` source as configured, normalized: ``'self'``, ``https://host[:port]`` or
    ``https://*.host``. ValueError for anything else (paths, ``*``, ``'none'``, other keywords)."""
    text = value.strip()
    if text.lower() == SELF:
        return SELF
    source = text.lower().rstrip("/")
    if not _SOURCE.fullmatch(source):
        raise ValueError(
            f"{value!r} is not an origin (https://host[:port]), a host wildcard (https://*.host) or 'self'"
        )
    return source


def platform_origins(urls: Iterable[str]) -> list[str]:
    """The origins of the platforms' URLs (issuers, authorization endpoints), each once, in order."""
    origins: list[str] = []
    for url in urls:
        origin = origin_of(url)
        if not origin:
            continue
        try:
            origin = frame_source(origin)
        except ValueError:
            continue
        if origin not in origins:
            origins.append(origin)
    return origins


def frame_ancestors(sources: Sequence[str]) -> str:
    """The CSP directive; ``'none'`` when no source is given."""
    return "frame-ancestors " + (" ".join(sources) if sources else "'none'")


def is_framed(headers: Mapping[str, str]) -> bool:
    """Whether the browser loads this response into a frame (``Sec-Fetch-Dest``, which Chromium,
    Firefox and Safari send): there, pages that refuse framing (a host's sign-in) must open a window."""
    destination = next((value for name, value in headers.items() if name.lower() == "sec-fetch-dest"), "")
    return destination.strip().lower() in ("iframe", "frame")
