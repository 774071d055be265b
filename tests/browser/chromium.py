"""Headless Chromium (Debian's chromium and chromium-driver, installed by `tests/services/chromium.sh
deps`), driven with Selenium, in one of the cookie settings real learners have."""

from __future__ import annotations

import shutil
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from enum import Enum
from typing import Any

CHROMIUM = "/usr/bin/chromium"
CHROMEDRIVER = "/usr/bin/chromedriver"
# Without the background-networking flags Chromium keeps trying to reach Google's hosts, which
# this machine's closed network refuses; --ignore-certificate-errors accepts the test's own
# self-signed certificate (cookies and secure contexts behave as on any HTTPS site).
FLAGS = (
    "--headless=new",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--disable-dev-shm-usage",
    "--ignore-certificate-errors",
    "--window-size=1200,900",
)


class Cookies(Enum):
    #: Chromium as installed.
    DEFAULT = "default"
    #: "Block third-party cookies" (Chrome's setting; Safari and Firefox do the like): partitioned
    #: (CHIPS) cookies are still kept, per top-level site.
    BLOCK_THIRD_PARTY = "block_third_party"
    #: No cookie at all for the tool inside the platform's frame (a site exception blocking the tool
    #: under the platform, as strict privacy settings or older Safari behave); first-party windows
    #: keep theirs.
    NONE_IN_FRAMES = "none_in_frames"


def available() -> bool:
    return shutil.which(CHROMIUM) is not None and shutil.which(CHROMEDRIVER) is not None


def _prefs(cookies: Cookies, tool_origin: str, platform_origin: str) -> dict[str, Any]:
    if cookies is Cookies.DEFAULT:
        return {}
    prefs: dict[str, Any] = {"profile.cookie_controls_mode": 1, "profile.block_third_party_cookies": True}
    if cookies is Cookies.NONE_IN_FRAMES:
        prefs["profile.content_settings.exceptions.cookies"] = {f"{tool_origin},{platform_origin}": {"setting": 2}}
    return prefs


@contextmanager
def chromium(cookies: Cookies, *, tool_origin: str, platform_origin: str) -> Iterator[Any]:
    """A Selenium WebDriver on a new, empty profile."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    with tempfile.TemporaryDirectory(prefix="lti-chromium-") as profile:
        options = webdriver.ChromeOptions()
        options.binary_location = CHROMIUM
        for flag in FLAGS:
            options.add_argument(flag)
        options.add_argument(f"--user-data-dir={profile}")
        prefs = _prefs(cookies, tool_origin, platform_origin)
        if prefs:
            options.add_experimental_option("prefs", prefs)
        driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
        driver.set_page_load_timeout(60)
        try:
            yield driver
        finally:
            driver.quit()
