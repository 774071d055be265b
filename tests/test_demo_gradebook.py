"""The demo's launch page platform as a gradebook: its launches offer grade services as Moodle's do
(the AGS claim for LTI 1.3, Basic Outcomes and the line item URLs for LTI 1.1), the tool's grade
worker delivers a score to them over real HTTP on loopback (the demo served by pytest-django's live
server: the tool and the demo platform in one Django site, as `make demo` serves them), and the
platform's gradebook page shows it."""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

import jwt
import pytest
import requests

from demo import platform
from demo.demohub import HubLti13Urls
from demo.platform import CLIENT_ID, CONSUMER_KEY, HUB_CLIENT_ID, HUB_URL_ENV, issuer
from demo.prepare import prepare
from lti_core.grades import GradeWorker, enqueue_grade
from lti_core.lti13.tool_keys import ToolKeySet
from lti_core.memory import MemoryStore
from lti_core.types import AgsEndpoint, Deployment, LaunchContext, LaunchServices, Registration
from lti_peer.platform import parse_autosubmit_form
from lti_peer.tool_jwks import serve_tool_jwks
from lti_xblock.http import UrllibTransport
from tests.conftest import Tool

AUTOSUBMIT = 'onload="document.forms[0].submit()"'
LEARNER_ID = "101"  # Ada, the demo platform's learner


@pytest.fixture
def demo(tool: Tool, settings: Any, tmp_path: Path) -> Tool:
    """The tool with the demo platform registered (consumer, registration, tool key), as `make demo` sets it
    up, the platform keeping its gradebook in a var/ of its own."""
    settings.VAR_DIR = tmp_path
    prepare(tool.base_url)
    return tool


def restart_the_platform(monkeypatch: pytest.MonkeyPatch) -> None:
    """What a restart of the demo leaves of its platform's grade services: what it kept in var/."""
    monkeypatch.setattr(platform, "_SERVICES", {})


def launch(demo: Tool, browser: requests.Session, version: str) -> LaunchContext:
    """The learner's launch from the demo page, as a browser makes it; the launch context the tool kept."""
    from lti_xblock.views import store

    page = browser.get(demo.url("/demo/"), timeout=10)
    assert page.status_code == 200 and 'href="/demo/gradebook"' in page.text
    response = browser.post(
        demo.url("/demo/launch"),
        data={"content_id": demo.content_id, "role": "learner", "version": version},
        timeout=10,
    )
    for _ in range(3):  # the auto-submitting forms
        if AUTOSUBMIT not in response.text:
            break
        action, fields = parse_autosubmit_form(response.text)
        response = browser.post(action, data=fields, timeout=10)
    assert response.status_code == 200 and response.url.endswith(f"/content/{demo.content_id}/"), response.text[:500]
    platform = CONSUMER_KEY if version == "1.1" else issuer(demo.base_url)
    [context] = [c for c in store.find_launch_contexts(content_id=demo.content_id) if c.platform == platform]
    return context


def deliver(score_given: float, context: LaunchContext) -> None:
    """A score for the learner, enqueued in the tool's outbox and delivered by the grade worker."""
    from lti_xblock.views import store

    enqueue_grade(store, context, score_given, 10, True, time.time())
    with GradeWorker(store, UrllibTransport(), ToolKeySet(store), allow_private=True, concurrency=1) as worker:
        summary = worker.deliver_due()
    assert (summary.claimed, summary.delivered) == (1, 1), (summary, store.list_outbox())


def gradebook_row(demo: Tool, service: str, activity: str = "Published content: fractions") -> list[str]:
    """The cells of the gradebook page's row for the learner's score in ``activity`` received by ``service``."""
    page = requests.get(demo.url("/demo/gradebook"), timeout=10)
    assert page.status_code == 200 and 'http-equiv="refresh"' in page.text
    rows = re.findall(rf'<tr class="lti-demo__score" data-service="{service}">(.*?)</tr>', page.text, re.S)
    cells = [
        [re.sub(r"<[^>]+>", "", td).strip() for td in re.findall(r"<td[^>]*>(.*?)</td>", row, re.S)] for row in rows
    ]
    learner_rows = [row for row in cells if row[:2] == [activity, f"Ada Lovelace ({LEARNER_ID})"]]
    assert len(learner_rows) == 1, page.text
    return learner_rows[0]


def test_an_lti13_launch_offers_ags_and_the_gradebook_shows_the_score_delivered(demo, browser, monkeypatch):
    context = launch(demo, browser, "1.3")
    offered = context.services.ags
    assert offered is not None and context.client_id == CLIENT_ID
    assert offered.lineitem_url.startswith(f"{issuer(demo.base_url)}/mod/lti/services.php/2/lineitems/")
    assert offered.lineitem_url.endswith("/lineitem?type_id=1") and offered.lineitems_url
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in offered.scopes
    # Launching again: the same line item (made at the link's first launch).
    assert launch(demo, browser, "1.3").services.ags == offered

    deliver(7, context)
    activity, learner, score, maximum, progress, grading, received, service = gradebook_row(demo, "AGS")
    assert (activity, score, maximum, progress, grading, service) == (
        "Published content: fractions",
        "7",
        "10",
        "Completed",
        "FullyGraded",
        "AGS",
    )
    assert re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC", received)

    deliver(9, context)  # the latest score wins
    assert gradebook_row(demo, "AGS")[2] == "9"

    # After a restart, the gradebook still holds the score, and the line item takes the next one.
    restart_the_platform(monkeypatch)
    assert gradebook_row(demo, "AGS")[2] == "9"
    deliver(10, context)
    assert gradebook_row(demo, "AGS")[2] == "10"


