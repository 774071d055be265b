"""LTI 1.3 launches into the workbench host over real HTTP, from a Moodle-like platform peer."""

from __future__ import annotations

import html
import re
import time
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import requests
from django.contrib.auth import get_user_model

from lti_peer import DELETE
from lti_peer.platform import INSTRUCTOR_ROLES, PlatformPeer, attacker_key, parse_autosubmit_form
from lti_xblock import models as m
from tests.conftest import Tool, login, registration_of


def written_rows() -> dict[str, int]:
    """Everything a launch may write (login's OIDC state excepted: that is written at login)."""
    return {
        "users": get_user_model().objects.count(),
        "links": m.LtiUserLink.objects.count(),
        "nonces": m.LtiNonce.objects.count(),
        "enrollments": m.LtiContentEnrollment.objects.count(),
        "launch_contexts": m.LtiLaunchContext.objects.count(),
    }


def full_launch(browser: requests.Session, tool: Tool, platform: PlatformPeer, **claims: Any) -> requests.Response:
    """The whole Moodle flow: login POST, the platform's /auth over HTTP, the auto-submitted launch POST."""
    form = platform.login_form(tool.details.lti13_login_url, tool.details.lti13_target_link_uri, claims=claims)
    response = browser.post(tool.details.lti13_login_url, data=form, allow_redirects=False)
    assert response.status_code == 302, response.text
    status, action, fields = platform.authorize_redirect(response.headers["Location"])
    assert status == 200 and action == tool.details.lti13_redirect_uri and "id_token" in fields, fields
    return browser.post(action, data=fields, allow_redirects=False)


def assert_lands_signed_in(browser: requests.Session, tool: Tool, response: requests.Response, who: str) -> str:
    assert response.status_code == 302, response.text
    assert response.headers["Location"].endswith(f"/lti_publish/content/{tool.content_id}/")
    page = browser.get(
        tool.url(response.headers["Location"])
        if response.headers["Location"].startswith("/")
        else response.headers["Location"]
    )
    assert page.status_code == 200
    assert who in page.text
    return page.text


def test_moodle_launch_signs_the_learner_in_onto_the_published_content(browser, tool, platform):
    page = assert_lands_signed_in(
        browser, tool, full_launch(browser, tool, platform), "Signed in as Sam Student (learner)"
    )
    assert 'data-lti-role="learner"' in page
    # The published block's children (workbench problems) are what the learner sees.
    assert "problem" in page.lower()
    link = m.LtiUserLink.objects.get()
    assert (link.platform, link.platform_user_id) == (platform.issuer, "2")
    assert m.LtiContentEnrollment.objects.get(user=link.user).role == "learner"


def test_second_launch_is_the_same_user(browser, tool, platform):
    full_launch(browser, tool, platform)
    with requests.Session() as other_browser:
        assert_lands_signed_in(other_browser, tool, full_launch(other_browser, tool, platform), "Sam Student")
    assert get_user_model().objects.count() == 1
    assert m.LtiUserLink.objects.count() == 1


def test_same_sub_from_another_platform_is_another_user(browser, tool, platform):
    full_launch(browser, tool, platform)
    from lti_xblock.views import store

    with PlatformPeer(redirect_uris=[tool.details.lti13_redirect_uri]) as second:
        store.save_registration(registration_of(second))
        with requests.Session() as other_browser:
            assert_lands_signed_in(other_browser, tool, full_launch(other_browser, tool, second), "Sam Student")
    assert get_user_model().objects.count() == 2


def test_instructor_gets_staff_rights_and_learner_never_does(browser, tool, platform):
    assert_lands_signed_in(
        browser, tool, full_launch(browser, tool, platform, roles=INSTRUCTOR_ROLES, sub="7"), "(staff)"
    )
    with requests.Session() as learner:
        admin_learner = [
            "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",
            "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator",
        ]
        assert_lands_signed_in(
            learner, tool, full_launch(learner, tool, platform, roles=admin_learner, sub="8"), "(learner)"
        )
    roles = dict(m.LtiContentEnrollment.objects.values_list("user__lti_links__platform_user_id", "role"))
    assert roles == {"7": "staff", "8": "learner"}


def test_login_initiation_by_get_works_too(browser, tool, platform):
    form = platform.login_form(tool.details.lti13_login_url, tool.details.lti13_target_link_uri)
    response = browser.get(tool.details.lti13_login_url, params=form, allow_redirects=False)
    assert response.status_code == 302
    status, action, fields = platform.authorize_redirect(response.headers["Location"])
    assert_lands_signed_in(browser, tool, browser.post(action, data=fields, allow_redirects=False), "Sam Student")


