"""Deep linking in the workbench host ("Published content") over real HTTP: an instructor's "Select
content" from the platform peer (LTI 1.3 LtiDeepLinkingRequest, LTI 1.1 ContentItemSelectionRequest)
signs them in and lands on the published content they may add. End to end, in both versions: the
workbench's two published blocks are picked, one with "Add to gradebook"; the browser posts the signed
answer to the peer's return endpoint (Moodle's contentitem_return.php: pyjwt against the tool's JWKS,
oauthlib's server-side functions for LTI 1.1), which makes the resource links and the line item; a
learner launches each created link and lands on its block, answers its problems, and the grade worker
delivers the graded one's score to exactly its line item (LTI 1.1: its outcome), nothing for the other.
Refusals are pages with a reason, and write nothing.
"""

from __future__ import annotations

import html
import json
import re
from typing import Any
from urllib.parse import urljoin

import jwt as pyjwt
import requests
from workbench.scenarios import get_scenarios

from lti_peer import DELETE
from lti_peer.ags import Gradebook
from lti_peer.claims import INSTRUCTOR_ROLES, LEARNER_ROLES, deep_linking_settings
from lti_peer.deep_linking import CreatedLink
from lti_peer.lti11 import INSTRUCTOR, LEARNER, moodle_lti11_params, sign_lti11_launch
from lti_peer.platform import PlatformPeer, parse_autosubmit_form
from lti_xblock import models as m
from tests.conftest import Tool
from tests.test_host_lti13 import written_rows
from tests.test_xblock_grades import answer, book, deliver, problem_ids, user_pk

__all__ = ["book"]  # the platform's gradebook fixture, shared with the grade tests

CONTENT_ITEMS = "https://purl.imsglobal.org/spec/lti-dl/claim/content_items"
DL_DATA = "https://purl.imsglobal.org/spec/lti-dl/claim/data"
DL_ERROR = "https://purl.imsglobal.org/spec/lti-dl/claim/errormsg"
MESSAGE_TYPE = "https://purl.imsglobal.org/spec/lti/claim/message_type"
#: The workbench's second published block (the first is ``tool.content_id``).
SECOND_SCENARIO = "lti-publish: published content 2"
#: What each published block's page shows: (title, a line of its content).
SHOWN = {
    "lti-publish: published content": ("Published content: fractions", "Adding fractions that share"),
    SECOND_SCENARIO: ("Published content: decimals", "How many hundredths make"),
}


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
        "deep_linking_settings": deep_linking_settings(platform.deep_linking.return_url, data="_2_abc"),
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


def learner_lands_on(tool: Tool, response: requests.Response, browser: requests.Session, content_id: str = "") -> str:
    """The launch's landing page: ``content_id``'s (by default the tool's first), seen as a learner."""
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["Location"].endswith(f"/lti_publish/content/{content_id or tool.content_id}/")
    page = browser.get(urljoin(tool.base_url + "/", response.headers["Location"]))
    assert page.status_code == 200 and "(learner)" in page.text, page.text[:2000]
    return page.text


def published_blocks(tool: Tool) -> dict[str, tuple[str, str]]:
    """The workbench's published blocks, in the picker's order: content id -> (title, a line of its content)."""
    scenarios = {scenario.description: str(scenario.usage_id) for scenario in get_scenarios().values()}
    assert scenarios["lti-publish: published content"] == tool.content_id
    return {scenarios[description]: shown for description, shown in SHOWN.items()}


def picker_items(page: requests.Response) -> tuple[list[str], list[str]]:
    """The picker's items, and those offered "Add to gradebook"."""
    items = re.findall(r'type="(?:checkbox|radio)" name="item" value="([^"]+)"', page.text)
    return items, re.findall(r'name="gradebook" value="([^"]+)"', page.text)


def answer_every_problem(learner: requests.Session, tool: Tool, platform: str, user_id: str) -> None:
    """The learner answers every problem of both published blocks, right."""
    for content_id in published_blocks(tool):
        for problem in problem_ids(tool, content_id):
            answer(learner, tool, problem, user_pk(platform, user_id), right=True)


