"""Deep linking in the workbench host ("Published content") over real HTTP: an instructor's "Select
content" from the platform peer (LTI 1.3 LtiDeepLinkingRequest, LTI 1.1 ContentItemSelectionRequest)
signs them in and lands on the published content they may add; the picked items come back to the
platform signed (checked with pyjwt against the tool's JWKS, and with oauthlib's server-side
functions, as the platform would); a learner launching a created link lands on that content.
Refusals are pages with a reason, and write nothing.

The workbench has one published block: it is picked with "Add to gradebook" in one run and without
it in another.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urljoin, urlsplit

import jwt as pyjwt
import requests
from oauthlib.oauth1.rfc5849 import signature

from lti_peer import DELETE
from lti_peer.claims import INSTRUCTOR_ROLES, LEARNER_ROLES, deep_linking_settings
from lti_peer.lti11 import INSTRUCTOR, LEARNER, moodle_lti11_params, sign_lti11_launch
from lti_peer.platform import PlatformPeer, parse_autosubmit_form
from lti_xblock import models as m
from tests.conftest import Tool
from tests.test_host_lti13 import written_rows
from tests.test_xblock_grades import ags_claim, answer, book, deliver, problem_ids, user_pk

__all__ = ["book"]  # the platform's gradebook fixture, shared with the grade tests

CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DL_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
DL_ERROR = "https://purl.imsglobal.org/spec/lti-dl/claim/errormsg"
MESSAGE_TYPE = "https://purl.imsglobal.org/spec/lti/claim/message_type"
RETURN_11 = "https://moodle.example/mod/lti/contentitem_return.php?course=2&id=3&sesskey=x"


def return_url(platform: PlatformPeer) -> str:
    return platform.issuer + "/mod/lti/contentitem_return.php?course=2&id=2"


def launch13(
    browser: requests.Session, tool: Tool, platform: PlatformPeer, target: str, claims: dict[str, Any]
) -> requests.Response:
    """Login initiation for ``target``, the platform's /auth, the auto-submitted launch POST."""
    form = platform.login_form(tool.details.lti13_login_url, target, claims=claims)
    login = browser.post(tool.details.lti13_login_url, data=form, allow_redirects=False)
    assert login.status_code == 302, login.text[:2000]
    status, action, fields = platform.authorize_redirect(login.headers["Location"])
    assert status == 200 and "id_token" in fields, fields
    return browser.post(action, data=fields, allow_redirects=False)


def select_content(
    browser: requests.Session, tool: Tool, platform: PlatformPeer, *, roles: Any = INSTRUCTOR_ROLES, **changes: Any
) -> requests.Response:
    """Moodle's "Select content": an LtiDeepLinkingRequest to the tool's deep-linking URL (its root)."""
    claims = {
        "sub": "7",
        "roles": list(roles),
        "message_type": "LtiDeepLinkingRequest",
        "resource_link": DELETE,
        "deep_linking_settings": deep_linking_settings(return_url(platform), data="_2_abc"),
        **changes,
    }
    return launch13(browser, tool, platform, tool.url("/lti_publish/"), claims)


def open_picker(browser: requests.Session, tool: Tool, launched: requests.Response) -> requests.Response:
    assert launched.status_code == 302, launched.text[:2000]
    location = launched.headers["Location"]
    assert "/lti_publish/pick/" in location, location
    page = browser.get(urljoin(tool.base_url + "/", location), allow_redirects=False)
    assert page.status_code == 200, page.text[:2000]
    return page


def submit(browser: requests.Session, tool: Tool, page: requests.Response, action: str, **fields: Any) -> Any:
    form_action = re.search(r'<form method="post" action="([^"]+)"', page.text)
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert form_action and csrf, page.text[:2000]
    data = {"csrfmiddlewaretoken": csrf.group(1), "action": action, **fields}
    return browser.post(urljoin(tool.base_url + "/", html.unescape(form_action.group(1))), data=data)


def decode_response(tool: Tool, platform: PlatformPeer, token: str) -> dict[str, Any]:
    """The LtiDeepLinkingResponse as the platform checks it: signed by a key of the tool's JWKS, for it."""
    key_set = pyjwt.PyJWKSet.from_dict(requests.get(tool.details.lti13_jwks_url, timeout=30).json())
    kid = pyjwt.get_unverified_header(token)["kid"]
    key = next(k for k in key_set.keys if k.key_id == kid)
    return pyjwt.decode(token, key.key, algorithms=["RS256"], audience=platform.issuer)


