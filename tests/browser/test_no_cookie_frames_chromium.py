"""The XBlock host in real Chromium where the browser keeps no cookie at all for the tool inside the
platform's frame (``Cookies.NONE_IN_FRAMES``): an LTI 1.1 launch (Moodle embeds LTI 1.1 tools by
default) and an LTI 1.3 launch bound through platform storage (Canvas) sign the person in, and the
continue step (``lti_core.handover``) offers a new window that lands signed in on the content; an
LTI 1.1 linking prompt offers only its new window, and completes there. Where the frame keeps
cookies (``DEFAULT``, ``BLOCK_THIRD_PARTY``) the continue step and the prompt's cookie check are
invisible. The hub's runs are in tests/browser/test_hub_frames_chromium.py."""

from __future__ import annotations

from typing import Any

import pytest
from django.contrib.auth import get_user_model
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lti_core.linking import ProvisioningMode
from lti_core.types import Consumer
from lti_peer.lti11 import INSTRUCTOR, moodle_lti11_params, sign_lti11_launch
from tests.browser import test_xblock_frames
from tests.browser.chromium import Cookies
from tests.browser.test_xblock_frames import SIGNED_IN, Site, body_text, browser, course, into_tool_frame, wait_for_text

site = test_xblock_frames.site  # the HTTPS workbench and its platform, as there

CONSUMER = Consumer("moodle-key", "moodle-secret-0123456789", "Moodle")
NEW_WINDOW_TITLE = "Continue in a new window"
CHOOSE_TITLE = "How do you want to continue?"


@pytest.fixture
def lti11_site(site: Site, settings: Any) -> Site:
    """The site, with the Moodle consumer of its LTI 1.1 launches; its instructors are asked."""
    from lti_xblock.views import store

    store.save_consumer(CONSUMER)
    settings.LTI_PUBLISH = {
        **settings.LTI_PUBLISH,
        "PROVISIONING": {
            "instructor": ProvisioningMode.EXISTING_AND_NEW_PROMPT.value,
            "learner": ProvisioningMode.NEW_ACCOUNTS_ONLY.value,
        },
    }
    return site


def lti11_course(site: Site, **params: str) -> str:
    """The platform's course page, framing a signed LTI 1.1 launch of the published content."""
    url = site.details.lti11_tool_url
    form = sign_lti11_launch(url, CONSUMER.key, CONSUMER.secret, moodle_lti11_params(**params))
    return site.platform.lti11_course_url(url, form)


def open_new_window(driver: Any, label: str) -> None:
    """Click the frame's link ``label`` (target _blank) and switch to the window it opened."""
    frame_window = driver.current_window_handle
    link = driver.find_element(By.LINK_TEXT, label)
    assert link.get_attribute("target") == "_blank"
    link.click()
    WebDriverWait(driver, 30).until(lambda d: len(d.window_handles) == 2)
    driver.switch_to.window(next(h for h in driver.window_handles if h != frame_window))


def assert_on_content(driver: Any, site: Site) -> None:
    assert str(driver.execute_script("return location.href")).startswith(f"{site.base_url}/lti_publish/content/")


def continues_in_a_new_window_signed_in(driver: Any, site: Site) -> None:
    into_tool_frame(driver)
    wait_for_text(driver, "cookies_blocked_in_frame")
    assert SIGNED_IN not in body_text(driver)
    open_new_window(driver, "Open in a new window")
    wait_for_text(driver, SIGNED_IN)
    assert_on_content(driver, site)


def test_lti11_in_a_frame_without_cookies_continues_signed_in_in_a_new_window(lti11_site):
    with browser(lti11_site, Cookies.NONE_IN_FRAMES) as driver:
        driver.get(lti11_course(lti11_site))
        continues_in_a_new_window_signed_in(driver, lti11_site)


def test_lti13_with_platform_storage_in_a_frame_without_cookies_continues_signed_in_in_a_new_window(site):
    with browser(site, Cookies.NONE_IN_FRAMES) as driver:
        driver.get(course(site, storage=True))
        continues_in_a_new_window_signed_in(driver, site)
    assert [entry["subject"] for entry in site.platform.storage_log] == ["lti.put_data", "lti.get_data"]


def test_lti11_in_a_frame_with_partitioned_cookies_lands_in_the_frame(lti11_site):
    """The continue step is one redirect more (LTI 1.3 with DEFAULT cookies: test_xblock_frames)."""
    with browser(lti11_site, Cookies.BLOCK_THIRD_PARTY) as driver:
        driver.get(lti11_course(lti11_site))
        into_tool_frame(driver)
        wait_for_text(driver, SIGNED_IN)
        assert_on_content(driver, lti11_site)
        assert len(driver.window_handles) == 1


def test_the_lti11_prompt_in_a_frame_without_cookies_completes_in_a_new_window(lti11_site):
    with browser(lti11_site, Cookies.NONE_IN_FRAMES) as driver:
        driver.get(lti11_course(lti11_site, roles=INSTRUCTOR))
        into_tool_frame(driver)
        wait_for_text(driver, NEW_WINDOW_TITLE)
        assert driver.find_elements(By.TAG_NAME, "form") == []  # no button that could not work here
        open_new_window(driver, NEW_WINDOW_TITLE)
        wait_for_text(driver, CHOOSE_TITLE)
        driver.find_element(By.XPATH, "//button[normalize-space()='Create a new account']").click()
        wait_for_text(driver, "Signed in as Sam Student (staff)")
        assert_on_content(driver, lti11_site)
    assert get_user_model().objects.count() == 1


def test_the_lti11_prompt_in_a_frame_that_keeps_cookies_runs_in_the_frame(lti11_site):
    with browser(lti11_site, Cookies.DEFAULT) as driver:
        driver.get(lti11_course(lti11_site, roles=INSTRUCTOR))
        into_tool_frame(driver)
        wait_for_text(driver, CHOOSE_TITLE)
        assert NEW_WINDOW_TITLE not in body_text(driver)
        driver.find_element(By.XPATH, "//button[normalize-space()='Create a new account']").click()
        wait_for_text(driver, "Signed in as Sam Student (staff)")
        assert_on_content(driver, lti11_site)
        assert len(driver.window_handles) == 1
