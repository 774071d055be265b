"""Deep linking ("Published content") in real Chromium, in the platform's frame: the tool on
https://localhost, the platform on https://127.0.0.1 (another site). The instructor's "Select
content" opens the picker in the frame; real clicks tick an item and its "Add to gradebook" and click
"Add content"; the results page posts the signed answer to the platform's return endpoint by itself
(no click), still in the frame, which then shows the platform's page. "Cancel" sends the error answer
by itself too.

XBlock host: with the browser's default cookies, with third-party cookies blocked (the login bound
through platform storage, the session and CSRF cookies partitioned), and with no cookie at all in the
frame, where the launch continues in a new window and the answer reaches the platform from there.
The hub: with default cookies and with third-party cookies blocked.

One Chromium per cookie setting and one hub for the module; a new workbench site (database,
platform) per XBlock test, a new instructor per hub test.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import jwt as pyjwt
import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lti_peer import DELETE
from lti_peer.ags import gradebook
from lti_peer.claims import CLAIM_MESSAGE_TYPE, INSTRUCTOR_ROLES, deep_linking_settings
from lti_peer.deep_linking import CLAIM_CONTENT_ITEMS, RETURN_PATH, CreatedLink
from lti_peer.platform import PlatformPeer
from lti_peer.token import token_endpoint
from tests.browser.chromium import Cookies, chromium
from tests.browser.test_hub_frames_chromium import LocalhostHub
from tests.browser.test_xblock_frames import Site, body_text, into_tool_frame, site, wait_for_text
from tests.conftest import published_content_id
from tests.test_hub_lti import LTIAUTHENTICATOR_13_CONFIG, crypt_key, new_user_id

__all__ = ["site"]  # test_xblock_frames' site: the workbench over HTTPS, framed by the peer's course page

CLAIM_ERRORMSG = "https://purl.imsglobal.org/spec/lti-dl/claim/errormsg"
#: What the platform's return endpoint shows after an answer (its heading, for links made or not).
PLATFORM_PAGE = "Content added"


class Browsers:
    """One Chromium per cookie setting, started when a test first needs it. Its preferences depend on
    the setting and, for NONE_IN_FRAMES only, on the two origins: the one test using it starts it."""

    def __init__(self, stack: ExitStack) -> None:
        self._stack = stack
        self._drivers: dict[Cookies, Any] = {}

    def fresh(self, cookies: Cookies, *, tool_origin: str, platform_origin: str) -> Any:
        """The Chromium for ``cookies`` with one blank window and no cookie left from the test before."""
        driver = self._drivers.get(cookies)
        if driver is None:
            browser = chromium(cookies, tool_origin=tool_origin, platform_origin=platform_origin)
            driver = self._drivers[cookies] = self._stack.enter_context(browser)
        for handle in driver.window_handles[1:]:
            driver.switch_to.window(handle)
            driver.close()
        driver.switch_to.window(driver.window_handles[0])
        driver.get("about:blank")
        driver.execute_cdp_cmd("Storage.clearCookies", {})
        return driver


@pytest.fixture(scope="module")
def browsers() -> Iterator[Browsers]:
    with ExitStack() as stack:
        yield Browsers(stack)


def trust_the_tools_keys(
    platform: PlatformPeer, jwks_url: str, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The platform checks answers against the tool's key set at its HTTPS URL, trusting the test's
    certificate as it would the tool's real one (urllib reads SSL_CERT_FILE at each connection)."""
    monkeypatch.setenv("SSL_CERT_FILE", str(certificate[0]))
    token_endpoint(platform).tool_jwks_url = jwks_url


def record_answers(platform: PlatformPeer, monkeypatch: pytest.MonkeyPatch) -> list[dict[str, str]]:
    """The forms the platform's return endpoint receives, as they come; the real endpoint still checks
    each (the peer itself keeps only the links it makes, nothing of a cancellation)."""
    forms: list[dict[str, str]] = []
    handle = platform.deep_linking.handle

    def recording(target: str, form: Mapping[str, str]) -> tuple[int, str]:
        forms.append(dict(form))
        return handle(target, form)

    monkeypatch.setattr(platform.deep_linking, "handle", recording)
    return forms