def test_login_redirect_carries_what_moodle_checks(browser, tool, platform):
    query = login(browser, tool, platform)
    assert query["redirect_uri"] == tool.details.lti13_redirect_uri  # exactly a registered redirect URI
    assert query["client_id"] == platform.client_id
    assert query["response_type"] == "id_token" and query["response_mode"] == "form_post"
    assert query["scope"] == "openid" and query["prompt"] == "none"
    assert query["state"] and query["nonce"] and query["lti_message_hint"]


def test_steady_launches_fetch_the_platform_jwks_once_and_a_new_kid_once_more(browser, tool, platform):
    for _ in range(4):
        with requests.Session() as b:
            assert full_launch(b, tool, platform).status_code == 302
    assert platform.jwks_fetches == 1
    platform.rotate_key(keep_old=False)  # Brightspace-style rotation: a kid the tool has not seen
    with requests.Session() as b:
        assert full_launch(b, tool, platform).status_code == 302
    assert platform.jwks_fetches == 2


def test_tool_jwks_publishes_public_keys_only(browser, tool):
    response = browser.get(tool.details.lti13_jwks_url)
    assert response.status_code == 200
    assert "max-age" in response.headers["Cache-Control"]
    keys = response.json()["keys"]
    assert keys and all(k["kty"] == "RSA" and k["kid"] and k["alg"] == "RS256" for k in keys)
    assert not any(set(k) & {"d", "p", "q", "dp", "dq", "qi"} for k in keys)


def test_launch_pages_can_be_framed_by_the_platform(browser, tool, platform):
    response = full_launch(browser, tool, platform)
    assert "X-Frame-Options" not in response.headers
    page = browser.get(tool.url(response.headers["Location"]))
    assert "X-Frame-Options" not in page.headers


def test_moodle_sixty_second_token_late_in_its_life_is_accepted(browser, tool, platform):
    query = login(browser, tool, platform)
    token = platform.id_token(query["nonce"], target_link_uri=tool.details.lti13_target_link_uri, now=time.time() - 55)
    response = browser.post(
        tool.details.lti13_redirect_uri, data={"id_token": token, "state": query["state"]}, allow_redirects=False
    )
    assert response.status_code == 302


# -- every launch a tool must refuse (shared/LTI-INTEROP.md): 4xx page, reason code, nothing written ------------

REFUSALS: list[tuple[str, dict[str, Any], str, int]] = [
    ("no kid", {"kid": None}, "kid_missing", 401),
    ("unknown kid after one refetch", {"kid": "not-published"}, "unknown_kid", 401),
    ("bad signature", {"key": "attacker"}, "bad_signature", 401),
    ("alg none", {"alg": "none"}, "alg_not_allowed", 401),
    ("HS256 key confusion", {"alg": "HS256"}, "alg_not_allowed", 401),
    ("wrong iss", {"iss": "https://evil.example"}, "wrong_issuer", 401),
    ("aud not our client id", {"aud": "someone-else"}, "wrong_audience", 401),
    ("several aud without our azp", {"aud": ["CLIENT", "someone-else"]}, "azp_mismatch", 401),
    ("expired", {"now": -3600}, "token_expired", 401),
    ("iat in the future", {"now": 3600}, "issued_in_future", 401),
    ("nonce not ours", {"nonce": "forged-nonce"}, "nonce_mismatch", 401),
    ("unknown deployment", {"deployment_id": "99"}, "unknown_deployment", 403),
    ("missing version", {"version": DELETE}, "invalid_version", 400),
    ("wrong version", {"version": "1.2.0"}, "invalid_version", 400),
    ("missing message_type", {"message_type": DELETE}, "unsupported_message_type", 400),
    ("unknown message_type", {"message_type": "LtiStrangeRequest"}, "unsupported_message_type", 400),
    ("missing roles", {"roles": DELETE}, "roles_missing", 400),
    ("missing resource_link id", {"resource_link": {"title": "no id"}}, "resource_link_missing", 400),
    ("missing sub", {"sub": DELETE}, "sub_missing", 400),
    (
        "target_link_uri outside the tool",
        {"target_link_uri": "https://evil.example/lti_publish/content/x/"},
        "target_link_outside_tool",
        403,
    ),
    (
        "target inside the tool but not content",
        {"target_link_uri": "TOOL/lti_publish/lti13/jwks"},
        "target_link_not_content",
        403,
    ),
    ("unpublished content", {"target_link_uri": "TOOL/lti_publish/content/nope/"}, "unknown_content", 404),
]


