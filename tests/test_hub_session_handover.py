"""The hub's continue step (``lti_core.handover``, /hub/lti/continue) and the LTI 1.1 prompt's cookie
check (/hub/lti/link/<id>/check), over real HTTP on tests/test_hub_linking.py's hub: a framed launch
(``Sec-Fetch-Dest: iframe``) lands through the continue step, a frame that kept no cookie gets the new
window, which signs in once; every refusal writes nothing and signs nobody in. (The real-browser runs
are tests/browser/test_no_cookie_frames_chromium.py.)"""

from __future__ import annotations

import html
import re
from urllib.parse import urljoin

import pytest
import requests

from lti_core.handover import TOKEN_PARAM
from lti_peer.lti11 import INSTRUCTOR
from tests import test_hub_linking
from tests.test_hub_linking import (
    MOODLE11_KEY,
    MOODLE11_SECRET,
    PROMPT11_KEY,
    PROMPT11_SECRET,
    assert_landed,
    follow,
    links,
    step,
    whoami,
)
from tests.test_hub_lti import assert_refused, launch11, new_user_id, user_names

# test_hub_linking's hub and platforms (a hub of this module's own, started once).
hub, peers = test_hub_linking.hub, test_hub_linking.peers

pytestmark = pytest.mark.slow

FRAMED = {"Sec-Fetch-Dest": "iframe"}
NEW_WINDOW = {"Sec-Fetch-Dest": "document"}


def framed_launch(browser: requests.Session, hub, user_id: str, **params: str) -> requests.Response:
    return launch11(browser, hub, key=MOODLE11_KEY, secret=MOODLE11_SECRET, user_id=user_id, headers=FRAMED, **params)


def continue_url(hub, response: requests.Response) -> str:
    assert response.status_code == 302, response.text[:2000]
    location = response.headers["Location"]
    assert f"/hub/lti/continue?{TOKEN_PARAM}=" in location, location
    return urljoin(hub.hub_url, location)


def get(browser: requests.Session, url: str, headers: dict[str, str]) -> requests.Response:
    return browser.get(url, headers=headers, allow_redirects=False, timeout=30)


def test_a_frame_that_keeps_the_cookies_lands_through_one_more_redirect(hub):
    with requests.Session() as frame:
        url = continue_url(hub, framed_launch(frame, hub, new_user_id()))
        landing = get(frame, url, FRAMED)
        assert landing.status_code == 302 and "/lti/continue" not in landing.headers["Location"]
        assert whoami(frame, hub)


def test_a_frame_without_cookies_offers_a_new_window_which_signs_in_once(hub):
    before = user_names(hub)
    url = continue_url(hub, framed_launch(requests.Session(), hub, new_user_id()))
    (name,) = user_names(hub) - before
    with requests.Session() as frame:
        shown = get(frame, url, FRAMED)
        assert shown.status_code == 200 and "cookies_blocked_in_frame" in shown.text, shown.text[:2000]
        link = html.unescape(re.search(r'href="([^"]+)" target="_blank"', shown.text).group(1))
        assert link.endswith(url.split("/hub/", 1)[1]) and not whoami(frame, hub)
    with requests.Session() as window:
        landing = get(window, link, NEW_WINDOW)
        assert landing.status_code == 302 and "/lti/continue" not in landing.headers["Location"], landing.text[:2000]
        assert whoami(window, hub) == name
    with requests.Session() as another:
        assert_refused(get(another, link, NEW_WINDOW), "handover_used", 403)
        assert not whoami(another, hub)


@pytest.mark.parametrize("token", ["", "forged", "gAAAAABmZm9yZ2VkLXRva2VuLXRoYXQtZG9lcy1ub3Qtb3Blbg=="])
def test_a_forged_or_missing_token_is_refused(hub, token):
    with requests.Session() as window:
        response = get(window, f"{hub.hub_url}lti/continue?{TOKEN_PARAM}={token}", NEW_WINDOW)
        assert_refused(response, "handover_invalid", 403)
        assert not whoami(window, hub)


def test_a_window_signed_in_as_someone_else_is_refused(hub):
    url = continue_url(hub, framed_launch(requests.Session(), hub, new_user_id()))
    with requests.Session() as browser:
        continue_url(hub, framed_launch(browser, hub, new_user_id()))  # signed in as another user
        someone = whoami(browser, hub)
        assert_refused(get(browser, url, NEW_WINDOW), "handover_other_user", 409)
        assert whoami(browser, hub) == someone


def test_a_framed_lti11_prompt_checks_its_cookie_shows_buttons_where_it_came_back_else_a_new_window(hub):
    before, user_id = user_names(hub), new_user_id()
    with requests.Session() as browser:
        launched = launch11(
            browser, hub, key=PROMPT11_KEY, secret=PROMPT11_SECRET, user_id=user_id, roles=INSTRUCTOR, headers=FRAMED
        )
        assert launched.status_code == 302 and "/check?" in launched.headers["Location"], launched.text[:2000]
        check = urljoin(hub.hub_url, launched.headers["Location"])
        page = get(browser, check, FRAMED)
        assert page.status_code == 200 and 'value="new"' in page.text, page.text[:2000]
    with requests.Session() as frame:  # the cookie did not come back: only the new window
        dropped = get(frame, check, FRAMED)
        assert dropped.status_code == 200 and "<form" not in dropped.text, dropped.text[:2000]
        new_window_url = urljoin(
            hub.hub_url, html.unescape(re.search(r'href="([^"]*/handover\?[^"]*)"', dropped.text).group(1))
        )
        forged = re.sub(r"handover_token=[^&]+", "handover_token=forged", check)
        assert_refused(get(frame, forged, FRAMED), "prompt_not_bound", 403)
    assert user_names(hub) == before
    with requests.Session() as window:
        prompt = follow(window, hub, get(window, new_window_url, NEW_WINDOW))
        assert prompt.status_code == 200 and 'value="new"' in prompt.text, prompt.text[:2000]
        assert_refused(get(window, new_window_url, NEW_WINDOW), "prompt_not_bound", 403)  # used once
        assert_landed(step(window, hub, prompt.text, "new"))
        (name,) = user_names(hub) - before
        assert whoami(window, hub) == name
    assert links(hub, PROMPT11_KEY, user_id) == [(PROMPT11_KEY, user_id, name)]


def test_an_unframed_lti11_prompt_shows_its_buttons_at_once(hub):
    """A first-party window keeps the hub's cookies: no check, no new window (even with none yet)."""
    with requests.Session() as window:
        prompt = launch11(
            window, hub, key=PROMPT11_KEY, secret=PROMPT11_SECRET, user_id=new_user_id(), roles=INSTRUCTOR
        )
        assert prompt.status_code == 200 and 'value="new"' in prompt.text, prompt.text[:2000]