def created_links(platform: PlatformPeer, book: Gradebook, fields: dict[str, str], browser: requests.Session) -> Any:
    """The auto-submitted answer, as the browser posts it to the peer's return endpoint: the two links it
    made (the first without a line item, the second with one) and the one line item."""
    created = browser.post(platform.deep_linking.return_url, data=fields, allow_redirects=False, timeout=30)
    assert created.status_code == 200 and "Content added" in created.text, created.text
    assert platform.deep_linking.log == ["ok"]
    ungraded, graded = platform.deep_links
    (column,) = book.items.values()
    assert (ungraded.lineitem, graded.lineitem) == ("", book.item_url(column))
    return ungraded, graded, column


# -- LTI 1.3 -------------------------------------------------------------------------------------


def test_two_picked_items_become_links_that_land_on_their_blocks_and_one_score_reaches_its_line_item(
    browser, tool, platform, book
):
    blocks = published_blocks(tool)
    fractions, decimals = blocks
    claims = {"sub": "7", "roles": list(INSTRUCTOR_ROLES), **platform.deep_linking.request_claims(data="_2_abc")}
    page = open_picker(browser, tool, launch13(browser, tool, platform, tool.url("/lti_publish/"), claims))
    assert "Published content" in page.text
    assert picker_items(page) == ([fractions, decimals], [fractions, decimals])
    # Signed in, but no rights on content nor launch context for a request to pick content.
    assert m.LtiContentEnrollment.objects.count() == 0 and m.LtiLaunchContext.objects.count() == 0

    sent = submit(browser, tool, page, "add", item=[fractions, decimals], gradebook=[decimals])
    assert sent.status_code == 200, sent.text[:2000]
    assert "Content added" in sent.text and "out of 100" in sent.text and ".submit()" in sent.text
    action, fields = parse_autosubmit_form(sent.text)
    assert action == platform.deep_linking.return_url and list(fields) == ["JWT"]
    body = decode_response(tool, platform, fields["JWT"])
    assert body["iss"] == platform.client_id and body[MESSAGE_TYPE] == "LtiDeepLinkingResponse"
    assert body[DL_DATA] == "_2_abc"
    assert body[CONTENT_ITEMS] == [
        {
            "type": "ltiResourceLink",
            "title": "Published content: fractions",
            "url": f"{tool.base_url}/lti_publish/content/{fractions}/",
            "custom": {"content_id": fractions},
        },
        {
            "type": "ltiResourceLink",
            "title": "Published content: decimals",
            "url": f"{tool.base_url}/lti_publish/content/{decimals}/",
            "custom": {"content_id": decimals},
            "lineItem": {"scoreMaximum": 100.0, "label": "Published content: decimals", "resourceId": decimals},
        },
    ]
    fractions_link, decimals_link, column = created_links(platform, book, fields, browser)
    assert [(link.url, dict(link.custom)) for link in (fractions_link, decimals_link)] == [
        (item["url"], item["custom"]) for item in body[CONTENT_ITEMS]
    ]
    assert (column.label, column.score_maximum, column.resource_link_id, column.resource_id) == (
        "Published content: decimals",
        100.0,
        decimals_link.id,
        decimals,
    )

    # A learner launches each created link from the course (its URL, custom parameters, AGS claim).
    with requests.Session() as learner:
        for link, content_id in ((fractions_link, fractions), (decimals_link, decimals)):
            claims = {"sub": "8", "roles": list(LEARNER_ROLES), **platform.deep_linking.launch_claims(link)}
            landed = learner_lands_on(tool, launch13(learner, tool, platform, link.url, claims), learner, content_id)
            title, text = blocks[content_id]
            assert f"<title>{title}</title>" in landed and text in landed
        answer_every_problem(learner, tool, platform.issuer, "8")
    assert {c.resource_link_id: c.content_id for c in m.LtiLaunchContext.objects.all()} == {
        fractions_link.id: fractions,
        decimals_link.id: decimals,
    }
    # The graded link's score reaches its line item; the other link has none, and gets nothing.
    assert deliver().delivered == 1
    kept = book.score_of(decimals_link.lineitem, "8")
    assert kept is not None and (kept.score_given, kept.score_maximum, kept.grading_progress) == (
        100.0,
        100.0,
        "FullyGraded",
    )
    assert list(book.scores) == [(column.number, "8")] and len(book.items) == 1


def test_without_the_gradebook_and_one_item_only(browser, tool, platform):
    one_item = deep_linking_settings(platform.deep_linking.return_url, accept_multiple=False, accept_lineitem=False)
    page = open_picker(browser, tool, select_content(browser, tool, platform, deep_linking_settings=one_item))
    assert picker_items(page) == (list(published_blocks(tool)), [])
    assert 'type="checkbox" name="item"' not in page.text  # one of them: radio buttons
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
    assert action == platform.deep_linking.return_url and body[CONTENT_ITEMS] == [] and body[DL_ERROR]


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


