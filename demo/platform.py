"""A small LTI platform for people without an LMS: the demo's local launch page.

It launches into this tool exactly as Moodle would: LTI 1.1 form POSTs signed by oauthlib, and the
LTI 1.3 OIDC dance (login initiation POST, authorization endpoint, id_token signed with its own
RSA key and published at its own JWKS URL). It launches the same way (LTI 1.3) into the demo
JupyterHub that `make demo` runs beside it (demo/hub.py). It is demo code: it trusts
whoever opens the page.

Like Moodle, it offers the tools its grade services: LTI 1.3 launches carry the AGS claim (a line
item per link, made at the first launch), LTI 1.1 launches an outcome service URL and sourcedid; its
token endpoint trades a tool's client assertion (checked against the tool's key set URL) for a token
to them. Its gradebook page shows the scores received.

Like Moodle's "Select content" on an external tool activity, it sends the tools (this one, and the
demo hub) an LtiDeepLinkingRequest; its return endpoint (Moodle's mod/lti/contentitem_return.php)
checks the tool's signed answer with the peer's ``lti_peer.deep_linking.verify_response`` and adds
each ``ltiResourceLink`` to the demo course as a link of its own (with a line item in the gradebook for
one with a ``lineItem``); the launch page lists them with their launch buttons.

Its key, its claims, its signatures, its gradebook (``lti_peer.ags``), outcome service
(``lti_peer.outcomes``) and token endpoint (``lti_peer.token``) are the project's platform peer's
(pyjwt and oauthlib, not the tool's libraries). What they received is kept in var/ with the platform's
key (``demo-gradebook.json``): after a restart of the demo, the tool's launch contexts still name
line items and sourcedids the platform knows. What is its own are the Django views, its people and
its course.
"""

from __future__ import annotations

import json
import os
import secrets
import threading
import time
from dataclasses import asdict, dataclass, field, replace
from datetime import UTC, datetime
from functools import cache
from pathlib import Path
from typing import Any

import jwt
from django.conf import settings
from django.http import HttpRequest, HttpResponse, HttpResponseBadRequest, JsonResponse
from django.shortcuts import redirect, render
from django.urls import reverse
from django.views.decorators.csrf import csrf_exempt
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from demo.demohub import NEXT as HUB_NEXT
from demo.demohub import HubLti13Urls
from lti_core.i18n import N_
from lti_peer import tokens
from lti_peer.ags import Gradebook, StoredLineItem, StoredScore, gradebook
from lti_peer.claims import (
    AGS_LINEITEM,
    AGS_RESULT_READONLY,
    AGS_SCORE,
    CLAIM_AGS,
    CLAIM_DEEP_LINKING_SETTINGS,
    CLAIM_MESSAGE_TYPE,
    CLAIM_RESOURCE_LINK,
    COURSE_OFFERING,
    INSTRUCTOR_ROLES,
    LEARNER_ROLES,
    MoodleActivity,
    MoodleUser,
    deep_linking_settings,
    launch_claims,
    login_initiation_params,
)
from lti_peer.deep_linking import (
    CLAIM_DATA,
    RETURN_PATH,
    AnswerRefused,
    line_item_args,
    resource_links,
    verify_response,
)
from lti_peer.keys import PlatformKey, load_or_create_key
from lti_peer.lti11 import sign_lti11_launch
from lti_peer.outcomes import OutcomeService
from lti_peer.token import token_endpoint
from lti_publish_assets import static_text
from lti_xblock.i18n import gettext as _
from lti_xblock.launch_details import launch_details, lti13_redirect_uri, tool_base_url, tool_urls

