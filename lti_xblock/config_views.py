"""The documents a platform admin pastes or imports to add the tool, served by the Django host and
printed by `lti-publish config`:

- ``GET /lti_publish/lti13/config.json``: Canvas's developer-key JSON (``?content_id=`` makes the
  placements launch that content);
- ``GET /lti_publish/lti11/config.xml?content_id=...``: the LTI 1.1 cartridge of one content.

lti_core builds both (``lti_core.tool_config``); this module
only fills in this host's URLs and titles.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse, JsonResponse

from lti_core.errors import InvalidRequest, NotFound
from lti_core.i18n import N_
from lti_core.tool_config import build_lti11_cartridge, build_lti13_tool_config
from lti_xblock import compat
from lti_xblock.launch_details import launch_details, tool_urls
from lti_xblock.registration import TOOL_DESCRIPTION, TOOL_NAME
from lti_xblock.views import base_url, lti_endpoint


def content_title(content_id: str) -> str:
    """The published content's title; ``unknown_content`` when it is not published here."""
    title = compat.host().content_title(content_id)
    if title is None:
        raise NotFound("unknown_content", detail=content_id[:80])
    return title or TOOL_NAME


def canvas_config(base: str, content_id: str = "") -> dict[str, object]:
    """Canvas's developer-key JSON; with ``content_id``, its placements launch that content, else the
    tool's root (each assignment then names its content's URL)."""
    urls = tool_urls(base)
    target = launch_details(base, content_id).lti13_target_link_uri if content_id else urls.deep_linking_url
    title = f"{TOOL_NAME}: {content_title(content_id)}" if content_id else TOOL_NAME
    return build_lti13_tool_config(
        title=title,
        description=TOOL_DESCRIPTION,
        login_url=urls.lti13_login_url,
        redirect_uri=urls.lti13_redirect_uri,
        target_link_uri=target,
        jwks_url=urls.lti13_jwks_url,
    )


def cartridge(base: str, content_id: str) -> str:
    """The LTI 1.1 cartridge (basic LTI link) of one published content."""
    if not content_id:
        raise InvalidRequest("content_id_missing", N_("Say which content: add ?content_id= with its id."))
    return build_lti11_cartridge(
        title=content_title(content_id),
        description=TOOL_DESCRIPTION,
        icon_url="",
        launch_url=launch_details(base, content_id).lti11_tool_url,
    )


@lti_endpoint("GET")
def lti13_config(request: HttpRequest) -> HttpResponse:
    return JsonResponse(canvas_config(base_url(request), request.GET.get("content_id", "")))


@lti_endpoint("GET")
def lti11_config(request: HttpRequest) -> HttpResponse:
    document = cartridge(base_url(request), request.GET.get("content_id", ""))
    return HttpResponse(document, content_type="application/xml; charset=utf-8")
