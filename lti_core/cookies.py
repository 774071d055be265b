"""Cookie rules both hosts follow: the attributes a launch's cookies need, in a frame or not.

Python's http.cookies learns ``Partitioned`` only in 3.14, and Django's and tornado's cookie helpers
go through it; so the Set-Cookie values are written (or amended) here, as text.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime


@dataclass(frozen=True)
class CookiePolicy:
    samesite: str
    secure: bool
    partitioned: bool


def state_cookie_policy(secure_origin: bool) -> CookiePolicy:
    """Cookie attributes for the state cookie, and for the session a launch starts.

    Over HTTPS: ``SameSite=None; Secure`` so the cookie rides the platform's cross-site POST, and
    ``Partitioned`` (CHIPS) so that browsers that block third-party cookies still keep it inside
    the platform's frame, partitioned by the platform's site. Over plain HTTP browsers only keep
    ``Lax``, which never rides a cross-site POST: there the check page's same-origin re-post
    carries it (in a new window).
    """
    if secure_origin:
        return CookiePolicy(samesite="None", secure=True, partitioned=True)
    return CookiePolicy(samesite="Lax", secure=False, partitioned=False)


def cookie_header(name: str, value: str, *, max_age: int, path: str, policy: CookiePolicy) -> str:
    """A ``Set-Cookie`` value with the policy's attributes, ``Partitioned`` included.

    Built here because the standard library learns ``Partitioned`` only in Python 3.14, and the
    hosts' cookie helpers (Django's, tornado's) go through it.
    """
    parts = [f"{name}={value}", f"Max-Age={max(0, max_age)}", f"Path={path}", "HttpOnly", f"SameSite={policy.samesite}"]
    if policy.secure:
        parts.append("Secure")
    if policy.partitioned:
        parts.append("Partitioned")
    return "; ".join(parts)


# -- amending what a framework wrote ----------------------------------------------------------


def _attributes(set_cookie: str) -> dict[str, str]:
    attributes: dict[str, str] = {}
    for item in set_cookie.split(";")[1:]:
        name, _, value = item.strip().partition("=")
        if name:
            attributes[name.lower()] = value.strip()
    return attributes


def _deletes(attributes: Mapping[str, str]) -> bool:
    """The Set-Cookie removes the cookie: ``Max-Age=0`` or an ``Expires`` in the past (tornado's
    ``clear_cookie``)."""
    if attributes.get("max-age", "").strip() in ("0", "-1"):
        return True
    expires = attributes.get("expires", "")
    if not expires:
        return False
    try:
        return parsedate_to_datetime(expires) < datetime.now(UTC)
    except (TypeError, ValueError):
        return False


def partitioned_cookie(set_cookie: str) -> str:
    """A ``Set-Cookie`` value, ``Partitioned`` when it is ``SameSite=None; Secure``.

    A cookie set partitioned is only removed by a removal that is partitioned too: one without a
    SameSite attribute (JupyterHub's logout clears its cookies with a path only) gets
    ``Secure; SameSite=None; Partitioned`` as well. Everything else is left as it is.
    """
    attributes = _attributes(set_cookie)
    if "partitioned" in attributes:
        return set_cookie
    if "secure" in attributes and attributes.get("samesite", "").lower() == "none":
        return set_cookie + "; Partitioned"
    if "samesite" not in attributes and _deletes(attributes):
        return set_cookie + ("" if "secure" in attributes else "; Secure") + "; SameSite=None; Partitioned"
    return set_cookie
