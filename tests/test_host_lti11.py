"""LTI 1.1 launches into the workbench host over real HTTP, signed by oauthlib as Moodle signs them."""

from __future__ import annotations

import time

import pytest
import requests
from django.contrib.auth import get_user_model

from lti_peer import DELETE
from lti_peer.lti11 import ADMINISTRATOR, INSTRUCTOR, moodle_lti11_params, sign_lti11_launch
from lti_xblock import models as m
from tests.test_host_lti13 import written_rows


def post(browser: requests.Session, url: str, body: dict[str, str], **kwargs) -> requests.Response:
    return browser.post(url, data=body, allow_redirects=False, **kwargs)


def test_moodle_lti11_launch_signs_the_learner_in(browser, tool):
    url = tool.details.lti11_tool_url
    assert url.endswith("/ltiaccess")
    body = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, moodle_lti11_params())
    response = post(browser, url, body)
    assert response.status_code == 302, response.text
    page = browser.get(tool.url(response.headers["Location"]))
    assert page.status_code == 200 and "(learner)" in page.text
    link = m.LtiUserLink.objects.get()
    assert (link.platform, link.platform_user_id) == (tool.consumer.key, "2")


def test_same_user_on_every_launch_and_per_consumer(browser, tool):
    url = tool.details.lti11_tool_url
    for _ in range(2):
        body = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, moodle_lti11_params())
        assert post(requests.Session(), url, body).status_code == 302
    assert get_user_model().objects.count() == 1
    from lti_core.types import Consumer
    from lti_xblock.views import store

    store.save_consumer(Consumer("other-moodle", "other-secret", "Other"))
    body = sign_lti11_launch(url, "other-moodle", "other-secret", moodle_lti11_params())
    assert post(browser, url, body).status_code == 302
    assert get_user_model().objects.count() == 2  # user_id "2" on another consumer is another person


@pytest.mark.parametrize(
    ("roles", "expected"),
    [
        (INSTRUCTOR, "staff"),
        (ADMINISTRATOR, "staff"),
        ("Learner", "learner"),
        ("urn:lti:role:ims/lis/Learner", "learner"),
    ],
)
def test_roles_map_to_rights(browser, tool, roles, expected):
    url = tool.details.lti11_tool_url
    body = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, moodle_lti11_params(roles=roles))
    assert post(browser, url, body).status_code == 302
    assert m.LtiContentEnrollment.objects.get().role == expected


def test_behind_a_tls_proxy_the_public_url_is_what_was_signed(browser, tool, settings):
    trust_the_test_client_as_proxy(settings)
    public = f"https://tool.example/lti_publish/content/{tool.content_id}/ltiaccess"
    body = sign_lti11_launch(public, tool.consumer.key, tool.consumer.secret, moodle_lti11_params())
    headers = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "tool.example"}
    response = post(browser, tool.details.lti11_tool_url, body, headers=headers)
    assert response.status_code == 302, response.text


REFUSALS = [
    ("bad signature", {"secret": "wrong-secret"}, "bad_signature", 401),
    ("unknown consumer key", {"key": "nobody"}, "unknown_consumer", 401),
    ("old timestamp", {"timestamp": int(time.time()) - 3600}, "timestamp_out_of_window", 401),
    ("future timestamp", {"timestamp": int(time.time()) + 3600}, "timestamp_out_of_window", 401),
    ("missing lti_message_type", {"params": {"lti_message_type": DELETE}}, "unsupported_message_type", 400),
    ("missing lti_version", {"params": {"lti_version": DELETE}}, "invalid_version", 400),
    ("missing resource_link_id", {"drop": "resource_link_id"}, "resource_link_missing", 400),
    ("missing user_id", {"drop": "user_id"}, "user_id_missing", 400),
]


@pytest.mark.parametrize(("case", "tweak", "reason", "status"), REFUSALS, ids=[r[0] for r in REFUSALS])
def test_refused_lti11_launch(browser, tool, case, tweak, reason, status):
    url = tool.details.lti11_tool_url
    params = moodle_lti11_params(**tweak.get("params", {}))
    params.pop(tweak.get("drop", ""), None)
    body = sign_lti11_launch(
        url,
        tweak.get("key", tool.consumer.key),
        tweak.get("secret", tool.consumer.secret),
        params,
        timestamp=tweak.get("timestamp"),
    )
    before = written_rows()
    response = post(browser, url, body)
    assert response.status_code == status, (case, response.text[:300])
    assert f"<code>{reason}</code>" in response.text and "Traceback" not in response.text
    assert written_rows() == before


def test_replayed_nonce_is_refused_and_writes_nothing(browser, tool):
    url = tool.details.lti11_tool_url
    body = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, moodle_lti11_params())
    assert post(browser, url, body).status_code == 302
    before = written_rows()
    replay = post(requests.Session(), url, body)
    assert replay.status_code == 401 and "<code>nonce_reused</code>" in replay.text
    assert written_rows() == before


def test_forged_request_does_not_burn_the_nonce(browser, tool):
    url = tool.details.lti11_tool_url
    nonce = "nonce-under-attack"
    forged = sign_lti11_launch(url, tool.consumer.key, "guessed-secret", moodle_lti11_params(), nonce=nonce)
    assert post(browser, url, forged).status_code == 401
    genuine = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, moodle_lti11_params(), nonce=nonce)
    assert post(browser, url, genuine).status_code == 302


def test_unpublished_content_is_404_and_writes_nothing(browser, tool):
    url = tool.url("/lti_publish/content/not-published/ltiaccess")
    body = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, moodle_lti11_params())
    before = written_rows()
    response = post(browser, url, body)
    assert response.status_code == 404 and "<code>unknown_content</code>" in response.text
    assert written_rows() == before


