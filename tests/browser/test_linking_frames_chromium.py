"""The linking prompt of the XBlock host in real Chromium, in the platform's frame (the tool on
https://localhost, the platform on https://127.0.0.1): with third-party cookies blocked it continues
in a new window, through Django's own sign-in, and the next framed launch signs the linked account in
silently; with the browser's default cookies it runs inside the frame (a new account), and signing in
to an existing account opens a window of its own (sign-in pages refuse to be framed)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from django.contrib.auth import get_user_model
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lti_core.linking import ProvisioningMode
from lti_peer.claims import INSTRUCTOR_ROLES
from lti_peer.platform import PlatformPeer
from lti_xblock.launch_details import launch_details
from tests.browser.chromium import Cookies
from tests.browser.test_xblock_frames import Site, body_text, browser, into_tool_frame, wait_for_text
from tests.conftest import published_content_id, registration_of

PASSWORD = "local-password-4711"
CHOOSE_TITLE = "How do you want to continue?"
NEW_WINDOW_LABEL = "Continue in a new window"
EXISTING_LABEL = "Sign in to an existing account and link it"
SIGNED_IN_AS_STAFF = "Signed in as {name} (staff)"


@pytest.fixture
def site(https_live_server: str, tls_context: Any, transactional_db: None, settings: Any) -> Iterator[Site]:
    """test_xblock_frames' site, its instructors asked at their first launch (Moodle's default)."""
    settings.LTI_PUBLISH = {
        "HOST": "workbench",
        "TOOL_BASE_URLS": [https_live_server],
        "PROVISIONING": {
            "instructor": ProvisioningMode.EXISTING_AND_NEW_PROMPT.value,
            "learner": ProvisioningMode.NEW_ACCOUNTS_ONLY.value,
        },
    }
    settings.SESSION_COOKIE_SAMESITE = settings.CSRF_COOKIE_SAMESITE = "None"
    settings.SESSION_COOKIE_SECURE = settings.CSRF_COOKIE_SECURE = True
    from lti_xblock.views import store

    details = launch_details(https_live_server, published_content_id())
    with PlatformPeer(redirect_uris=[details.lti13_redirect_uri], browser_tls=tls_context) as platform:
        store.save_registration(registration_of(platform))
        yield Site(https_live_server, details, platform)


def instructor_course(site: Site, *, storage: bool) -> str:
    """The course page framing an instructor's launch of the published content."""
    return site.platform.course_url(
        site.details.lti13_login_url,
        site.details.lti13_target_link_uri,
        storage=storage,
        claims={"roles": INSTRUCTOR_ROLES},
    )


def press(driver: Any, label: str) -> None:
    driver.find_element(By.XPATH, f"//button[normalize-space()={label!r}]").click()


def links_of(site: Site) -> dict[str, str]:
    """The platform's users linked here: platform user id -> local username."""
    from lti_xblock import models as m

    rows = m.LtiUserLink.objects.select_related("user").filter(platform=site.platform.issuer)
    return {row.platform_user_id: row.user.username for row in rows}


def on_content(driver: Any, site: Site) -> bool:
    """The current document (the window's or the frame's) is the published content."""
    return str(driver.execute_script("return location.href")).startswith(f"{site.base_url}/lti_publish/content/")


def test_blocked_third_party_cookies_the_prompt_continues_in_a_new_window_and_the_next_launch_is_silent(site):
    get_user_model().objects.create_user("ada", password=PASSWORD, first_name="Ada", last_name="Local")
    with browser(site, Cookies.BLOCK_THIRD_PARTY) as driver:
        driver.get(instructor_course(site, storage=True))
        into_tool_frame(driver)
        wait_for_text(driver, NEW_WINDOW_LABEL)
        # Only the way out: a form here would post without this browser's binding.
        assert driver.find_elements(By.TAG_NAME, "form") == []
        frame_window = driver.current_window_handle
        driver.find_element(By.LINK_TEXT, NEW_WINDOW_LABEL).click()
        WebDriverWait(driver, 30).until(lambda d: len(d.window_handles) == 2)
        driver.switch_to.window(next(h for h in driver.window_handles if h != frame_window))

        wait_for_text(driver, CHOOSE_TITLE)
        press(driver, EXISTING_LABEL)
        WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.NAME, "password"))
        assert driver.current_url.startswith(f"{site.base_url}/accounts/login/")
        driver.find_element(By.NAME, "username").send_keys("ada")
        driver.find_element(By.NAME, "password").send_keys(PASSWORD)
        driver.find_element(By.CSS_SELECTOR, "form button[type=submit]").click()
        wait_for_text(driver, "Link your account")
        assert "You are signed in as ada." in body_text(driver)
        press(driver, "Link my account")
        wait_for_text(driver, SIGNED_IN_AS_STAFF.format(name="Ada Local"))
        assert on_content(driver, site)
        assert links_of(site) == {site.platform.user_id: "ada"}

        # The same instructor opens the activity again in the course page: no prompt, signed in as ada
        # in the frame (its partitioned session), with nothing new created.
        driver.close()
        driver.switch_to.window(frame_window)
        driver.get(instructor_course(site, storage=True))
        into_tool_frame(driver)
        wait_for_text(driver, SIGNED_IN_AS_STAFF.format(name="Ada Local"))
        assert CHOOSE_TITLE not in body_text(driver) and on_content(driver, site)
    assert links_of(site) == {site.platform.user_id: "ada"}
    assert get_user_model().objects.count() == 1


def test_default_cookies_the_prompt_runs_in_the_frame_and_creates_an_account(site):
    with browser(site, Cookies.DEFAULT) as driver:
        driver.get(instructor_course(site, storage=False))
        into_tool_frame(driver)
        wait_for_text(driver, CHOOSE_TITLE)
        assert NEW_WINDOW_LABEL not in body_text(driver)
        press(driver, "Create a new account")
        wait_for_text(driver, SIGNED_IN_AS_STAFF.format(name="Sam Student"))
        assert on_content(driver, site) and len(driver.window_handles) == 1
    (username,) = links_of(site).values()
    assert get_user_model().objects.get(username=username).get_full_name() == "Sam Student"


def test_default_cookies_signing_in_to_an_existing_account_from_the_frame_reaches_the_sign_in(site):
    with browser(site, Cookies.DEFAULT) as driver:
        driver.get(instructor_course(site, storage=False))
        course_window = driver.current_window_handle
        into_tool_frame(driver)
        wait_for_text(driver, CHOOSE_TITLE)
        driver.find_element(By.XPATH, f"//*[self::a or self::button][normalize-space()={EXISTING_LABEL!r}]").click()

        def sign_in_form_shown(d: Any) -> bool:
            for handle in d.window_handles:  # in the frame, or in a window it opened
                d.switch_to.window(handle)
                if handle == course_window:
                    into_tool_frame(d)
                if d.find_elements(By.NAME, "password"):
                    return True
            return False

        WebDriverWait(driver, 10, poll_frequency=0.5).until(sign_in_form_shown)
