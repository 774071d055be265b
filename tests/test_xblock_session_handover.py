"""The XBlock host's continue step (``lti_core.handover``) and the LTI 1.1 prompt's cookie check, over
real HTTP: a framed launch (``Sec-Fetch-Dest: iframe``) lands through /lti_publish/continue, a browser
whose frame kept no cookie gets the new window, which signs in once; every refusal writes nothing.
(The real-browser runs are tests/browser/test_no_cookie_frames_chromium.py.)"""

from __future__ import annotations

import html
import re
import time
from typing import Any

import pytest
import requests
from django.contrib.auth import get_user_model

from lti_core.handover import HANDOVER_LIFETIME, TOKEN_PARAM
from lti_core.linking import ProvisioningMode
from lti_peer.lti11 import INSTRUCTOR, moodle_lti11_params, sign_lti11_launch
from tests.test_host_lti13 import written_rows as launch_rows

FRAMED = {"Sec-Fetch-Dest": "iframe"}
NEW_WINDOW = {"Sec-Fetch-Dest": "document"}


def framed_launch(browser: requests.Session, tool: Any, **params: str) -> requests.Response:
    url = tool.details.lti11_tool_url
    body = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, moodle_lti11_params(**params))
    return browser.post(url, data=body, headers=FRAMED, allow_redirects=False)


def continue_url(tool: Any, response: requests.Response) -> str:
    assert response.status_code == 302, response.text[:2000]
    location = response.headers["Location"]
    assert location.startswith(f"/lti_publish/continue?{TOKEN_PARAM}="), location
    return tool.url(location)


def written_rows() -> dict[str, int]:
    """What a launch writes, and the sessions (a refusal signs nobody in)."""
    from django.contrib.sessions.models import Session

    return {**launch_rows(), "sessions": Session.objects.count()}


def assert_refused(response: requests.Response, reason: str, status: int) -> None:
    assert response.status_code == status and reason in response.text, (response.status_code, response.text[:2000])


def test_a_frame_that_keeps_the_session_lands_through_one_more_redirect(browser, tool):
    landing = browser.get(continue_url(tool, framed_launch(browser, tool)), headers=FRAMED, allow_redirects=False)
    assert landing.status_code == 302 and "/lti_publish/content/" in landing.headers["Location"]
    assert "(learner)" in browser.get(tool.url(landing.headers["Location"])).text


def test_an_unframed_launch_lands_straight_on_the_content(browser, tool):
    url = tool.details.lti11_tool_url
    body = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, moodle_lti11_params())
    response = browser.post(url, data=body, headers=NEW_WINDOW, allow_redirects=False)
    assert response.status_code == 302 and "/lti_publish/content/" in response.headers["Location"]


def test_a_frame_without_cookies_offers_a_new_window_which_signs_in_once(tool):
    url = continue_url(tool, framed_launch(requests.Session(), tool))
    with requests.Session() as frame:  # the frame: no cookie came back
        shown = frame.get(url, headers=FRAMED, allow_redirects=False)
        assert shown.status_code == 200 and "cookies_blocked_in_frame" in shown.text
        link = html.unescape(re.search(r'href="([^"]+)" target="_blank"', shown.text).group(1))
        assert link == url and not frame.cookies.get("sessionid")
    with requests.Session() as window:
        landing = window.get(link, headers=NEW_WINDOW, allow_redirects=False)
        assert landing.status_code == 302 and "/lti_publish/content/" in landing.headers["Location"]
        assert "(learner)" in window.get(tool.url(landing.headers["Location"])).text
    before = written_rows()
    with requests.Session() as another:  # the link again, in another window: used up
        assert_refused(another.get(link, headers=NEW_WINDOW, allow_redirects=False), "handover_used", 403)
        assert not another.cookies.get("sessionid")
    assert written_rows() == before


@pytest.mark.parametrize("token", ["", "forged", "gAAAAABmZm9yZ2VkLXRva2VuLXRoYXQtZG9lcy1ub3Qtb3Blbg=="])
def test_a_forged_or_missing_token_is_refused_and_writes_nothing(tool, token):
    before = written_rows()
    with requests.Session() as window:
        url = tool.url(f"/lti_publish/continue?{TOKEN_PARAM}={token}")
        assert_refused(window.get(url, headers=NEW_WINDOW, allow_redirects=False), "handover_invalid", 403)
        assert not window.cookies.get("sessionid")
    assert written_rows() == before


def test_an_expired_token_is_refused(tool):
    from lti_xblock.views import session_handover

    user = get_user_model().objects.create_user("late")
    token = session_handover().issue(str(user.pk), "/", time.time() - HANDOVER_LIFETIME - 1)
    before = written_rows()
    with requests.Session() as window:
        response = window.get(tool.url(f"/lti_publish/continue?{TOKEN_PARAM}={token}"), headers=NEW_WINDOW)
        assert_refused(response, "handover_expired", 403)
    assert written_rows() == before


def test_a_window_signed_in_as_someone_else_is_refused(browser, tool):
    url = continue_url(tool, framed_launch(requests.Session(), tool))
    framed_launch(browser, tool, user_id="99")  # this browser: another platform user, signed in
    before = written_rows()
    assert_refused(browser.get(url, headers=NEW_WINDOW, allow_redirects=False), "handover_other_user", 409)
    assert written_rows() == before


def test_the_continue_step_answers_get_only(browser, tool):
    assert_refused(browser.post(tool.url("/lti_publish/continue")), "method_not_allowed", 405)


# -- the LTI 1.1 prompt in a frame: a cookie check first ---------------------------------------------


@pytest.fixture
def prompting_tool(tool: Any, settings: Any) -> Any:
    settings.LTI_PUBLISH = {
        **settings.LTI_PUBLISH,
        "PROVISIONING": {"instructor": ProvisioningMode.EXISTING_AND_NEW_PROMPT.value},
    }
    return tool


def test_a_framed_lti11_prompt_checks_its_cookie_and_shows_buttons_where_it_came_back(browser, prompting_tool):
    launched = framed_launch(browser, prompting_tool, roles=INSTRUCTOR)
    assert launched.status_code == 302 and "/check?" in launched.headers["Location"], launched.text[:2000]
    check = prompting_tool.url(launched.headers["Location"])
    page = browser.get(check, headers=FRAMED)
    assert page.status_code == 200 and 'value="new"' in page.text, page.text[:2000]
    assert "/window?" in page.text and "then=sign-in" in page.text  # the sign-in opens its own window
    with requests.Session() as frame:  # a frame that dropped the cookie: only the new window
        dropped = frame.get(check, headers=FRAMED)
        assert dropped.status_code == 200 and "<form" not in dropped.text and "Continue in a new window" in dropped.text
        window = html.unescape(re.search(r'href="([^"]*/window\?[^"]*)"', dropped.text).group(1))
    with requests.Session() as new_window:
        prompt = new_window.get(window, headers=NEW_WINDOW)
        assert prompt.status_code == 200 and 'value="new"' in prompt.text, prompt.text[:2000]


def test_a_prompt_check_without_the_launchs_secret_is_refused(prompting_tool):
    launched = framed_launch(requests.Session(), prompting_tool, roles=INSTRUCTOR)
    check = prompting_tool.url(launched.headers["Location"])
    forged = re.sub(r"handover=[^&]+", "handover=forged", check)
    before = written_rows()
    with requests.Session() as frame:
        assert_refused(frame.get(forged, headers=FRAMED), "prompt_not_bound", 403)
    assert written_rows() == before