def test_get_on_the_tool_url_is_refused_cleanly(browser, tool):
    response = browser.get(tool.details.lti11_tool_url)
    assert response.status_code == 405 and "<code>method_not_allowed</code>" in response.text


def test_content_page_needs_a_launch(browser, tool):
    response = browser.get(tool.details.lti13_target_link_uri)
    assert response.status_code == 401 and "<code>not_signed_in</code>" in response.text


# -- forwarded headers: believed from LTI_PUBLISH["TRUSTED_PROXIES"] only (lti_xblock.proxy) --------------


def trust_the_test_client_as_proxy(settings) -> None:
    """The live server's peer (this test, on loopback) stands for the TLS-terminating proxy."""
    settings.LTI_PUBLISH = {**settings.LTI_PUBLISH, "TRUSTED_PROXIES": ["127.0.0.1", "::1"]}
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "tool.example"]


def other_tool_launch(tool, scheme: str = "http") -> dict[str, str]:
    """A genuine launch, signed by the consumer for another tool that shares its key and secret."""
    url = f"{scheme}://other-tool.example/lti_publish/content/{tool.content_id}/ltiaccess"
    return sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, moodle_lti11_params())


SPOOFED = [
    {"X-Forwarded-Host": "other-tool.example"},
    {"X-Forwarded-Host": "other-tool.example", "X-Forwarded-Proto": "https"},
    {"X-Forwarded-Host": "tool.example, other-tool.example", "X-Forwarded-For": "127.0.0.1"},
]


@pytest.mark.parametrize("headers", SPOOFED)
def test_a_launch_for_another_tool_with_its_forwarded_host_is_refused(browser, tool, headers):
    scheme = headers.get("X-Forwarded-Proto", "http")
    before = written_rows()
    response = post(browser, tool.details.lti11_tool_url, other_tool_launch(tool, scheme), headers=headers)
    assert response.status_code == 401 and "<code>bad_signature</code>" in response.text
    assert written_rows() == before


def test_forwarded_headers_from_a_peer_not_listed_are_ignored(browser, tool, settings):
    settings.LTI_PUBLISH = {**settings.LTI_PUBLISH, "TRUSTED_PROXIES": ["10.0.0.0/8"]}
    settings.ALLOWED_HOSTS = [*settings.ALLOWED_HOSTS, "other-tool.example"]
    before = written_rows()
    response = post(browser, tool.details.lti11_tool_url, other_tool_launch(tool), headers=SPOOFED[0])
    assert response.status_code == 401 and "<code>bad_signature</code>" in response.text
    assert written_rows() == before


def test_a_host_header_not_allowed_is_refused_before_the_launch(browser, tool):
    before = written_rows()
    headers = {"Host": "other-tool.example"}
    response = post(browser, tool.details.lti11_tool_url, other_tool_launch(tool), headers=headers)
    assert response.status_code == 400
    assert written_rows() == before


def test_behind_a_trusted_proxy_chain_the_public_url_is_the_nearest_proxys(browser, tool, settings):
    """Two hops: the test client is the inner proxy; X-Forwarded-For names the outer one (trusted too)."""
    trust_the_test_client_as_proxy(settings)
    settings.LTI_PUBLISH["TRUSTED_PROXIES"].append("10.0.0.0/8")
    public = f"https://tool.example/lti_publish/content/{tool.content_id}/ltiaccess"
    body = sign_lti11_launch(public, tool.consumer.key, tool.consumer.secret, moodle_lti11_params())
    headers = {
        "X-Forwarded-For": "203.0.113.9, 10.0.0.2",
        # What the client sent first, then what the proxies set: the last entries count.
        "X-Forwarded-Proto": "http, https",
        "X-Forwarded-Host": "other-tool.example, tool.example",
    }
    response = post(browser, tool.details.lti11_tool_url, body, headers=headers)
    assert response.status_code == 302, response.text
    assert m.LtiUserLink.objects.count() == 1


def test_launch_context_keeps_the_outcome_service_and_the_latest_launch_wins(browser, tool):
    """LTI 1.1 Basic Outcomes: where and under what sourcedid a grade job posts later, per user and link."""
    from lti_xblock.views import store

    url = tool.details.lti11_tool_url
    params = moodle_lti11_params()
    body = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, params)
    assert post(browser, url, body).status_code == 302
    row = m.LtiLaunchContext.objects.get()
    link = m.LtiUserLink.objects.get()
    assert (row.platform, row.platform_user_id, row.resource_link_id, row.user_id) == (
        tool.consumer.key,
        "2",
        "1",
        link.user_id,
    )
    assert (row.lti_version, row.context_id) == ("1.1", "2")
    assert row.services["basic_outcome"] == {
        "service_url": params["lis_outcome_service_url"],
        "sourcedid": params["lis_result_sourcedid"],
    }
    saved = store.get_launch_context(tool.consumer.key, "2", "1")
    assert saved is not None and saved.local_user_id == str(link.user_id)
    assert saved.services.basic_outcome is not None
    assert saved.services.basic_outcome.sourcedid == params["lis_result_sourcedid"]

    # The same link launched again, with a new sourcedid and as staff: the same row, updated.
    again_params = moodle_lti11_params(roles=INSTRUCTOR, lis_result_sourcedid='{"data":{"launchid":2}}')
    body = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, again_params)
    assert post(requests.Session(), url, body).status_code == 302
    again = m.LtiLaunchContext.objects.get()
    assert again.pk == row.pk and again.updated_at >= row.updated_at and again.role == "staff"
    assert again.services["basic_outcome"]["sourcedid"] == '{"data":{"launchid":2}}'
