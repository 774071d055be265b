"""A small LTI platform for people without an LMS: the demo's local launch page.

It launches into this tool exactly as Moodle would: LTI 1.1 form POSTs signed by oauthlib, and the
LTI 1.3 OIDC dance (login initiation POST, authorization endpoint, id_token signed with its own
RSA key and published at its own JWKS URL). It launches the same way (LTI 1.3) into the demo
JupyterHub that `make demo` runs beside it (demo/hub.py). It is demo code: it trusts
whoever opens the page.

Its key, its claims and its signatures are the project's platform peer's (`lti_peer`: pyjwt and
oauthlib, not the tool's libraries); what is its own are the Django views, its people and its course.
"""

from __future__ import annotations

import json
import os
import secrets
import time
from dataclasses import dataclass, field, replace
from functools import cache
from typing import Any

from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from demo.demohub import NEXT as HUB_NEXT
from demo.demohub import HubLti13Urls
from lti_core.i18n import N_
from lti_peer import tokens
from lti_peer.claims import (
    COURSE_OFFERING,
    INSTRUCTOR_ROLES,
    LEARNER_ROLES,
    MoodleActivity,
    MoodleUser,
    launch_claims,
    login_initiation_params,
)
from lti_peer.keys import PlatformKey, load_or_create_key
from lti_peer.lti11 import sign_lti11_launch
from lti_publish_assets import static_text
from lti_xblock.i18n import gettext as _
from lti_xblock.launch_details import launch_details, lti13_redirect_uri, tool_base_url

CLIENT_ID = "demo-client"
DEPLOYMENT_ID = "1"
CONSUMER_KEY = "demo-consumer"
# The demo JupyterHub (demo/hub.py): its registration with this platform, and whether it runs.
HUB_CLIENT_ID = "demo-jupyterhub"
HUB_URL_ENV = "LTI_PUBLISH_DEMO_HUB_URL"  # set by `make demo` once the hub answers
HUB_ERROR_ENV = "LTI_PUBLISH_DEMO_HUB_ERROR"  # why it does not run
#: Who can launch, by role: as LTI 1.3 users, and their LTI 1.1 role.
PEOPLE = {
    "learner": MoodleUser("101", "Ada", "Lovelace", "ada@example.org", tuple(LEARNER_ROLES), None, None),
    "instructor": MoodleUser("102", "Grace", "Hopper", "grace@example.org", tuple(INSTRUCTOR_ROLES), None, None),
}
ROLES11 = {"learner": "Learner", "instructor": "Instructor"}
#: The demo course's link, in a browser window (no Moodle services: no lis, AGS, NRPS, return URL).
DEMO_LINK = MoodleActivity(
    course_id="demo-course",
    course_label=None,
    course_title="Demo course",
    course_type=(COURSE_OFFERING,),
    course_sourcedid=None,
    link_title="Demo link",
    link_description=None,
    document_target="window",
    sesskey=None,
    custom={},
    type_id=None,
)


def base_url(request: HttpRequest) -> str:
    return tool_base_url(request.build_absolute_uri("/"))


def issuer(base: str) -> str:
    return f"{base}/demo/platform"


def demo_hub() -> HubLti13Urls | None:
    """The URLs of the demo JupyterHub, when `make demo` runs one."""
    url = os.environ.get(HUB_URL_ENV, "")
    return HubLti13Urls(url) if url else None


@dataclass(frozen=True)
class ToolRegistration:
    """A tool as this platform knows it: where id_tokens may go, and the custom claim of its links."""

    redirect_uri: str
    custom: dict[str, str] = field(default_factory=dict)


def registered_tools(base: str) -> dict[str, ToolRegistration]:
    """The tools registered with this platform, by client_id: this tool, and the demo hub if it runs."""
    tools = {CLIENT_ID: ToolRegistration(lti13_redirect_uri(base))}
    hub = demo_hub()
    if hub is not None:
        tools[HUB_CLIENT_ID] = ToolRegistration(hub.launch, {"next": HUB_NEXT})
    return tools


@cache
def platform_key() -> PlatformKey:
    """The demo platform's signing key, made on first use and kept in var/ (never committed)."""
    return load_or_create_key(settings.VAR_DIR / "demo-platform-key.json")


def published_content() -> list[tuple[str, str]]:
    """(usage id, title) of every lti_publish block the workbench knows."""
    from workbench.scenarios import get_scenarios

    from lti_xblock.compat import host

    found = []
    for scenario in get_scenarios().values():
        title = host().content_title(scenario.usage_id)
        if title is not None:
            found.append((scenario.usage_id, title))
    return found


def autosubmit(request: HttpRequest, action: str, fields: dict[str, str]) -> HttpResponse:
    return render(
        request,
        "lti_xblock/autosubmit.html",
        {"action": action, "fields": sorted(fields.items()), "label": _(N_("Continue"))},
    )


@require_GET
def launch_page(request: HttpRequest) -> HttpResponse:
    base = base_url(request)
    return render(
        request,
        "demo/launch.html",
        {
            "title": _(N_("lti-publish: local launch page")),
            "intro": _(N_("Launch the published content as a platform would, with real signed LTI messages.")),
            "content": [(cid, title, launch_details(base, cid)) for cid, title in published_content()],
            "roles": [("learner", _(N_("Learner"))), ("instructor", _(N_("Instructor")))],
            "labels": {
                "lti11_tool_url": _(N_("LTI 1.1 Tool URL")),
                "lti13_target_link_uri": _(N_("LTI 1.3 Tool URL")),
                "lti13_login_url": _(N_("Initiate login URL")),
                "lti13_redirect_uri": _(N_("Redirection URI")),
                "lti13_jwks_url": _(N_("Public keyset URL")),
                "empty": _(N_("No published content.")),
            },
            "hub": hub_section(),
            "css": static_text("css/lti_publish.css"),
        },
    )