CLIENT_ID = "demo-client"
DEPLOYMENT_ID = "1"
CONSUMER_KEY = "demo-consumer"
#: Where this platform serves, below the tool's base URL (its issuer is ``{base}{PLATFORM_PATH}``).
PLATFORM_PATH = "/demo/platform"
# The demo JupyterHub (demo/hub.py): its registration with this platform, and whether it runs.
HUB_CLIENT_ID = "demo-jupyterhub"
#: Moodle's tool type ids, in the AGS URLs (``?type_id=``): which tool's gradebook a request is for.
TYPE_IDS = {CLIENT_ID: "1", HUB_CLIENT_ID: "2"}
#: The course's number in the AGS URLs (Moodle's course id).
COURSE_NUMBER = "2"
#: What the tools may do with the gradebook, as Moodle grants it with "grade sync and column management".
AGS_SCOPES = (AGS_LINEITEM, AGS_RESULT_READONLY, AGS_SCORE)
#: The maximum of a line item the platform makes for a link (Moodle's default maximum grade).
LINEITEM_MAXIMUM = 100.0
#: The demo JupyterHub's one link (its welcome notebook).
HUB_LINK_ID = "demo-jupyterhub"
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
    return f"{base}{PLATFORM_PATH}"


def demo_hub() -> HubLti13Urls | None:
    """The URLs of the demo JupyterHub, when `make demo` runs one."""
    url = os.environ.get(HUB_URL_ENV, "")
    return HubLti13Urls(url) if url else None


@dataclass(frozen=True)
class ToolRegistration:
    """A tool as this platform knows it: where id_tokens may go, where its keys are (for its client
    assertions and deep-linking answers), its login and "Select content" URLs, and the custom claim of
    its links."""

    redirect_uri: str
    jwks_url: str
    login_url: str
    #: The target of a deep-linking request (Moodle's "Content Selection URL").
    select_content_url: str
    custom: dict[str, str] = field(default_factory=dict)


def registered_tools(base: str) -> dict[str, ToolRegistration]:
    """The tools registered with this platform, by client_id: this tool, and the demo hub if it runs."""
    urls = tool_urls(base)
    tools = {
        CLIENT_ID: ToolRegistration(
            lti13_redirect_uri(base), urls.lti13_jwks_url, urls.lti13_login_url, urls.deep_linking_url
        )
    }
    hub = demo_hub()
    if hub is not None:
        tools[HUB_CLIENT_ID] = ToolRegistration(hub.launch, hub.jwks, hub.login, hub.launch, {"next": HUB_NEXT})
    return tools


@dataclass(frozen=True)
class AddedLink:
    """A link "Select content" added to the demo course (Moodle: a new external tool activity)."""

    id: str
    title: str
    url: str
    custom: dict[str, str]
    #: The URL of its line item in the gradebook; "" without "Add to gradebook".
    lineitem: str = ""