def assert_refused(response: requests.Response, reason: str, status: int) -> None:
    assert response.status_code == status, response.text[:2000]
    assert reason in response.text


def learner_lands_on(tool: Tool, response: requests.Response, browser: requests.Session) -> str:
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["Location"].endswith(f"/lti_publish/content/{tool.content_id}/")
    page = browser.get(urljoin(tool.base_url + "/", response.headers["Location"]))
    assert page.status_code == 200 and "(learner)" in page.text, page.text[:2000]
    return page.text


# -- LTI 1.3 -------------------------------------------------------------------------------------


def test_an_instructor_adds_the_content_to_the_gradebook_and_a_learner_lands_on_it(browser, tool, platform):
    page = open_picker(browser, tool, select_content(browser, tool, platform))
    assert "Published content" in page.text
    assert re.findall(r'type="checkbox" name="item" value="([^"]+)"', page.text) == [tool.content_id]
    assert re.findall(r'name="gradebook" value="([^"]+)"', page.text) == [tool.content_id]
    # Signed in, but no rights on content nor launch context for a request to pick content.
    assert m.LtiContentEnrollment.objects.count() == 0 and m.LtiLaunchContext.objects.count() == 0

    sent = submit(browser, tool, page, "add", item=[tool.content_id], gradebook=[tool.content_id])
    assert sent.status_code == 200, sent.text[:2000]
    assert "Content added" in sent.text and "out of 100" in sent.text and ".submit()" in sent.text
    action, fields = parse_autosubmit_form(sent.text)
    assert action == return_url(platform) and list(fields) == ["JWT"]
    body = decode_response(tool, platform, fields["JWT"])
    assert body["iss"] == platform.client_id and body[MESSAGE_TYPE] == "LtiDeepLinkingResponse"
    assert body[DL_DATA] == "_2_abc"
    assert body[CONTENT_ITEMS] == [
        {
            "type": "ltiResourceLink",
            "title": "Published content: fractions",
            "url": tool.details.lti13_target_link_uri,
            "custom": {"content_id": tool.content_id},
            "lineItem": {"scoreMaximum": 100.0, "label": "Published content: fractions", "resourceId": tool.content_id},
        }
    ]

    # A learner launches the created link as the platform then does: its URL, its custom parameters.
    item = body[CONTENT_ITEMS][0]
    with requests.Session() as learner:
        claims = {"sub": "8", "roles": list(LEARNER_ROLES), "custom": item["custom"]}
        page_text = learner_lands_on(tool, launch13(learner, tool, platform, item["url"], claims), learner)
    assert "problem" in page_text.lower()
    assert m.LtiLaunchContext.objects.get().content_id == tool.content_id


def test_a_learners_score_on_the_created_link_reaches_its_line_item(browser, tool, platform, book):
    page = open_picker(browser, tool, select_content(browser, tool, platform))
    sent = submit(browser, tool, page, "add", item=[tool.content_id], gradebook=[tool.content_id])
    (item,) = decode_response(tool, platform, parse_autosubmit_form(sent.text)[1]["JWT"])[CONTENT_ITEMS]
    # The platform makes the link and its gradebook column from the item, then launches it with AGS.
    column = item["lineItem"]
    lineitem = book.add_lineitem(column["label"], column["scoreMaximum"], resource_link_id="dl-1")
    with requests.Session() as learner:
        claims = {"sub": "8", "roles": list(LEARNER_ROLES), "custom": item["custom"], "ags": ags_claim(lineitem)}
        learner_lands_on(tool, launch13(learner, tool, platform, item["url"], claims), learner)
        answer(learner, tool, problem_ids(tool)[0], user_pk(platform.issuer, "8"), right=True)
    assert deliver().delivered == 1
    kept = book.score_of(lineitem, "8")
    assert kept is not None and (kept.score_given, kept.score_maximum) == (50.0, 100.0)