def hub_section() -> dict[str, Any]:
    """The launch page's JupyterHub part: its buttons and URLs, or why the hub does not run."""
    hub = demo_hub()
    return {
        "title": _(N_("JupyterHub (LTI 1.3)")),
        "intro": _(
            N_(
                "Each launch signs the person in to the demo JupyterHub and opens welcome.ipynb in their own "
                "JupyterLab (custom parameter next=lab/tree/welcome.ipynb)."
            )
        ),
        "urls": hub,
        "button": _(N_("JupyterHub (LTI 1.3)")),
        "unavailable": _(N_("The demo JupyterHub is not running: %(reason)s"))
        % {"reason": os.environ.get(HUB_ERROR_ENV) or _(N_("`make demo` did not start it."))},
        "labels": {
            "launch": _(N_("Tool URL and redirection URI")),
            "login": _(N_("Initiate login URL")),
            "jwks": _(N_("Public keyset URL")),
            "config": _(N_("Configuration (JSON)")),
        },
    }


@csrf_exempt
@require_POST
def start_launch(request: HttpRequest) -> HttpResponse:
    from lti_xblock.views import store

    base = base_url(request)
    person = PEOPLE.get(request.POST.get("role", ""))
    if request.POST.get("tool") == "jupyterhub":
        return start_hub_launch(request, base, person)
    content_id = request.POST.get("content_id", "")
    if person is None or not content_id:
        return HttpResponseBadRequest("role and content_id are required")
    details = launch_details(base, content_id)
    if request.POST.get("version") == "1.1":
        consumer = store.get_consumer(CONSUMER_KEY)
        if consumer is None:
            return HttpResponseBadRequest("run `make demo` (or the demo's setup) first: no demo consumer")
        params = {
            "lti_message_type": "basic-lti-launch-request",
            "lti_version": "LTI-1p0",
            "resource_link_id": f"demo-{content_id}",
            "resource_link_title": "Demo link",
            "user_id": person.id,
            "roles": ROLES11[request.POST["role"]],
            "lis_person_name_given": person.given_name,
            "lis_person_name_family": person.family_name,
            "lis_person_name_full": person.name,
            "lis_person_contact_email_primary": person.email,
            "context_id": "demo-course",
            "context_title": "Demo course",
            "launch_presentation_locale": request.LANGUAGE_CODE,
            "tool_consumer_info_product_family_code": "lti-publish-demo",
        }
        form = sign_lti11_launch(details.lti11_tool_url, CONSUMER_KEY, consumer.secret, params)
        return autosubmit(request, details.lti11_tool_url, form)
    return login_initiation(request, base, person, details.lti13_login_url, details.lti13_target_link_uri, CLIENT_ID)


def login_initiation(
    request: HttpRequest, base: str, person: MoodleUser, login_url: str, target: str, client_id: str
) -> HttpResponse:
    """The LTI 1.3 login initiation form Moodle POSTs to a tool's login URL."""
    hint = json.dumps({"role": request.POST["role"], "target": target})
    fields = login_initiation_params(
        issuer=issuer(base),
        target_link_uri=target,
        login_hint=person.id,
        message_hint=hint,
        client_id=client_id,
        deployment_id=DEPLOYMENT_ID,
    )
    return autosubmit(request, login_url, fields)


def start_hub_launch(request: HttpRequest, base: str, person: MoodleUser | None) -> HttpResponse:
    """The login initiation into the demo JupyterHub, as Moodle POSTs it to /hub/lti13/oauth_login."""
    hub = demo_hub()
    if person is None:
        return HttpResponseBadRequest("role is required")
    if hub is None:
        return HttpResponseBadRequest("the demo JupyterHub is not running")
    return login_initiation(request, base, person, hub.login, hub.launch, HUB_CLIENT_ID)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    """The platform's OIDC authorization endpoint: checks the tool's request, answers with an id_token."""
    params = request.POST if request.method == "POST" else request.GET
    base = base_url(request)
    client_id = params.get("client_id", "")
    tool = registered_tools(base).get(client_id)
    if tool is None or params.get("redirect_uri") != tool.redirect_uri:
        return HttpResponseBadRequest("unregistered redirect_uri or client_id")
    if params.get("response_type") != "id_token" or params.get("scope") != "openid" or not params.get("nonce"):
        return HttpResponseBadRequest("not an LTI 1.3 authentication request")
    try:
        hint = json.loads(params.get("lti_message_hint", ""))
        person = PEOPLE[hint["role"]]
    except (ValueError, KeyError, TypeError):
        return HttpResponseBadRequest("bad lti_message_hint")
    claims = launch_claims(
        issuer=issuer(base),
        client_id=client_id,
        deployment_id=DEPLOYMENT_ID,
        nonce=params["nonce"],
        iat=int(time.time()),
        target_link_uri=hint["target"],
        user=replace(person, id=params.get("login_hint", ""), locale=request.LANGUAGE_CODE),
        activity=replace(DEMO_LINK, link_id="demo-" + secrets.token_hex(4), custom=dict(tool.custom)),
        site=None,
    )
    key = platform_key()
    token = tokens.sign(claims, key.private, kid=key.kid)
    return autosubmit(request, params["redirect_uri"], {"id_token": token, "state": params.get("state", "")})


@require_GET
def jwks(_request: HttpRequest) -> JsonResponse:
    return JsonResponse(platform_key().jwks)