class GradeServices:
    """This platform's grade services for one tool (an ``lti_peer.PlatformSite``): the peer's gradebook
    (AGS) and token endpoint, and its LTI 1.1 outcome service; and the links its "Select content"
    answers added to the course, with their line items."""

    def __init__(self, issuer: str, client_id: str) -> None:
        self.issuer = issuer
        self.client_id = client_id
        self.token_url = f"{issuer}/token"
        self.type_id = TYPE_IDS[client_id]
        self.outcomes = OutcomeService(self)
        #: resource link id -> its title, for the LTI 1.1 rows of the gradebook page.
        self.link_titles: dict[str, str] = {}
        #: The links "Select content" added, in order.
        self.added_links: list[AddedLink] = []
        #: The ``data`` of each deep-linking request sent and not answered yet (one answer each).
        self._open_requests: set[str] = set()
        self._seen_nonces: set[str] = set()
        self._lock = threading.Lock()

    @property
    def book(self) -> Gradebook:
        return gradebook(self)

    def lineitem_of(self, link_id: str, title: str) -> str:
        """The URL of the line item of the link ``link_id``, made at its first launch (as Moodle makes
        the grade item of an LTI activity)."""
        with self._lock:
            self.link_titles[link_id] = title
            for item in list(self.book.items.values()):
                if item.resource_link_id == link_id:
                    return self.book.item_url(item)
            return self.book.add_lineitem(
                title, LINEITEM_MAXIMUM, course=COURSE_NUMBER, type_id=self.type_id, resource_link_id=link_id
            )

    def state(self) -> dict[str, Any]:
        """What to keep of these services (JSON-ready), ``restore``'s argument."""
        book, outcomes = self.book, self.outcomes
        scores = dict(book.scores)
        return {
            "items": [asdict(item) for item in dict(book.items).values()],
            "next_number": book.next_number,
            "scores": [{**asdict(score), "at": score.at.isoformat()} for score in scores.values()],
            "score_items": [number for number, _user in scores],
            "sourcedids": sorted(outcomes.sourcedids),
            "outcomes": dict(outcomes.gradebook),
            "outcomes_received_at": dict(outcomes.received_at),
            "link_titles": dict(self.link_titles),
            "added_links": [asdict(link) for link in list(self.added_links)],
        }

    def restore(self, state: dict[str, Any]) -> None:
        """Take back what ``state`` kept (after a restart of the demo)."""
        scores = {
            (number, str(score["user_id"])): StoredScore(**{**score, "at": datetime.fromisoformat(score["at"])})
            for number, score in zip(state["score_items"], state["scores"], strict=True)
        }
        self.book.restore([StoredLineItem(**item) for item in state["items"]], scores, state["next_number"])
        self.outcomes.sourcedids = set(state["sourcedids"])
        self.outcomes.gradebook = dict(state["outcomes"])
        self.outcomes.received_at = dict(state["outcomes_received_at"])
        self.link_titles = dict(state["link_titles"])
        self.added_links = [AddedLink(**link) for link in state.get("added_links", [])]

    def ags_claim(self, link_id: str, title: str) -> dict[str, Any]:
        return {**self.ags_services_claim(), "lineitem": self.lineitem_of(link_id, title)}

    def ags_services_claim(self) -> dict[str, Any]:
        """The AGS claim without a line item: a deep-linking request's, or an added link's without one."""
        return {"scope": list(AGS_SCOPES), "lineitems": self.book.lineitems_url(COURSE_NUMBER, self.type_id)}

    # -- "Select content" (deep linking) ------------------------------------------------------------

    @property
    def return_url(self) -> str:
        """Where the tool's answer goes: Moodle's contentitem_return.php, naming the course and tool type."""
        return f"{self.issuer}{RETURN_PATH}?course={COURSE_NUMBER}&id={self.type_id}"

    def expect_answer(self) -> str:
        """A fresh ``data`` for a deep-linking request, whose answer is then taken once."""
        data = f"_{COURSE_NUMBER}_{secrets.token_urlsafe(8)}"
        with self._lock:
            self._open_requests.add(data)
        return data

    def take_answer(self, token: str) -> list[AddedLink]:
        """The links a tool's LtiDeepLinkingResponse adds (none: the teacher cancelled, an error answer).
        ``AnswerRefused``: not signed by this tool for this platform, a nonce seen before, or a ``data``
        no open request carried."""
        claims = verify_response(
            token, token_endpoint(self), platform=self.issuer, client_id=self.client_id, deployment_id=DEPLOYMENT_ID
        )
        with self._lock:
            nonce, data = str(claims["nonce"]), claims.get(CLAIM_DATA)
            if nonce in self._seen_nonces:
                raise AnswerRefused("nonce reused")
            if not isinstance(data, str) or data not in self._open_requests:
                raise AnswerRefused("data does not match a request")
            self._open_requests.discard(data)
            self._seen_nonces.add(nonce)
            return [self._add_link(item) for item in resource_links(claims)]

    def _add_link(self, item: dict[str, Any]) -> AddedLink:
        """The link of an ``ltiResourceLink`` and, with a ``lineItem``, its gradebook column (under the lock)."""
        link_id = f"select-{self.type_id}-{len(self.added_links) + 1}"
        title = str(item.get("title") or "")
        custom = item.get("custom")
        lineitem = ""
        column = line_item_args(item.get("lineItem"), title)
        if column is not None:
            label, maximum, more = column
            lineitem = self.book.add_lineitem(
                label, maximum, course=COURSE_NUMBER, type_id=self.type_id, resource_link_id=link_id, **more
            )
        link = AddedLink(
            link_id,
            title,
            str(item.get("url") or ""),
            {str(k): str(v) for k, v in custom.items()} if isinstance(custom, dict) else {},
            lineitem,
        )
        self.added_links.append(link)
        return link

    def added_link(self, link_id: str) -> AddedLink | None:
        return next((link for link in self.added_links if link.id == link_id), None)

    def added_link_ags_claim(self, link: AddedLink) -> dict[str, Any]:
        """An added link's AGS claim: with its own line item, or none (as Moodle, no grade item without one)."""
        claim = self.ags_services_claim()
        return {**claim, "lineitem": link.lineitem} if link.lineitem else claim


