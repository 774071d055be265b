"""The documents a platform admin pastes or reads to add the tool: every URL of its registration.

- LTI 1.3: the tool configuration JSON in Canvas's format (Canvas reads it from a URL; people filling
  in Moodle's or Brightspace's form read it), with course navigation and assignment selection
  placements that launch the tool's resource link.
- LTI 1.1: the IMS Common Cartridge basic LTI link (``cartridge_basiclti_link``) that Moodle, Canvas
  and Brightspace import "by URL" or "by XML".
"""

from __future__ import annotations

from html import escape
from typing import Any

from lti_core.lti13 import claims as c

CANVAS_PLACEMENTS = ("course_navigation", "assignment_selection")


def build_lti13_tool_config(
    *, title: str, description: str, login_url: str, redirect_uri: str, target_link_uri: str, jwks_url: str
) -> dict[str, Any]:
    """``redirect_uri``: where every id_token is posted; ``target_link_uri``: what a launch opens (the
    hub's is its redirect URI; the Open edX host's a content URL, told apart by the target link)."""
    placements = [
        {"placement": name, "message_type": c.RESOURCE_LINK_REQUEST, "target_link_uri": target_link_uri}
        for name in CANVAS_PLACEMENTS
    ]
    return {
        "title": title,
        "description": description,
        "oidc_initiation_url": login_url,
        "target_link_uri": target_link_uri,
        "redirect_uris": [redirect_uri],
        "public_jwk_url": jwks_url,
        "scopes": [],
        "custom_fields": {},
        "extensions": [
            {
                "platform": "canvas.instructure.com",
                "privacy_level": "public",
                "settings": {"placements": placements},
            }
        ],
    }


def build_lti11_cartridge(*, title: str, description: str, icon_url: str, launch_url: str) -> str:
    return (
        '<?xml version="1.0" encoding="UTF-8"?>\n'
        '<cartridge_basiclti_link xmlns="http://www.imsglobal.org/xsd/imslticc_v1p0"'
        ' xmlns:blti="http://www.imsglobal.org/xsd/imsbasiclti_v1p0">\n'
        f"  <blti:title>{escape(title)}</blti:title>\n"
        f"  <blti:description>{escape(description)}</blti:description>\n"
        f"  <blti:icon>{escape(icon_url)}</blti:icon>\n"
        f"  <blti:launch_url>{escape(launch_url)}</blti:launch_url>\n"
        "</cartridge_basiclti_link>\n"
    )