def content_item_request(
    tool: Tool, browser: requests.Session, platform: PlatformPeer, roles: str = INSTRUCTOR
) -> requests.Response:
    """Moodle's "Select content" for an LTI 1.1 tool, returning to the peer's endpoint."""
    url = tool.details.lti11_tool_url
    params = moodle_lti11_params(
        roles=roles,
        user_id="17",
        lti_message_type="ContentItemSelectionRequest",
        content_item_return_url=platform.deep_linking.return_url,
        accept_media_types="application/vnd.ims.lti.v1.ltilink",
        accept_presentation_document_targets="frame,iframe,window",
        accept_multiple="true",
        data=platform.deep_linking.expect("_3_xyz"),
    )
    form = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, params)
    return browser.post(url, data=form, allow_redirects=False)


def lti11_launch(learner: requests.Session, tool: Tool, platform: PlatformPeer, link: CreatedLink) -> requests.Response:
    """A learner's launch of an LTI 1.1 link: its custom parameters as custom_<name>, and an outcome
    service for a graded link only (as Moodle sends)."""
    outcome = platform.outcomes.issue("18", link.id) if link.lineitem else (DELETE, DELETE)
    params = moodle_lti11_params(
        link.id,
        LEARNER,
        "18",
        lis_outcome_service_url=outcome[0],
        lis_result_sourcedid=outcome[1],
        **{f"custom_{name}": value for name, value in link.custom.items()},
    )
    form = sign_lti11_launch(link.url, tool.consumer.key, tool.consumer.secret, params)
    return learner.post(link.url, data=form, allow_redirects=False)


def test_lti11_two_picked_items_come_back_signed_and_one_score_reaches_its_outcome(browser, tool, platform, book):
    blocks = published_blocks(tool)
    fractions, decimals = blocks
    page = open_picker(browser, tool, content_item_request(tool, browser, platform))
    assert picker_items(page) == ([fractions, decimals], [fractions, decimals])
    sent = submit(browser, tool, page, "add", item=[fractions, decimals], gradebook=[decimals])
    assert sent.status_code == 200, sent.text[:2000]
    action, fields = parse_autosubmit_form(sent.text)
    assert action == platform.deep_linking.return_url and fields["lti_message_type"] == "ContentItemSelection"
    assert fields["data"] == "_3_xyz" and fields["oauth_consumer_key"] == tool.consumer.key
    graph = json.loads(fields["content_items"])["@graph"]
    assert [(g["url"], g["custom"], "lineItem" in g) for g in graph] == [
        (f"{tool.base_url}/lti_publish/content/{fractions}/ltiaccess", {"content_id": fractions}, False),
        (f"{tool.base_url}/lti_publish/content/{decimals}/ltiaccess", {"content_id": decimals}, True),
    ]
    assert graph[1]["lineItem"]["scoreConstraints"]["totalMaximum"] == 100
    # The peer checks the signature over the whole form with the consumer's secret (oauthlib).
    fractions_link, decimals_link, column = created_links(platform, book, fields, browser)
    assert {link.lti_version for link in (fractions_link, decimals_link)} == {"1.1"}
    assert (column.label, column.score_maximum, column.resource_id) == ("Published content: decimals", 100.0, decimals)

    with requests.Session() as learner:
        for link, content_id in ((fractions_link, fractions), (decimals_link, decimals)):
            landed = learner_lands_on(tool, lti11_launch(learner, tool, platform, link), learner, content_id)
            title, text = blocks[content_id]
            assert f"<title>{title}</title>" in landed and text in landed
        answer_every_problem(learner, tool, tool.consumer.key, "18")
    assert deliver().delivered == 1
    (sourcedid,) = platform.outcomes.gradebook
    assert f'"instanceid":"{decimals_link.id}"' in sourcedid and platform.outcomes.gradebook[sourcedid] == 1.0
    assert [r.operation for r in platform.outcomes.log] == ["replaceResult"]


def test_lti11_learner_request_is_refused_and_writes_nothing(browser, tool, platform):
    before = written_rows()
    assert_refused(content_item_request(tool, browser, platform, roles=LEARNER), "deep_linking_instructors_only", 403)
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