_SERVICES: dict[tuple[str, str], GradeServices] = {}
_SERVICES_LOCK = threading.Lock()


def grades_file() -> Path:
    return Path(settings.VAR_DIR) / "demo-gradebook.json"


def _kept_states() -> dict[str, Any]:
    path = grades_file()
    return json.loads(path.read_text()) if path.exists() else {}


def grade_services(base: str, client_id: str) -> GradeServices | None:
    """The grade services of the registered tool ``client_id`` (None: no such tool), made at first use
    from what ``keep_grades`` kept. The tool's key set URL is set at every call: the hub's moves when
    the demo restarts it elsewhere."""
    tool = registered_tools(base).get(client_id)
    if tool is None:
        return None
    with _SERVICES_LOCK:
        services = _SERVICES.get((base, client_id))
        if services is None:
            services = _SERVICES[(base, client_id)] = GradeServices(issuer(base), client_id)
            kept = _kept_states().get(f"{services.issuer} {client_id}")
            if kept is not None:
                services.restore(kept)
    token_endpoint(services).tool_jwks_url = tool.jwks_url
    return services


def keep_grades() -> None:
    """Write every tool's grade services' state to ``grades_file()`` (whole, then renamed into place)."""
    with _SERVICES_LOCK:
        states = _kept_states()
        states |= {f"{s.issuer} {s.client_id}": s.state() for s in _SERVICES.values()}
        path = grades_file()
        partial = path.with_suffix(".partial")
        partial.write_text(json.dumps(states))
        partial.replace(path)


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
            "notice": select_content_notice(request.GET.get("added", "")),
            "content": [(cid, title, launch_details(base, cid)) for cid, title in published_content()],
            "roles": [("learner", _(N_("Learner"))), ("instructor", _(N_("Instructor")))],
            "labels": {
                "lti11_tool_url": _(N_("LTI 1.1 Tool URL")),
                "lti13_target_link_uri": _(N_("LTI 1.3 Tool URL")),
                "lti13_login_url": _(N_("Initiate login URL")),
                "lti13_redirect_uri": _(N_("Redirection URI")),
                "lti13_jwks_url": _(N_("Public keyset URL")),
                "empty": _(N_("No published content.")),
                "gradebook": _(N_("Gradebook: the scores the tools sent this platform")),
            },
            "select": select_content_section(base),
            "hub": hub_section(),
            "css": static_text("css/lti_publish.css"),
        },
    )


def select_content_notice(added: str) -> str:
    """What the launch page says after a "Select content" answer (``?added=<count>``); "" otherwise."""
    if not added.isdigit():
        return ""
    if added == "0":
        return _(N_("Nothing was added."))
    return _(N_("Items added to the demo course: %(count)s.")) % {"count": added}


