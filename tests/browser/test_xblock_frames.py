"""Launches of the XBlock host in real Chromium: framed by a platform on another site, over HTTPS,
with the cookie settings learners have; platform storage; the new-window fallback; login CSRF."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import pytest
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lti_peer.platform import PlatformPeer
from lti_xblock.launch_details import LaunchDetails, launch_details
from tests.browser.chromium import Cookies, chromium
from tests.conftest import published_content_id, registration_of

SIGNED_IN = "Signed in as Sam Student (learner)"


@dataclass
class Site:
    base_url: str
    details: LaunchDetails
    platform: PlatformPeer

    @property
    def origin(self) -> str:
        return self.base_url


@pytest.fixture
def site(https_live_server: str, tls_context: Any, transactional_db: None, settings: Any) -> Iterator[Site]:
    settings.LTI_PUBLISH = {"HOST": "workbench", "TOOL_BASE_URLS": [https_live_server]}
    # What the demo settings choose for an https:// base URL: the session must ride cross-site frames.
    settings.SESSION_COOKIE_SAMESITE = settings.CSRF_COOKIE_SAMESITE = "None"
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    from lti_xblock.views import store

    details = launch_details(https_live_server, published_content_id())
    with PlatformPeer(redirect_uris=[details.lti13_redirect_uri], browser_tls=tls_context) as platform:
        store.save_registration(registration_of(platform))
        yield Site(https_live_server, details, platform)


@pytest.fixture
def http_site(live_server: Any, transactional_db: None, settings: Any) -> Iterator[Site]:
    """The demo's set-up: the tool on plain HTTP (http://localhost), the platform on http://127.0.0.1."""
    base = str(live_server.url)
    settings.LTI_PUBLISH = {"HOST": "workbench", "TOOL_BASE_URLS": [base]}
    from lti_xblock.views import store

    details = launch_details(base, published_content_id())
    with PlatformPeer(redirect_uris=[details.lti13_redirect_uri]) as platform:
        store.save_registration(registration_of(platform))
        yield Site(base, details, platform)


def browser(site: Site, cookies: Cookies) -> Any:
    return chromium(cookies, tool_origin=site.origin, platform_origin=site.platform.browser_origin)


def body_text(driver: Any) -> str:
    return str(driver.find_element(By.TAG_NAME, "body").text)


def wait_for_text(driver: Any, text: str, timeout: float = 30) -> None:
    def shown(d: Any) -> bool:
        try:
            return text in body_text(d)
        except Exception:  # noqa: BLE001 - the frame is navigating; look again
            return False

    try:
        WebDriverWait(driver, timeout, poll_frequency=0.2).until(shown)
    except Exception as exc:
        raise AssertionError(f"{text!r} never appeared; the page shows: {body_text(driver)[:800]!r}") from exc


def into_tool_frame(driver: Any) -> None:
    driver.switch_to.default_content()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "tool"))
    driver.switch_to.frame("tool")


def course(site: Site, *, storage: bool, framed: bool = True) -> str:
    return site.platform.course_url(
        site.details.lti13_login_url, site.details.lti13_target_link_uri, storage=storage, framed=framed
    )


def storage_subjects(site: Site) -> list[tuple[str, bool]]:
    return [(entry["subject"], entry["found"]) for entry in site.platform.storage_log]


def test_framed_launch_with_platform_storage_and_third_party_cookies_blocked(site):
    with browser(site, Cookies.BLOCK_THIRD_PARTY) as driver:
        driver.get(course(site, storage=True))
        into_tool_frame(driver)
        wait_for_text(driver, SIGNED_IN)
    # Bound through the platform's storage, not a cookie: the state went in and came back out.
    assert storage_subjects(site) == [("lti.put_data", True), ("lti.get_data", True)]
    assert {entry["origin"] for entry in site.platform.storage_log} == {site.origin}


def test_framed_launch_without_storage_or_cookies_offers_a_new_window_that_lands_signed_in(site):
    with browser(site, Cookies.NONE_IN_FRAMES) as driver:
        driver.get(course(site, storage=False))
        into_tool_frame(driver)
        wait_for_text(driver, "state_not_bound")
        assert SIGNED_IN not in body_text(driver)
        frame_window = driver.current_window_handle
        driver.find_element(By.CSS_SELECTOR, "a.lti-error__action").click()
        WebDriverWait(driver, 30).until(lambda d: len(d.window_handles) == 2)
        driver.switch_to.window(next(h for h in driver.window_handles if h != frame_window))
        wait_for_text(driver, SIGNED_IN)
        assert driver.current_url.startswith(site.base_url + "/lti_publish/content/")


def test_launch_in_a_new_window_with_cookies_lands_signed_in(site):
    with browser(site, Cookies.DEFAULT) as driver:
        driver.get(course(site, storage=False, framed=False))
        wait_for_text(driver, SIGNED_IN)
    assert site.platform.storage_log == []


def test_new_window_launch_over_plain_http_binds_by_the_lax_cookie_on_the_tools_own_repost(http_site):
    """Over HTTP the Lax state cookie does not ride the platform's cross-site POST; the check page's
    same-origin re-post carries it."""
    with browser(http_site, Cookies.DEFAULT) as driver:
        driver.get(course(http_site, storage=False, framed=False))
        wait_for_text(driver, SIGNED_IN)


def test_framed_launch_with_default_cookies_lands_signed_in_and_the_content_works_in_the_frame(site):
    with browser(site, Cookies.DEFAULT) as driver:
        driver.get(course(site, storage=False))
        into_tool_frame(driver)
        wait_for_text(driver, SIGNED_IN)
        answer_first_problem(driver)


def answer_first_problem(driver: Any) -> None:
    """Type an answer into the first problem and check it: the XBlock handler call must succeed."""
    field = WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.CSS_SELECTOR, "input[type=text]"))[0]
    field.clear()
    field.send_keys("1")
    driver.find_elements(By.XPATH, "//*[self::input or self::button][contains(@value,'heck') or contains(., 'heck')]")[
        0
    ].click()
    WebDriverWait(driver, 30).until(
        lambda d: d.execute_script(
            "return Array.from(document.querySelectorAll('.problem, [class*=problem]'))"
            ".some(e => /correct|incorrect|✓|✗|wrong|right/i.test(e.className + ' ' + e.innerText))"
        )
    )


def test_login_csrf_an_attackers_launch_posted_by_the_victims_browser_is_refused(site):
    """The attacker ran the login in their own client and stopped at the platform's form; the victim's
    browser (which never started a login) is made to post it, from a page on another site."""
    import requests

    with requests.Session() as attacker:
        form = site.platform.login_form(site.details.lti13_login_url, site.details.lti13_target_link_uri)
        redirect = attacker.post(site.details.lti13_login_url, data=form, allow_redirects=False, verify=False)
        assert redirect.status_code == 302
        status, action, fields = site.platform.authorize_redirect(
            redirect.headers["Location"].replace(site.platform.browser_origin, site.platform.issuer)
        )
    assert status == 200 and "id_token" in fields
    from lti_xblock import models as m

    users = m.LtiUserLink.objects.count()
    with browser(site, Cookies.DEFAULT) as driver:
        driver.get(site.platform.attacker_page_url(action, fields))
        wait_for_text(driver, "state_not_bound")
        assert SIGNED_IN not in body_text(driver)
        assert not [c for c in driver.get_cookies() if c["name"] == "sessionid"]
    assert m.LtiUserLink.objects.count() == users