@pytest.mark.parametrize(("case", "tweaks", "reason", "status"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_launch(browser, tool, platform, case, tweaks, reason, status):
    query = login(browser, tool, platform)
    tweaks = dict(tweaks)
    nonce = tweaks.pop("nonce", query["nonce"])
    if tweaks.get("key") == "attacker":
        tweaks["key"] = attacker_key()
    if "now" in tweaks:
        tweaks["now"] = time.time() + tweaks["now"]
    if tweaks.get("aud") == ["CLIENT", "someone-else"]:
        tweaks["aud"] = [platform.client_id, "someone-else"]
    target = tweaks.pop("target_link_uri", tool.details.lti13_target_link_uri).replace("TOOL", tool.base_url)
    token = platform.id_token(nonce, target_link_uri=target, **tweaks)
    before = written_rows()
    response = browser.post(
        tool.details.lti13_redirect_uri, data={"id_token": token, "state": query["state"]}, allow_redirects=False
    )
    assert response.status_code == status, (case, response.status_code, response.text[:300])
    assert f"<code>{reason}</code>" in response.text
    assert "Traceback" not in response.text
    assert written_rows() == before


def test_replayed_launch_is_refused(browser, tool, platform):
    query = login(browser, tool, platform)
    token = platform.id_token(query["nonce"], target_link_uri=tool.details.lti13_target_link_uri)
    data = {"id_token": token, "state": query["state"]}
    assert browser.post(tool.details.lti13_redirect_uri, data=data, allow_redirects=False).status_code == 302
    before = written_rows()
    for client in (browser, requests.Session()):
        replay = client.post(tool.details.lti13_redirect_uri, data=data, allow_redirects=False)
        assert replay.status_code == 401 and "<code>state_unknown</code>" in replay.text
    assert written_rows() == before


def test_missing_state_is_refused(browser, tool, platform):
    query = login(browser, tool, platform)
    token = platform.id_token(query["nonce"], target_link_uri=tool.details.lti13_target_link_uri)
    response = browser.post(tool.details.lti13_redirect_uri, data={"id_token": token}, allow_redirects=False)
    assert response.status_code == 400 and "<code>state_missing</code>" in response.text


def repost(client: requests.Session, check_page: requests.Response, **headers: str) -> requests.Response:
    """What the browser check page's script does without platform storage: re-post the launch
    from the tool's origin (a browser adds Sec-Fetch-Site itself)."""
    action, fields = parse_autosubmit_form(check_page.text)
    assert fields["lti_repost"] == "1"
    return client.post(action, data=fields, headers=headers, allow_redirects=False)


def test_login_csrf_state_from_another_browser_is_refused(browser, tool, platform):
    """The attack: the attacker's own id_token and state, posted by a victim's browser."""
    login(browser, tool, platform)  # the victim holds a state cookie of their own
    with requests.Session() as attacker:
        query = login(attacker, tool, platform)
    token = platform.id_token(query["nonce"], target_link_uri=tool.details.lti13_target_link_uri)
    before = written_rows()
    response = browser.post(
        tool.details.lti13_redirect_uri, data={"id_token": token, "state": query["state"]}, allow_redirects=False
    )
    assert response.status_code == 200 and 'name="lti_repost"' in response.text  # the check page, no session
    assert response.headers["Cache-Control"] == "no-store"
    for fetch_site in ("same-origin", "cross-site"):
        refused = repost(browser, response, **{"Sec-Fetch-Site": fetch_site})
        assert refused.status_code == 403 and "<code>state_not_bound</code>" in refused.text
    assert "sessionid" not in browser.cookies
    assert written_rows() == before


def test_forged_repost_with_the_marker_is_refused(browser, tool, platform):
    """An attacker's form can carry lti_repost=1, but not the browser's same-origin headers."""
    with requests.Session() as attacker:
        query = login(attacker, tool, platform)
    token = platform.id_token(query["nonce"], target_link_uri=tool.details.lti13_target_link_uri)
    before = written_rows()
    data = {"id_token": token, "state": query["state"], "lti_repost": "1", "lti_storage_value": query["state"]}
    for headers in ({"Origin": "https://evil.example"}, {"Sec-Fetch-Site": "cross-site"}, {}):
        response = browser.post(tool.details.lti13_redirect_uri, data=data, headers=headers, allow_redirects=False)
        assert response.status_code == 403 and "<code>state_not_bound</code>" in response.text
    assert written_rows() == before


def test_cookie_free_browser_is_offered_a_new_window_that_lands_signed_in(browser, tool, platform):
    """A frame that keeps no cookie: check page, then the refusal with its relaunch link, which in a
    first-party window (cookies kept) runs the login again and lands signed in."""
    query = login(browser, tool, platform)
    browser.cookies.clear()
    token = platform.id_token(query["nonce"], target_link_uri=tool.details.lti13_target_link_uri)
    check = browser.post(
        tool.details.lti13_redirect_uri, data={"id_token": token, "state": query["state"]}, allow_redirects=False
    )
    assert check.status_code == 200
    refused = repost(browser, check, **{"Sec-Fetch-Site": "same-origin"})
    assert refused.status_code == 403 and "<code>state_not_bound</code>" in refused.text
    link = re.search(r'<a class="lti-error__action" href="([^"]+)" target="_blank"', refused.text)
    assert link, refused.text
    relaunch_url = html.unescape(link.group(1))
    assert relaunch_url.startswith(tool.details.lti13_login_url + "?")
    with requests.Session() as window:
        redirect = window.get(relaunch_url, allow_redirects=False)
        assert redirect.status_code == 302 and redirect.headers["Location"].startswith(platform.auth_url)
        auth = {k: v[0] for k, v in parse_qs(urlsplit(redirect.headers["Location"]).query).items()}
        token = platform.id_token(auth["nonce"], target_link_uri=tool.details.lti13_target_link_uri)
        response = window.post(
            tool.details.lti13_redirect_uri, data={"id_token": token, "state": auth["state"]}, allow_redirects=False
        )
        assert response.status_code == 302, response.text[:300]
        assert_lands_signed_in(window, tool, response, "Signed in as Sam Student (learner)")


@pytest.mark.parametrize(
    ("overrides", "reason", "status"),
    [
        ({"target_link_uri": "https://evil.example/"}, "target_link_outside_tool", 403),
        ({"iss": "https://unknown.example"}, "unknown_platform", 401),
        ({"lti_deployment_id": "99"}, "unknown_deployment", 403),
        ({"login_hint": DELETE}, "login_hint_missing", 400),
        ({"login_hint": "x" * 20_000}, "login_hint_invalid", 400),
        ({"lti_message_hint": "\x00"}, "lti_message_hint_invalid", 400),
    ],
)
def test_refused_login_initiation(browser, tool, platform, overrides, reason, status):
    overrides = dict(overrides)
    target = overrides.pop("target_link_uri", tool.details.lti13_target_link_uri)
    form = platform.login_form(tool.details.lti13_login_url, target, **overrides)
    response = browser.post(tool.details.lti13_login_url, data=form, allow_redirects=False)
    assert response.status_code == status and f"<code>{reason}</code>" in response.text


def test_error_page_is_translated(browser, tool, platform):
    response = browser.post(
        tool.details.lti13_redirect_uri,
        data={"id_token": "x"},
        headers={"Accept-Language": "fr"},
        allow_redirects=False,
    )
    assert response.status_code == 400
    assert "<code>state_missing</code>" in response.text
    assert 'lang="fr"' in response.text


def test_autosubmit_form_parser_sanity():
    action, fields = parse_autosubmit_form('<form action="/x" method="post"><input name="a" value="1"></form>')
    assert (action, fields) == ("/x", {"a": "1"})


def test_launch_context_is_kept_per_user_and_link_and_the_latest_launch_wins(browser, tool, platform):
    """What grade and roster jobs read later: the AGS and NRPS endpoints of the user's latest launch."""
    from lti_xblock.views import store

    assert_lands_signed_in(browser, tool, full_launch(browser, tool, platform), "Sam Student")
    row = m.LtiLaunchContext.objects.get()
    link = m.LtiUserLink.objects.get()
    assert (row.platform, row.platform_user_id, row.resource_link_id, row.user_id) == (
        platform.issuer,
        "2",
        "1",
        link.user_id,
    )
    assert (row.context_id, row.deployment_id, row.client_id) == ("2", platform.deployment_id, platform.client_id)
    lineitem = f"{platform.issuer}/mod/lti/services.php/2/lineitems/1/lineitem?type_id=1"
    assert row.services["ags"]["lineitem_url"] == lineitem
    saved = store.get_launch_context(platform.issuer, "2", "1")
    assert saved is not None and saved.local_user_id == str(link.user_id) and saved.role.value == "learner"
    assert saved.services.nrps is not None and saved.services.nrps.versions == ("1.0", "2.0")
    assert saved.services.basic_outcome is None

    # The same link launched again (Moodle has made a new line item meanwhile): the same row, updated.
    new_lineitem = f"{platform.issuer}/mod/lti/services.php/2/lineitems/7/lineitem?type_id=1"
    ags = {"scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"], "lineitem": new_lineitem}
    with requests.Session() as other_browser:
        response = full_launch(other_browser, tool, platform, ags=ags, roles=list(INSTRUCTOR_ROLES))
        assert_lands_signed_in(other_browser, tool, response, "Sam Student")
    again = m.LtiLaunchContext.objects.get()
    assert again.pk == row.pk and again.updated_at >= row.updated_at
    assert again.role == "staff" and again.services["ags"]["lineitem_url"] == new_lineitem
    assert again.services["ags"]["lineitems_url"] == ""
    assert again.services["ags"]["scopes"] == ["https://purl.imsglobal.org/spec/lti-ags/scope/score"]
