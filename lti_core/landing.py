"""Where a launch lands once the user is signed in.

What the launch asks for (the custom parameter a teacher set, else the target link's ``?next=``, else
the target link itself), kept inside the tool (``safe_landing_path``) and never on a path that
would start the launch over (the tool's root, its launch endpoints): there, the host's default page.
"""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from urllib.parse import parse_qsl, unquote, urlsplit

from lti_core.types import Launch
from lti_core.urls import safe_landing_path


@dataclass(frozen=True)
class Landing:
    """``path``: where to go, or "" for the host's default page; ``outside``: the launch asked for a
    place outside the tool (worth a warning in the log)."""

    path: str = ""
    outside: bool = False


def wanted_landing(launch: Launch, custom_key: str) -> str:
    """The custom parameter ``custom_key`` (if set), else the target link's ``?next=``, else the target link."""
    wanted = launch.custom.get(custom_key, "") if custom_key else ""
    if not wanted and launch.target_link_uri:
        query = dict(parse_qsl(urlsplit(launch.target_link_uri).query))
        wanted = query.get("next", "") or launch.target_link_uri
    return str(wanted)


def landing(
    launch: Launch,
    *,
    custom_key: str,
    public_base_url: str,
    relative_to: str,
    start_paths: Collection[str],
    launch_prefixes: tuple[str, ...],
) -> Landing:
    """Where ``launch`` lands on the tool at ``public_base_url``: a relative path below ``relative_to``.

    ``start_paths`` (exact) and ``launch_prefixes`` are relative to the base URL's path: landing
    there again would start over, or loop.
    """
    wanted = wanted_landing(launch, custom_key)
    if not wanted:
        return Landing()
    path = safe_landing_path(wanted, public_base_url, relative_to=relative_to)
    if path is None:
        return Landing(outside=True)
    base_path = urlsplit(public_base_url).path.rstrip("/")
    relative = unquote(urlsplit(path).path)[len(base_path) :].lstrip("/")
    if relative in start_paths or relative.startswith(launch_prefixes):
        return Landing()
    return Landing(path)