def answer_claims(jwks_url: str, certificate: tuple[Path, Path], form: Mapping[str, str], audience: str) -> Any:
    """An LtiDeepLinkingResponse as the platform checks it: signed by a key of the tool's JWKS, for it."""
    keys = requests.get(jwks_url, verify=str(certificate[0]), timeout=30).json()
    token = form["JWT"]
    kid = pyjwt.get_unverified_header(token)["kid"]
    key = next(k for k in pyjwt.PyJWKSet.from_dict(keys).keys if k.key_id == kid)
    return pyjwt.decode(token, key.key, algorithms=["RS256"], audience=audience)


def return_url(platform: PlatformPeer) -> str:
    """The platform's deep-linking return URL on the site the browser meets it on: a frame of an HTTPS
    course page cannot go to the peer's plain-HTTP issuer URL (``deep_linking.return_url``)."""
    return platform.browser_origin + RETURN_PATH + "?course=2&id=2"


def select_content(platform: PlatformPeer, login_url: str, target_link_uri: str, *, storage: bool) -> str:
    """The course page framing Moodle's "Select content": an instructor's LtiDeepLinkingRequest."""
    claims = {
        "roles": INSTRUCTOR_ROLES,
        "message_type": "LtiDeepLinkingRequest",
        "resource_link": DELETE,
        "deep_linking_settings": deep_linking_settings(return_url(platform), data=platform.deep_linking.expect()),
    }
    return platform.course_url(login_url, target_link_uri, storage=storage, claims=claims)


def open_picker(driver: Any) -> None:
    """Wait for the picker in the current browsing context (the frame or a window)."""
    wait_for_text(driver, "Add content")
    assert driver.find_element(By.TAG_NAME, "h1").text == "Published content"


def pick(driver: Any, item_id: str) -> str:
    """Tick ``item_id`` and its "Add to gradebook", click "Add content"; returns the item's title."""
    item = driver.find_element(By.CSS_SELECTOR, f'input[name="item"][value="{item_id}"]')
    title = str(driver.find_element(By.CSS_SELECTOR, f'label[for="{item.get_attribute("id")}"]').text)
    item.click()
    driver.find_element(By.CSS_SELECTOR, f'input[name="gradebook"][value="{item_id}"]').click()
    press(driver, "Add content")
    return title


def press(driver: Any, label: str) -> None:
    driver.find_element(By.XPATH, f"//button[normalize-space()={label!r}]").click()


def wait_for_platform_page(driver: Any, platform: PlatformPeer, text: str, *, in_frame: bool = True) -> None:
    """The tool's frame (or, ``in_frame`` False, the current window) went on, by itself, to the
    platform's page showing ``text``.

    That navigation moves the frame to the platform's site (another renderer process), and
    chromedriver may then answer from the top page: each look goes back into the frame first."""

    def shown(d: Any) -> bool:
        try:
            if in_frame:
                into_tool_frame(d)
            return text in body_text(d)
        except Exception:  # noqa: BLE001 - the frame is navigating; look again
            return False

    try:
        WebDriverWait(driver, 60, poll_frequency=0.3).until(shown)
    except Exception as exc:
        raise AssertionError(f"{text!r} never appeared; the page shows: {body_text(driver)[:800]!r}") from exc
    assert driver.execute_script("return location.origin + location.pathname") == platform.browser_origin + RETURN_PATH


def assert_framed_cookies(driver: Any, names: tuple[str, ...]) -> None:
    """The tool's cookies ``names``, which carried the picker: SameSite=None; Secure; Partitioned by
    the platform's site (CHIPS), so they are kept in its frame with third-party cookies blocked."""
    cookies = {c["name"]: c for c in driver.execute_cdp_cmd("Storage.getCookies", {})["cookies"]}
    for name in names:
        cookie = cookies[name]
        assert (cookie["domain"], cookie["sameSite"], cookie["secure"]) == ("localhost", "None", True), cookie
        assert cookie.get("partitionKey", {}).get("topLevelSite") == "https://127.0.0.1", cookie


def graded_link(platform: PlatformPeer, made_before: int) -> tuple[CreatedLink, Any]:
    """The one link the platform made from the answer, and its line item."""
    (link,) = platform.deep_links[made_before:]
    book = gradebook(platform)
    (column,) = [item for item in book.items.values() if item.resource_link_id == link.id]
    assert link.lineitem == book.item_url(column)
    return link, column


# -- the XBlock host (workbench) -----------------------------------------------------------------


@pytest.fixture
def peer(site: Site, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch) -> PlatformPeer:
    trust_the_tools_keys(site.platform, site.details.lti13_jwks_url, certificate, monkeypatch)
    return site.platform