def test_without_the_gradebook_and_one_item_only(browser, tool, platform):
    launched = select_content(
        browser,
        tool,
        platform,
        deep_linking_settings=deep_linking_settings(return_url(platform), accept_multiple=False, accept_lineitem=False),
    )
    page = open_picker(browser, tool, launched)
    assert 'type="radio" name="item"' in page.text and 'name="gradebook"' not in page.text
    nothing = submit(browser, tool, page, "add")
    assert nothing.status_code == 400 and 'role="alert"' in nothing.text  # the page again, with a hint
    assert_refused(submit(browser, tool, page, "add", item=["no.such.block"]), "unknown_content", 400)
    sent = submit(browser, tool, page, "add", item=[tool.content_id])
    body = decode_response(tool, platform, parse_autosubmit_form(sent.text)[1]["JWT"])
    assert [(i["url"], i["custom"], "lineItem" in i) for i in body[CONTENT_ITEMS]] == [
        (tool.details.lti13_target_link_uri, {"content_id": tool.content_id}, False)
    ]
    assert DL_DATA not in body  # none sent, none echoed


def test_an_instructor_asked_how_to_sign_in_lands_on_the_picker_after_the_prompt(browser, tool, platform, settings):
    from tests.test_xblock_linking import choose

    settings.LTI_PUBLISH = {**settings.LTI_PUBLISH, "PROVISIONING": {"instructor": "existing_and_new_prompt"}}
    prompt = select_content(browser, tool, platform)
    assert prompt.status_code == 200 and "How do you want to continue?" in prompt.text
    page = open_picker(browser, tool, choose(browser, tool, prompt, "new"))
    sent = submit(browser, tool, page, "add", item=[tool.content_id])
    body = decode_response(tool, platform, parse_autosubmit_form(sent.text)[1]["JWT"])
    assert [i["custom"] for i in body[CONTENT_ITEMS]] == [{"content_id": tool.content_id}]
    assert m.LtiUserLink.objects.count() == 1 and m.LtiLaunchContext.objects.count() == 0


def test_a_request_is_answered_once_and_by_its_browser_only(browser, tool, platform):
    page = open_picker(browser, tool, select_content(browser, tool, platform))
    with requests.Session() as other:  # another browser: not its request (not even signed in)
        stranger = other.get(page.url)
        assert stranger.status_code in (401, 403) and "not_signed_in" in stranger.text
    assert submit(browser, tool, page, "add", item=[tool.content_id]).status_code == 200
    assert_refused(submit(browser, tool, page, "add", item=[tool.content_id]), "deep_linking_expired", 403)


def test_cancel_sends_the_error_response(browser, tool, platform):
    page = open_picker(browser, tool, select_content(browser, tool, platform))
    sent = submit(browser, tool, page, "cancel")
    assert sent.status_code == 200 and "Nothing was added" in sent.text
    action, fields = parse_autosubmit_form(sent.text)
    body = decode_response(tool, platform, fields["JWT"])
    assert action == return_url(platform) and body[CONTENT_ITEMS] == [] and body[DL_ERROR]


def test_the_form_needs_the_csrf_token(browser, tool, platform):
    page = open_picker(browser, tool, select_content(browser, tool, platform))
    response = browser.post(page.url, data={"action": "add", "item": tool.content_id})
    assert_refused(response, "csrf_failed", 403)


def test_a_learner_may_not_select_content_and_nothing_is_written(browser, tool, platform):
    before = written_rows()
    assert_refused(select_content(browser, tool, platform, roles=LEARNER_ROLES), "deep_linking_instructors_only", 403)
    assert written_rows() == before


def test_a_request_without_settings_is_refused_and_writes_nothing(browser, tool, platform):
    before = written_rows()
    launched = select_content(browser, tool, platform, deep_linking_settings=DELETE)
    assert_refused(launched, "deep_linking_settings_missing", 400)
    assert written_rows() == before


# -- LTI 1.1 -------------------------------------------------------------------------------------


def content_item_request(tool: Tool, browser: requests.Session, roles: str = INSTRUCTOR) -> requests.Response:
    url = tool.details.lti11_tool_url
    params = moodle_lti11_params(
        roles=roles,
        user_id="17",
        lti_message_type="ContentItemSelectionRequest",
        content_item_return_url=RETURN_11,
        accept_media_types="application/vnd.ims.lti.v1.ltilink",
        accept_presentation_document_targets="frame,iframe,window",
        accept_multiple="true",
        data="_3_xyz",
    )
    form = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, params)
    return browser.post(url, data=form, allow_redirects=False)