def test_an_lti11_launch_offers_basic_outcomes_and_the_gradebook_shows_the_score_delivered(demo, browser, monkeypatch):
    context = launch(demo, browser, "1.1")
    outcome = context.services.basic_outcome
    assert outcome is not None and outcome.service_url == f"{issuer(demo.base_url)}/mod/lti/service.php"
    assert context.services.ags is not None and "/lineitem?type_id=1" in context.services.ags.lineitem_url

    restart_the_platform(monkeypatch)  # the sourcedid the launch gave is still the platform's
    deliver(7, context)
    row = gradebook_row(demo, "LTI 1.1")
    assert row[0] == "Published content: fractions" and row[2:4] == ["0.7", "1"] and row[7] == "LTI 1.1"


def test_the_grade_services_refuse_what_they_cannot_accept(demo):
    base = issuer(demo.base_url)
    no_token = requests.post(f"{base}/mod/lti/services.php/2/lineitems?type_id=1", timeout=10)
    assert no_token.status_code == 401 and no_token.json()["reason"] == "no bearer token"
    unknown_tool = requests.get(f"{base}/mod/lti/services.php/2/lineitems?type_id=99", timeout=10)
    assert unknown_tool.status_code == 404
    bad_assertion = requests.post(
        f"{base}/token", data={"grant_type": "client_credentials", "client_assertion": "not-a-jwt"}, timeout=10
    )
    assert bad_assertion.status_code == 401 and bad_assertion.json()["error"] == "invalid_client"
    unsigned = requests.post(f"{base}/mod/lti/service.php", data=b"<x/>", timeout=10)
    assert unsigned.status_code == 200 and "imsx_codeMajor>failure<" in unsigned.text  # as Moodle answers


def test_the_demo_hub_gets_a_gradebook_of_its_own(demo, browser, monkeypatch):
    """The hub's launches carry its own line item (type_id 2); its token comes from its own key set."""
    hub_keys = ToolKeySet(MemoryStore())
    hub_keys.ensure_key()
    with serve_tool_jwks(hub_keys.jwks) as jwks_url:
        hub = HubLti13Urls(jwks_url.removesuffix("jwks"))  # its key set is at .../hub/lti13/jwks: any path here
        monkeypatch.setenv(HUB_URL_ENV, hub.base)
        login = browser.post(demo.url("/demo/launch"), data={"role": "learner", "tool": "jupyterhub"}, timeout=10)
        action, fields = parse_autosubmit_form(login.text)
        assert action == hub.login
        # The hub's authentication request, and the id_token the platform answers it with.
        answer = browser.post(
            demo.url("/demo/platform/auth"),
            data={
                "client_id": HUB_CLIENT_ID,
                "redirect_uri": hub.launch,
                "response_type": "id_token",
                "response_mode": "form_post",
                "scope": "openid",
                "nonce": "n-1",
                "state": "s-1",
                "login_hint": fields["login_hint"],
                "lti_message_hint": fields["lti_message_hint"],
            },
            timeout=10,
        )
        _, form = parse_autosubmit_form(answer.text)
        claims = jwt.decode(form["id_token"], options={"verify_signature": False})
        offered = claims["https://purl.imsglobal.org/spec/lti-ags/claim/endpoint"]
        assert offered["lineitem"].endswith("/lineitem?type_id=2") and offered["lineitems"].endswith("?type_id=2")

        # The hub's outbox (here a MemoryStore with the demo platform registered as the hub registers it).
        store = MemoryStore()
        base = issuer(demo.base_url)
        store.save_registration(
            Registration(base, HUB_CLIENT_ID, f"{base}/auth", f"{base}/token", f"{base}/jwks", (Deployment("1"),))
        )
        context = LaunchContext(
            base,
            claims["sub"],
            "ada",
            claims["https://purl.imsglobal.org/spec/lti/claim/resource_link"]["id"],
            client_id=HUB_CLIENT_ID,
            services=LaunchServices(
                ags=AgsEndpoint(offered["lineitems"], offered["lineitem"], tuple(offered["scope"]))
            ),
        )
        enqueue_grade(store, context, 3, 4, True, time.time())
        with GradeWorker(store, UrllibTransport(), hub_keys, allow_private=True) as worker:
            assert worker.deliver_due().delivered == 1, store.list_outbox()
    row = gradebook_row(demo, "AGS", activity="JupyterHub: welcome notebook")
    assert row[2:6] == ["3", "4", "Completed", "FullyGraded"]