def workbench_browser(browsers: Browsers, site: Site, cookies: Cookies) -> Any:
    return browsers.fresh(cookies, tool_origin=site.origin, platform_origin=site.platform.browser_origin)


def workbench_select_content(site: Site, *, storage: bool) -> str:
    """Its deep-linking URL is the tool's root."""
    return select_content(site.platform, site.details.lti13_login_url, f"{site.base_url}/lti_publish/", storage=storage)


def assert_workbench_link(site: Site, content_id: str, title: str) -> None:
    assert site.platform.deep_linking.log == ["ok"]
    link, column = graded_link(site.platform, 0)
    assert (link.title, link.url, dict(link.custom)) == (
        title,
        f"{site.base_url}/lti_publish/content/{content_id}/",
        {"content_id": content_id},
    )
    assert (column.label, column.resource_id) == (title, content_id)


@pytest.mark.parametrize("cookies", [Cookies.DEFAULT, Cookies.BLOCK_THIRD_PARTY])
def test_picked_content_reaches_the_platform_from_the_frame_by_itself(
    site, peer, browsers, certificate, monkeypatch, cookies
):
    content_id = published_content_id()
    answers = record_answers(peer, monkeypatch)
    driver = workbench_browser(browsers, site, cookies)
    driver.get(workbench_select_content(site, storage=cookies is Cookies.BLOCK_THIRD_PARTY))
    into_tool_frame(driver)
    open_picker(driver)
    title = pick(driver, content_id)
    wait_for_platform_page(driver, peer, f"{title} (dl1)")  # no click on the results page's Continue
    assert "gradebook:" in body_text(driver) and len(driver.window_handles) == 1
    assert_workbench_link(site, content_id, title)
    (form,) = answers
    body = answer_claims(site.details.lti13_jwks_url, certificate, form, peer.issuer)
    assert body[CLAIM_MESSAGE_TYPE] == "LtiDeepLinkingResponse" and CLAIM_ERRORMSG not in body
    assert [item["custom"] for item in body[CLAIM_CONTENT_ITEMS]] == [{"content_id": content_id}]
    assert_framed_cookies(driver, ("sessionid", "csrftoken"))
    if cookies is Cookies.BLOCK_THIRD_PARTY:  # bound through the platform's storage, not a cookie
        assert [entry["subject"] for entry in peer.storage_log] == ["lti.put_data", "lti.get_data"]


def test_cancel_sends_the_error_answer_from_the_frame_by_itself(site, peer, browsers, certificate, monkeypatch):
    answers = record_answers(peer, monkeypatch)
    driver = workbench_browser(browsers, site, Cookies.DEFAULT)
    driver.get(workbench_select_content(site, storage=False))
    into_tool_frame(driver)
    open_picker(driver)
    press(driver, "Cancel")
    wait_for_platform_page(driver, peer, PLATFORM_PAGE)
    assert peer.deep_linking.log == ["ok"] and peer.deep_links == []
    (form,) = answers
    body = answer_claims(site.details.lti13_jwks_url, certificate, form, peer.issuer)
    assert body[CLAIM_MESSAGE_TYPE] == "LtiDeepLinkingResponse"
    assert body.get(CLAIM_CONTENT_ITEMS, []) == [] and body[CLAIM_ERRORMSG] == "No content was added."


def test_without_cookies_in_the_frame_the_picker_opens_in_a_new_window_and_answers_from_there(site, peer, browsers):
    content_id = published_content_id()
    driver = workbench_browser(browsers, site, Cookies.NONE_IN_FRAMES)
    driver.get(workbench_select_content(site, storage=False))
    into_tool_frame(driver)
    wait_for_text(driver, "state_not_bound")
    frame_window = driver.current_window_handle
    driver.find_element(By.CSS_SELECTOR, "a.lti-error__action").click()
    WebDriverWait(driver, 30).until(lambda d: len(d.window_handles) == 2)
    driver.switch_to.window(next(h for h in driver.window_handles if h != frame_window))
    open_picker(driver)
    title = pick(driver, content_id)
    wait_for_platform_page(driver, peer, f"{title} (dl1)", in_frame=False)
    assert_workbench_link(site, content_id, title)


# -- the hub ---------------------------------------------------------------------------------------

CATALOG = [
    {"id": "week1", "title": "Week 1: Python", "path": "course/week1.ipynb", "max_score": 10},
    {"id": "week2", "title": "Week 2: Data", "path": "course/week2"},
]