def select_content_section(base: str) -> dict[str, Any]:
    """The launch page's "Select content" part: its buttons and the links it added, per running tool."""
    links = [
        (link, {CLIENT_ID: _(N_("lti-publish")), HUB_CLIENT_ID: _(N_("JupyterHub"))}[client_id])
        for client_id in registered_tools(base)
        if (services := grade_services(base, client_id)) is not None
        for link in services.added_links
    ]
    return {
        "title": _(N_("Added with Select content")),
        "intro": _(
            N_(
                'As a teacher does with Moodle\'s "Select content" on an external tool activity: the tool '
                "shows its published content, you pick what to add (and whether it goes in the gradebook), "
                "and each pick becomes a link of the demo course below."
            )
        ),
        "instructor": _(N_("Instructor")),
        "button": _(N_("Select content (LTI 1.3)")),
        "links": links,
        "empty": _(N_("No link added yet.")),
        "labels": {
            "tool": _(N_("Tool")),
            "url": _(N_("Tool URL")),
            "custom": _(N_("Custom parameters")),
            "gradebook": _(N_("Gradebook column")),
            "none": _(N_("(none)")),
        },
    }


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
    role = request.POST.get("role", "")
    person = PEOPLE.get(role)
    if request.POST.get("tool") == "jupyterhub":
        return start_hub_launch(request, base, role)
    if "link" in request.POST:
        return start_added_link_launch(request, base, role, request.POST["link"])
    content_id = request.POST.get("content_id", "")
    if person is None or not content_id:
        return HttpResponseBadRequest("role and content_id are required")
    details = launch_details(base, content_id)
    link_id, title = f"demo-{content_id}", dict(published_content()).get(content_id, content_id)
    if request.POST.get("version") == "1.1":
        consumer = store.get_consumer(CONSUMER_KEY)
        services = grade_services(base, CLIENT_ID)
        if consumer is None or services is None:
            return HttpResponseBadRequest("run `make demo` (or the demo's setup) first: no demo consumer")
        outcome_url, sourcedid = services.outcomes.issue(person.id, link_id, type_id=services.type_id)
        params = {
            "lti_message_type": "basic-lti-launch-request",
            "lti_version": "LTI-1p0",
            "resource_link_id": link_id,
            "resource_link_title": title,
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
            # Grade services, as Moodle offers them to an LTI 1.1 tool: Basic Outcomes, and the line
            # item's AGS URLs as custom parameters ("LTI Advantage services for 1.1 tools").
            "lis_outcome_service_url": outcome_url,
            "lis_result_sourcedid": sourcedid,
            "custom_lineitems_url": services.book.lineitems_url(COURSE_NUMBER, services.type_id),
            "custom_lineitem_url": services.lineitem_of(link_id, title),
        }
        keep_grades()
        form = sign_lti11_launch(details.lti11_tool_url, CONSUMER_KEY, consumer.secret, params)
        return autosubmit(request, details.lti11_tool_url, form)
    return login_initiation(
        request,
        base,
        role,
        details.lti13_login_url,
        details.lti13_target_link_uri,
        CLIENT_ID,
        {"link": link_id, "title": title},
    )


def login_initiation(
    request: HttpRequest,
    base: str,
    role: str,
    login_url: str,
    target: str,
    client_id: str,
    message: dict[str, str],
) -> HttpResponse:
    """The LTI 1.3 login initiation form Moodle POSTs to a tool's login URL. ``message`` goes in the
    message hint for the authorization endpoint: ``link`` and ``title`` for a launch of a link,
    ``select`` (the request's ``data``) for "Select content"."""
    hint = json.dumps({"role": role, "target": target, **message})
    fields = login_initiation_params(
        issuer=issuer(base),
        target_link_uri=target,
        login_hint=PEOPLE[role].id,
        message_hint=hint,
        client_id=client_id,
        deployment_id=DEPLOYMENT_ID,
    )
    return autosubmit(request, login_url, fields)


