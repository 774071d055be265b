"""LTI Dynamic Registration, the Django host's part: GET /lti_publish/lti13/register.

The platform opens the URL with its configuration URL and registration token; lti_core builds the
two requests (the platform's configuration, then the tool's registration), ``UrllibTransport`` sends
them, lti_core reads the answers, and the registration is saved: pending until an admin runs
``lti-publish registrations approve`` (``LTI_PUBLISH["APPROVE_REGISTRATIONS"]``, default True), or
active at once. Every refusal is ``lti_endpoint``'s error page, and nothing is saved for it.
"""

from __future__ import annotations

from django.http import HttpRequest, HttpResponse

from lti_core import pages
from lti_core.registration import (
    ToolDescription,
    build_configuration_request,
    build_registration_request,
    initial_status,
    parse_platform_configuration,
    parse_registration_initiation,
    parse_registration_response,
    save_dynamic_registration,
)
from lti_xblock.http import UrllibTransport
from lti_xblock.launch_details import approve_registrations, tool_urls
from lti_xblock.views import base_url, lti_endpoint, page, store

TOOL_NAME = "Open edX"
TOOL_DESCRIPTION = "Published Open edX content"


def tool_description(base: str) -> ToolDescription:
    """This tool, as it registers itself with a platform: its URLs under ``base``."""
    urls = tool_urls(base)
    return ToolDescription(
        name=TOOL_NAME,
        description=TOOL_DESCRIPTION,
        initiate_login_uri=urls.lti13_login_url,
        redirect_uri=urls.lti13_redirect_uri,
        # Each activity names its content's URL; the registration's own is the tool's root.
        target_link_uri=urls.deep_linking_url,
        jwks_uri=urls.lti13_jwks_url,
    )


@lti_endpoint("GET", flow=pages.REGISTRATION)
def lti13_register(request: HttpRequest) -> HttpResponse:
    initiation = parse_registration_initiation({name: request.GET.get(name, "") for name in request.GET})
    transport = UrllibTransport()
    platform = parse_platform_configuration(
        transport.send(build_configuration_request(initiation)), initiation.openid_configuration
    )
    answer = transport.send(
        build_registration_request(platform, tool_description(base_url(request)), initiation.registration_token)
    )
    registration = parse_registration_response(answer, platform, initial_status(approve_registrations()))
    saved = save_dynamic_registration(store, registration)
    return page(request, pages.registration_complete_page(saved))
