"""LTI Dynamic Registration into the workbench host over real HTTP: the Moodle-like platform peer opens
the tool's registration URL, the tool reads the peer's configuration and registers with it, and the
peer then launches through the new registration, once an admin has approved it."""

from __future__ import annotations

import json
import re
import time
from typing import Any

import pytest
import requests

from lti_core.types import RegistrationStatus
from lti_peer.platform import PlatformPeer
from lti_xblock import cli
from lti_xblock import models as m
from tests.conftest import Tool
from tests.test_host_lti13 import assert_lands_signed_in, full_launch


@pytest.fixture
def peer(tool: Tool) -> Any:
    """A platform the tool does not know yet (no registration saved)."""
    with PlatformPeer() as platform:
        yield platform


def registration_rows() -> dict[str, Any]:
    return {
        "registrations": sorted(m.LtiRegistration.objects.values_list("issuer", "client_id", "status")),
        "deployments": sorted(m.LtiDeployment.objects.values_list("registration__client_id", "deployment_id")),
    }


def register(browser: requests.Session, tool: Tool, peer: PlatformPeer, **options: Any) -> requests.Response:
    url = peer.registrar.start_url(tool.details.lti13_registration_url, **options)
    return browser.get(url, allow_redirects=False, timeout=30)


def assert_refused(response: requests.Response, reason: str) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:800])
    assert f"<code>{reason}</code>" in response.text, response.text[:2000]
    assert "Traceback" not in response.text


def launch(browser: requests.Session, tool: Tool, peer: PlatformPeer) -> requests.Response:
    """The Moodle launch; a refusal at login is returned as it is."""
    form = peer.login_form(tool.details.lti13_login_url, tool.details.lti13_target_link_uri)
    response = browser.post(tool.details.lti13_login_url, data=form, allow_redirects=False)
    return response if response.status_code != 302 else full_launch(browser, tool, peer)


def lti_publish(*args: str) -> None:
    cli.main(list(args))


def test_registers_pending_then_launches_once_approved(browser, tool, peer, capsys):
    response = register(browser, tool, peer)
    assert response.status_code == 200, response.text[:2000]
    # The close page: in words, and the close message for the platform's window at its origin only.
    assert "waiting" in response.text.lower() or "approves" in response.text
    assert f"<code>{peer.client_id}</code>" in response.text
    config = json.loads(
        re.search(r'<script id="lti-registration" type="application/json">(.*?)</script>', response.text).group(1)
    )
    assert config == {"platform_origin": peer.issuer, "close_subject": "org.imsglobal.lti.close"}
    assert response.headers["Cache-Control"] == "no-store"
    # What the tool sent: Moodle's checks passed, the scopes Moodle offers that the tool uses.
    (sent,) = peer.registrar.received
    assert sent["initiate_login_uri"] == tool.details.lti13_login_url
    assert sent["redirect_uris"] == [tool.details.lti13_redirect_uri]
    assert sent["jwks_uri"] == tool.details.lti13_jwks_url
    assert "https://purl.imsglobal.org/spec/lti-ags/scope/score" in sent["scope"].split()
    assert all(h.startswith("Bearer ") for h in peer.registrar.configuration_requests)
    # Saved pending, with the platform's new client id and deployment.
    assert registration_rows() == {
        "registrations": [(peer.issuer, peer.client_id, "pending")],
        "deployments": [(peer.client_id, peer.deployment_id)],
    }
    assert_refused(launch(browser, tool, peer), "registration_pending")

    lti_publish("registrations", "list")
    listed = capsys.readouterr().out
    assert f"{peer.issuer}  client_id={peer.client_id}  status=pending  deployments={peer.deployment_id}" in listed
    lti_publish("registrations", "approve", peer.issuer, peer.client_id)
    assert "is now active" in capsys.readouterr().out
    with requests.Session() as learner:
        assert_lands_signed_in(learner, tool, full_launch(learner, tool, peer), "Sam Student")

    lti_publish("registrations", "disable", peer.issuer, peer.client_id)
    with requests.Session() as learner:
        assert_refused(launch(learner, tool, peer), "registration_disabled")


def test_registering_again_updates_and_a_new_tool_type_is_a_new_registration(browser, tool, peer, settings):
    settings.LTI_PUBLISH = {**settings.LTI_PUBLISH, "APPROVE_REGISTRATIONS": False}
    assert "accepted now" in register(browser, tool, peer).text
    first, deployment = peer.client_id, peer.deployment_id
    # Moodle's "update" of that tool type: the same client id and deployment, the row updated.
    assert register(browser, tool, peer, client_id=first).status_code == 200
    assert registration_rows() == {
        "registrations": [(peer.issuer, first, "active")],
        "deployments": [(first, deployment)],
    }
    # A second "Register tool" in Moodle makes another tool type: another client id, another registration.
    assert register(browser, tool, peer).status_code == 200
    assert peer.client_id != first
    assert [r[1] for r in registration_rows()["registrations"]] == sorted([first, peer.client_id])
    with requests.Session() as learner:
        assert_lands_signed_in(learner, tool, full_launch(learner, tool, peer), "Sam Student")


def test_an_approved_registration_registered_again_stays_approved(browser, tool, peer):
    register(browser, tool, peer)
    lti_publish("registrations", "approve", peer.issuer, peer.client_id)
    register(browser, tool, peer, client_id=peer.client_id)
    assert registration_rows()["registrations"] == [(peer.issuer, peer.client_id, RegistrationStatus.ACTIVE.value)]


@pytest.mark.parametrize(
    ("misbehave", "reason"),
    [
        pytest.param({"issuer_override": "http://127.0.0.1:1"}, "registration_issuer_mismatch", id="wrong issuer"),
        pytest.param({"expired": True}, "registration_configuration_unavailable", id="expired token"),
        pytest.param({"reused": True}, "registration_configuration_unavailable", id="reused token"),
        pytest.param({"no_token": True}, "registration_configuration_unavailable", id="no token"),
        pytest.param({"registration_status": 403}, "registration_refused", id="platform 403"),
        pytest.param({"configuration_status": 500}, "registration_configuration_unavailable", id="platform 500"),
    ],
)
def test_each_failure_is_a_clear_page_and_stores_nothing(browser, tool, peer, misbehave, reason):
    options: dict[str, Any] = {}
    if misbehave.pop("expired", False):
        options["now"] = time.time() - 7200
    if misbehave.pop("no_token", False):
        options["token"] = ""
    if misbehave.pop("reused", False):
        token = peer.registrar.issue_token()
        assert register(browser, tool, peer, token=token).status_code == 200
        m.LtiRegistration.objects.all().delete()
        options["token"] = token
    for name, value in misbehave.items():
        setattr(peer.registrar, name, value)
    before = registration_rows()
    response = register(browser, tool, peer, **options)
    assert_refused(response, reason)
    assert registration_rows() == before == {"registrations": [], "deployments": []}


def test_registration_initiation_refusals(browser, tool):
    url = tool.details.lti13_registration_url
    assert_refused(browser.get(url), "openid_configuration_missing")
    assert_refused(
        browser.get(url, params={"openid_configuration": "file:///etc/passwd"}), "openid_configuration_invalid"
    )
    assert_refused(browser.post(url), "method_not_allowed")
    assert registration_rows() == {"registrations": [], "deployments": []}


def test_the_launch_details_show_the_registration_url(tool):
    assert tool.details.lti13_registration_url == tool.base_url + "/lti_publish/lti13/register"