def start_hub_launch(request: HttpRequest, base: str, role: str) -> HttpResponse:
    """The login initiation into the demo JupyterHub, as Moodle POSTs it to /hub/lti13/oauth_login."""
    hub = demo_hub()
    if role not in PEOPLE:
        return HttpResponseBadRequest("role is required")
    if hub is None:
        return HttpResponseBadRequest("the demo JupyterHub is not running")
    link = {"link": HUB_LINK_ID, "title": _(N_("JupyterHub: welcome notebook"))}
    return login_initiation(request, base, role, hub.login, hub.launch, HUB_CLIENT_ID, link)


def start_added_link_launch(request: HttpRequest, base: str, role: str, link_id: str) -> HttpResponse:
    """The login initiation of a link "Select content" added: its tool, its URL (target_link_uri)."""
    if role not in PEOPLE:
        return HttpResponseBadRequest("role is required")
    for client_id, tool in registered_tools(base).items():
        services = grade_services(base, client_id)
        link = services.added_link(link_id) if services is not None else None
        if link is not None:
            hint = {"link": link.id, "title": link.title}
            return login_initiation(request, base, role, tool.login_url, link.url, client_id, hint)
    return HttpResponseBadRequest("no such link (or its tool is not running)")


#: What the "Select content" buttons name, and the client id of the tool each asks.
SELECT_CONTENT_TOOLS = {"workbench": CLIENT_ID, "jupyterhub": HUB_CLIENT_ID}


@csrf_exempt
@require_POST
def select_content(request: HttpRequest) -> HttpResponse:
    """Moodle's "Select content" on an external tool activity: the teacher's deep-linking request, by
    the same OIDC login as a launch (its message hint says so; ``authorize`` makes the request)."""
    base = base_url(request)
    client_id = SELECT_CONTENT_TOOLS.get(request.POST.get("tool", ""), "")
    tool = registered_tools(base).get(client_id)
    services = grade_services(base, client_id)
    if tool is None or services is None:
        return HttpResponseBadRequest("no such tool (or it is not running)")
    message = {"select": services.expect_answer()}
    return login_initiation(request, base, "instructor", tool.login_url, tool.select_content_url, client_id, message)


@csrf_exempt
@require_http_methods(["GET", "POST"])
def authorize(request: HttpRequest) -> HttpResponse:
    """The platform's OIDC authorization endpoint: checks the tool's request, answers with an id_token
    (a launch of a link, or "Select content"'s deep-linking request)."""
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
        target = str(hint["target"])
        select = str(hint.get("select", ""))
        link_id, title = ("", "") if select else (str(hint["link"]), str(hint["title"]))
    except (ValueError, KeyError, TypeError, AttributeError):
        return HttpResponseBadRequest("bad lti_message_hint")
    services = grade_services(base, client_id)
    if services is None:  # the hub stopped since the tool's request was checked
        return HttpResponseBadRequest("unregistered client_id")
    added = services.added_link(link_id) if link_id else None
    claims = launch_claims(
        issuer=issuer(base),
        client_id=client_id,
        deployment_id=DEPLOYMENT_ID,
        nonce=params["nonce"],
        iat=int(time.time()),
        target_link_uri=target,
        user=replace(person, id=params.get("login_hint", ""), locale=request.LANGUAGE_CODE),
        activity=replace(
            DEMO_LINK, link_id=link_id, link_title=title, custom=dict(added.custom if added else tool.custom)
        ),
        site=None,
    )
    if select:
        # Moodle's LtiDeepLinkingRequest: no resource link, the AGS claim without a line item.
        del claims[CLAIM_RESOURCE_LINK]
        claims[CLAIM_MESSAGE_TYPE] = "LtiDeepLinkingRequest"
        claims[CLAIM_DEEP_LINKING_SETTINGS] = deep_linking_settings(services.return_url, data=select)
        claims[CLAIM_AGS] = services.ags_services_claim()
    elif added is not None:
        claims[CLAIM_AGS] = services.added_link_ags_claim(added)
    else:
        claims[CLAIM_AGS] = services.ags_claim(link_id, title)
        keep_grades()
    key = platform_key()
    token = tokens.sign(claims, key.private, kid=key.kid)
    return autosubmit(request, params["redirect_uri"], {"id_token": token, "state": params.get("state", "")})


