"""What an admin pastes into a platform to add one piece of published content."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote

from django.conf import settings

from lti_core.admin import ToolUrls

URL_PREFIX = "lti_publish"


def tool_base_url(request_base: str = "") -> str:
    """The public base URL (scheme://host[:port]) of this tool: configured, or the request's own."""
    # Studio (the CMS) may not carry our settings: fall back to the request's own URL there.
    configured = getattr(settings, "LTI_PUBLISH", {}).get("TOOL_BASE_URLS") or []
    return (configured[0] if configured else request_base).rstrip("/")


@dataclass(frozen=True)
class LaunchDetails:
    lti11_tool_url: str
    lti13_target_link_uri: str
    lti13_login_url: str
    lti13_redirect_uri: str
    lti13_jwks_url: str
    #: What a platform admin gives the platform to register the tool by LTI Dynamic Registration.
    lti13_registration_url: str = ""


def lti13_redirect_uri(base_url: str) -> str:
    """The one LTI 1.3 redirect URI of the tool: platforms compare it to the registered one exactly."""
    return f"{base_url.rstrip('/')}/{URL_PREFIX}/lti13/launch"


def lti13_registration_url(base_url: str) -> str:
    """The tool's LTI Dynamic Registration URL (one for the whole tool, not per content)."""
    return f"{base_url.rstrip('/')}/{URL_PREFIX}/lti13/register"


def approve_registrations() -> bool:
    """New dynamic registrations wait for an admin's approval (``LTI_PUBLISH["APPROVE_REGISTRATIONS"]``,
    default True), or are active at once."""
    return bool(getattr(settings, "LTI_PUBLISH", {}).get("APPROVE_REGISTRATIONS", True))


def launch_details(base_url: str, content_id: str) -> LaunchDetails:
    """The URLs for ``content_id`` (a published block's usage id, or a published course's id: an Open
    edX course key, a workbench scenario id) on the tool served at ``base_url``."""
    root = f"{base_url.rstrip('/')}/{URL_PREFIX}"
    # ":", "@" and "+" (every Open edX usage id and course key has them) stay as they are: they are allowed in a path
    # segment, and the URL a platform signs for LTI 1.1 must be spelt as the host rebuilds it from the
    # request (Django's build_absolute_uri keeps them unencoded), or the signature never matches.
    content = f"{root}/content/{quote(content_id, safe=':@+')}"
    return LaunchDetails(
        lti11_tool_url=f"{content}/ltiaccess",
        lti13_target_link_uri=f"{content}/",
        lti13_login_url=f"{root}/lti13/login",
        lti13_redirect_uri=lti13_redirect_uri(base_url),
        lti13_jwks_url=f"{root}/lti13/jwks",
        lti13_registration_url=lti13_registration_url(base_url),
    )


#: How the content's place in the URL patterns is shown to admins.
CONTENT_PLACEHOLDER = "<content_id>"
_SENTINEL = "CONTENTID"


def tool_urls(base: str) -> ToolUrls:
    """Every URL of the tool served at ``base``; ``<content_id>`` stands for each content's id."""
    details = launch_details(base, _SENTINEL)
    root = f"{base.rstrip('/')}/{URL_PREFIX}"
    return ToolUrls(
        lti11_tool_url=details.lti11_tool_url.replace(_SENTINEL, CONTENT_PLACEHOLDER),
        lti13_target_link_uri=details.lti13_target_link_uri.replace(_SENTINEL, CONTENT_PLACEHOLDER),
        lti13_login_url=details.lti13_login_url,
        lti13_redirect_uri=details.lti13_redirect_uri,
        lti13_jwks_url=details.lti13_jwks_url,
        # What dynamic registration offers platforms for deep linking requests (the tool's root).
        deep_linking_url=f"{root}/",
        registration_url=details.lti13_registration_url,
    )