@pytest.fixture(scope="module")
def hub_platform(tls_context: Any) -> Iterator[PlatformPeer]:
    with PlatformPeer(client_id="chromium-dl-client", browser_tls=tls_context) as peer:
        yield peer


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, hub_platform: PlatformPeer, certificate: tuple[Path, Path]
) -> Iterator[LocalhostHub]:
    """test_hub_frames_chromium's HTTPS hub on localhost, with a catalog."""
    config = LTIAUTHENTICATOR_13_CONFIG.format(
        authenticator_class="jupyter_lti.lti13.LTI13Authenticator",
        issuer=hub_platform.issuer,
        client_id=hub_platform.client_id,
    ) + (
        f"c.LTI13Authenticator.authorize_url = {hub_platform.auth_url!r}\n"
        f"c.LTI13Authenticator.jwks_endpoint = {hub_platform.jwks_url!r}\n"
        f"c.LTI13Authenticator.frame_ancestors = [{hub_platform.browser_origin!r}]\n"
        f"c.LTI13Authenticator.catalog = {CATALOG!r}\n"
    )
    cert, key = certificate
    workdir = tmp_path_factory.mktemp("hub-dl-chromium")
    hub = LocalhostHub(workdir, config, cert=cert, key=key, env={"JUPYTERHUB_CRYPT_KEY": crypt_key()})
    with hub.start():
        hub_platform.register_redirect_uri(hub.callback_url)
        yield hub


@pytest.fixture
def teacher(
    hub: LocalhostHub, hub_platform: PlatformPeer, certificate: tuple[Path, Path], monkeypatch: pytest.MonkeyPatch
) -> PlatformPeer:
    """The hub's platform, launching for a new instructor, with an empty storage log."""
    hub_platform.user_id = new_user_id()
    hub_platform.storage_log.clear()
    trust_the_tools_keys(hub_platform, hub.hub_url + "lti13/jwks", certificate, monkeypatch)
    return hub_platform


def hub_browser(browsers: Browsers, hub: LocalhostHub, platform: PlatformPeer, cookies: Cookies) -> Any:
    return browsers.fresh(cookies, tool_origin=hub.origin, platform_origin=platform.browser_origin)


@pytest.mark.slow
@pytest.mark.parametrize("cookies", [Cookies.DEFAULT, Cookies.BLOCK_THIRD_PARTY])
def test_hub_picked_content_reaches_the_platform_from_the_frame_by_itself(hub, teacher, browsers, cookies):
    made_before = len(teacher.deep_links)
    driver = hub_browser(browsers, hub, teacher, cookies)
    driver.get(select_content(teacher, hub.login_url, hub.callback_url, storage=cookies is Cookies.BLOCK_THIRD_PARTY))
    into_tool_frame(driver)
    open_picker(driver)
    assert pick(driver, "week1") == "Week 1: Python"
    wait_for_platform_page(driver, teacher, f"Week 1: Python (dl{made_before + 1})")
    assert teacher.deep_linking.log[-1] == "ok" and len(driver.window_handles) == 1
    link, column = graded_link(teacher, made_before)
    assert (link.url, dict(link.custom)) == (hub.callback_url, {"catalog_item": "week1"})
    assert (column.label, column.score_maximum, column.resource_id) == ("Week 1: Python", 10.0, "week1")
    assert_framed_cookies(driver, ("jupyterhub-hub-login", "_xsrf"))
    if cookies is Cookies.BLOCK_THIRD_PARTY:
        assert [entry["subject"] for entry in teacher.storage_log] == ["lti.put_data", "lti.get_data"]


@pytest.mark.slow
def test_hub_cancel_sends_the_error_answer_from_the_frame_by_itself(hub, teacher, browsers, certificate, monkeypatch):
    made_before = len(teacher.deep_links)
    answers = record_answers(teacher, monkeypatch)
    driver = hub_browser(browsers, hub, teacher, Cookies.DEFAULT)
    driver.get(select_content(teacher, hub.login_url, hub.callback_url, storage=False))
    into_tool_frame(driver)
    open_picker(driver)
    press(driver, "Cancel")
    wait_for_platform_page(driver, teacher, PLATFORM_PAGE)
    assert teacher.deep_linking.log[-1] == "ok" and len(teacher.deep_links) == made_before
    (form,) = answers
    body = answer_claims(hub.hub_url + "lti13/jwks", certificate, form, teacher.issuer)
    assert body.get(CLAIM_CONTENT_ITEMS, []) == [] and body[CLAIM_ERRORMSG] == "No content was added."