@csrf_exempt
@require_POST
def select_content_return(request: HttpRequest) -> HttpResponse:
    """Moodle's mod/lti/contentitem_return.php: the tool's signed answer to "Select content" adds its
    links to the course (and their line items to the gradebook), then back to the launch page with
    how many were added. A refusal adds nothing: a page saying why, 400."""
    base = base_url(request)
    client_id = {type_id: client for client, type_id in TYPE_IDS.items()}.get(request.GET.get("id", ""), "")
    services = grade_services(base, client_id)
    if services is None:
        return refused_page(request, "unknown_tool", status=404)
    try:
        added = services.take_answer(request.POST.get("JWT", ""))
    except AnswerRefused as refused:
        return refused_page(request, refused.reason)
    keep_grades()
    return redirect(reverse("demo_launch_page") + f"?added={len(added)}")


def refused_page(request: HttpRequest, reason: str, status: int = 400) -> HttpResponse:
    """A refused "Select content" answer: what happened, the reason, the way back."""
    return render(
        request,
        "demo/refused.html",
        {
            "title": _(N_("Select content: the tool's answer was refused")),
            "intro": _(N_("Nothing was added to the demo course. Reason:")),
            "reason": reason,
            "back": _(N_("Back to the launch page")),
            "css": static_text("css/lti_publish.css"),
        },
        status=status,
    )


@require_GET
def jwks(_request: HttpRequest) -> JsonResponse:
    return JsonResponse(platform_key().jwks)


# -- grade services --------------------------------------------------------------------------------


@csrf_exempt
@require_POST
def token(request: HttpRequest) -> JsonResponse:
    """The token endpoint (Moodle's mod/lti/token.php): the peer's, for the tool the assertion names."""
    services = grade_services(base_url(request), _assertion_issuer(request.POST.get("client_assertion", "")))
    if services is None:
        document = {"error": "invalid_client", "error_description": "the client assertion names no registered tool"}
        return JsonResponse(document, status=401, headers={"Cache-Control": "no-store"})
    status, answer = token_endpoint(services).handle("POST", request.POST.dict())
    return JsonResponse(answer, status=status, headers={"Cache-Control": "no-store"})


def _assertion_issuer(assertion: str) -> str:
    """Which tool a client assertion says it comes from, before it is verified (the endpoint verifies it)."""
    try:
        claims = jwt.decode(assertion, options={"verify_signature": False})
    except jwt.PyJWTError:
        return ""
    return str(claims.get("iss", ""))


@csrf_exempt
@require_http_methods(["GET", "POST", "PUT", "DELETE"])
def ags_services(request: HttpRequest) -> HttpResponse:
    """Moodle's mod/lti/services.php: the line items and scores of the tool the ``type_id`` names."""
    client_id = {type_id: client for client, type_id in TYPE_IDS.items()}.get(request.GET.get("type_id", ""), "")
    services = grade_services(base_url(request), client_id)
    if services is None:
        return JsonResponse({"status": 404, "reason": "no such tool type"}, status=404)
    target = request.get_full_path().removeprefix(PLATFORM_PATH)
    answer = services.book.handle(request.method or "GET", target, request.headers, request.body)
    if answer is None:  # the peer's "stop answering" fault knob, never turned on here
        return JsonResponse({"status": 503, "reason": "not answering"}, status=503)
    status, content_type, body, headers = answer
    if request.method != "GET":
        keep_grades()
    return HttpResponse(body, status=status, content_type=content_type, headers=headers)