def test_lti11_content_item_selection_comes_back_signed(browser, tool):
    page = open_picker(browser, tool, content_item_request(tool, browser))
    sent = submit(browser, tool, page, "add", item=[tool.content_id], gradebook=[tool.content_id])
    assert sent.status_code == 200, sent.text[:2000]
    action, fields = parse_autosubmit_form(sent.text)
    assert action == RETURN_11 and fields["lti_message_type"] == "ContentItemSelection"
    assert fields["data"] == "_3_xyz" and fields["oauth_consumer_key"] == tool.consumer.key
    # The platform's check (oauthlib's server-side functions): the signature over the whole form.
    pairs = [(k, v) for k, v in fields.items() if k != "oauth_signature"]
    collected = signature.collect_parameters(uri_query=urlsplit(RETURN_11).query, body=pairs)
    base = signature.signature_base_string(
        "POST", signature.base_string_uri(RETURN_11), signature.normalize_parameters(collected)
    )

    class Secret:
        client_secret, resource_owner_secret = tool.consumer.secret, ""

    assert signature.sign_hmac_sha1_with_client(base, Secret()) == fields["oauth_signature"]
    graph = json.loads(fields["content_items"])["@graph"]
    assert [(g["url"], g["custom"]) for g in graph] == [(tool.details.lti11_tool_url, {"content_id": tool.content_id})]
    assert graph[0]["lineItem"]["scoreConstraints"]["totalMaximum"] == 100

    # A learner's launch of the created link (Moodle sends custom parameters as custom_<name>).
    url = graph[0]["url"]
    params = moodle_lti11_params(roles=LEARNER, user_id="18", custom_content_id=tool.content_id)
    with requests.Session() as learner:
        response = learner.post(
            url, data=sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, params), allow_redirects=False
        )
        learner_lands_on(tool, response, learner)


def test_lti11_learner_request_is_refused_and_writes_nothing(browser, tool):
    before = written_rows()
    assert_refused(content_item_request(tool, browser, roles=LEARNER), "deep_linking_instructors_only", 403)
    assert written_rows() == before


# -- the instructor view ---------------------------------------------------------------------------


def test_an_instructor_launching_content_sees_its_launch_details_and_a_learner_does_not(browser, tool, platform):
    page_of = {}
    for sub, roles in (("7", INSTRUCTOR_ROLES), ("8", LEARNER_ROLES)):
        with requests.Session() as person:
            claims = {"sub": sub, "roles": list(roles)}
            response = launch13(person, tool, platform, tool.details.lti13_target_link_uri, claims)
            assert response.status_code == 302, response.text[:2000]
            page_of[sub] = person.get(urljoin(tool.base_url + "/", response.headers["Location"])).text
    instructor, learner = page_of["7"], page_of["8"]
    assert f"<code>{tool.details.lti13_target_link_uri}</code>" in instructor
    assert f"<code>{tool.details.lti11_tool_url}</code>" in instructor
    assert "LtiPublishInstructor" in instructor and "lti-publish-grades" in instructor  # copy buttons, grade sync
    assert "How many eighths make" in instructor  # the content too, as a preview
    assert '<dl class="lti-launch-details"' not in learner and "LtiPublishInstructor" not in learner
    assert "How many eighths make" in learner


def test_the_blocks_javascript_strings_come_with_their_own_catalog(settings):
    from django.utils import translation

    from lti_publish_assets import static_text
    from lti_xblock.i18n import js_catalog

    script = static_text("js/studio.js")
    with translation.override("fr"):
        french = js_catalog(script)
    assert french.startswith("window.LtiPublishCatalog = ")
    catalog = json.loads(french.split(", ", 1)[1].rsplit(");", 1)[0])
    assert catalog["Copied"] == "Copié" and "Saving…" in catalog
    assert set(catalog) <= set(re.findall(r"gettext\('([^']+)'\)", script))
    with translation.override("en"):
        assert js_catalog(script).endswith(", {});\n")  # nothing to translate in the source language