@csrf_exempt
@require_POST
def outcome_service(request: HttpRequest) -> HttpResponse:
    """Moodle's mod/lti/service.php: LTI 1.1 Basic Outcomes, signed with the demo consumer's secret."""
    from lti_xblock.views import store

    services = grade_services(base_url(request), CLIENT_ID)
    consumer = store.get_consumer(CONSUMER_KEY)
    if services is None or consumer is None:
        return HttpResponseBadRequest("run `make demo` (or the demo's setup) first: no demo consumer")
    services.outcomes.add_consumer(consumer.key, consumer.secret)  # as it is now, if an admin changed it
    path = request.get_full_path().removeprefix(PLATFORM_PATH)
    status, body, content_type = services.outcomes.handle(path, dict(request.headers), request.body)
    keep_grades()
    return HttpResponse(body, status=status, content_type=content_type)


# -- the gradebook page ----------------------------------------------------------------------------

#: How often the gradebook page reloads itself, in seconds.
GRADEBOOK_REFRESH = 5


@dataclass(frozen=True)
class GradebookRow:
    """One learner's latest score in one activity, as the gradebook page shows it."""

    activity: str
    learner: str
    score: str
    maximum: str
    activity_progress: str
    grading_progress: str
    received: datetime
    service: str


def number_text(value: float | None) -> str:
    """A score as the page shows it: 0.7, 87.5, 100 (empty: none given)."""
    return "" if value is None else format(round(value, 4), "g")


def learner_name(user_id: str) -> str:
    person = next((p for p in PEOPLE.values() if p.id == user_id), None)
    return user_id if person is None else f"{person.name} ({user_id})"


def gradebook_rows(services: GradeServices) -> list[GradebookRow]:
    """The scores this tool's services received: by AGS per line item, by LTI 1.1 per sourcedid."""
    book = services.book
    items = dict(book.items)
    rows = [
        GradebookRow(
            items[number].label,
            learner_name(user_id),
            number_text(score.score_given),
            number_text(score.score_maximum),
            score.activity_progress,
            score.grading_progress,
            datetime.fromtimestamp(score.received_at, UTC),
            "AGS",
        )
        for (number, user_id), score in sorted(dict(book.scores).items())
        if number in items
    ]
    outcomes = services.outcomes
    for sourcedid, score in sorted(dict(outcomes.gradebook).items()):
        data = json.loads(sourcedid)["data"]  # the peer's own sourcedids: {"data": {...}, "hash": ...}
        link_id = str(data["instanceid"])
        received = datetime.fromtimestamp(outcomes.received_at.get(sourcedid, 0.0), UTC)
        title = services.link_titles.get(link_id, link_id)
        learner = learner_name(str(data["userid"]))
        rows.append(GradebookRow(title, learner, number_text(score), "1", "", "", received, "LTI 1.1"))
    return sorted(rows, key=lambda row: (row.activity, row.learner, row.service))


@require_GET
def gradebook_page(request: HttpRequest) -> HttpResponse:
    """What the tools sent this platform: each learner's latest score per activity."""
    base = base_url(request)
    rows = [row for client_id in TYPE_IDS if (s := grade_services(base, client_id)) for row in gradebook_rows(s)]
    return render(
        request,
        "demo/gradebook.html",
        {
            "title": _(N_("lti-publish: demo platform gradebook")),
            "intro": _(
                N_(
                    "The latest score each learner's activity received from the tool, by LTI Assignment and "
                    "Grade Services (AGS) or LTI 1.1 Basic Outcomes. This page reloads every %(seconds)s seconds."
                )
            )
            % {"seconds": GRADEBOOK_REFRESH},
            "refresh_seconds": GRADEBOOK_REFRESH,
            "rows": rows,
            "labels": {
                "activity": _(N_("Activity")),
                "learner": _(N_("Learner")),
                "score": _(N_("Score")),
                "maximum": _(N_("Maximum")),
                "activity_progress": _(N_("Activity progress")),
                "grading_progress": _(N_("Grading progress")),
                "received": _(N_("Received")),
                "service": _(N_("Service")),
                "empty": _(N_("No scores received yet.")),
                "refresh": _(N_("Refresh")),
                "back": _(N_("Back to the launch page")),
                "none": _(N_("(none)")),
            },
            "css": static_text("css/lti_publish.css"),
        },
    )
