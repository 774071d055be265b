"""LTI 1.3 launches into a real JupyterHub in real Chromium: the hub on https://localhost:<port>,
framed by a platform whose browser pages are on https://127.0.0.1:<port> (another site), with the
cookie settings learners have; platform storage; the new-window fallback; login CSRF. The learner
must land signed in on JupyterLab, in the frame, and the server's API must work there.

One HTTPS hub (tests/test_hub_frames.py's TlsHub, its public URL on ``localhost``) and one platform
for the module; a new Chromium, and a new platform user, per test.
"""

from __future__ import annotations

import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from lti_peer.lti11 import INSTRUCTOR, moodle_lti11_params, sign_lti11_launch
from lti_peer.platform import PlatformPeer
from tests.browser.chromium import Cookies, chromium
from tests.test_hub_frames import TlsHub
from tests.test_hub_lti import LTIAUTHENTICATOR_13_CONFIG, crypt_key, new_user_id

#: LTI 1.1 consumers of the hub (it takes both versions): Moodle's, and one whose instructors are asked.
MOODLE11 = ("moodle11-key", "moodle11-secret-0123456789")
PROMPT11 = ("prompt11-key", "prompt11-secret-0123456789")

pytestmark = pytest.mark.slow

LAB_PATH = re.compile(r"^/user/([^/]+)/lab")


class LocalhostHub(TlsHub):
    """The HTTPS hub, its public URL on ``localhost``: another site than the platform's 127.0.0.1.
    The proxy still listens on 127.0.0.1 (what localhost resolves to here)."""

    def __init__(self, workdir: Path, config: str, *, cert: Path, key: Path, env: dict[str, str]) -> None:
        super().__init__(workdir, config, cert=cert, key=key, env=env)
        self.public_url = f"https://localhost:{self.port}{self.base_url}"

    @property
    def origin(self) -> str:
        return f"https://localhost:{self.port}"

    @property
    def login_url(self) -> str:
        return self.hub_url + "lti13/oauth_login"

    @property
    def callback_url(self) -> str:
        return self.hub_url + "lti13/oauth_callback"


@pytest.fixture(scope="module")
def platform(tls_context: Any) -> Iterator[PlatformPeer]:
    with PlatformPeer(client_id="chromium-hub-client", browser_tls=tls_context) as peer:
        yield peer


@pytest.fixture(scope="module")
def hub(
    tmp_path_factory: pytest.TempPathFactory, platform: PlatformPeer, certificate: tuple[Path, Path]
) -> Iterator[LocalhostHub]:
    config = LTIAUTHENTICATOR_13_CONFIG.format(
        authenticator_class="jupyter_lti.lti.LTIAuthenticator",
        issuer=platform.issuer,
        client_id=platform.client_id,
    )
    # The browser meets the platform on its HTTPS front; the hub fetches keys from the plain back.
    config += (
        f"c.LTI13Authenticator.authorize_url = {platform.auth_url!r}\n"
        f"c.LTI13Authenticator.jwks_endpoint = {platform.jwks_url!r}\n"
        # The default would also list the issuer's http://127.0.0.1 origin: only the front frames.
        f"c.LTI13Authenticator.frame_ancestors = [{platform.browser_origin!r}]\n"
        f"c.LTIAuthenticator.consumers = {dict([MOODLE11, PROMPT11])!r}\n"
        f"c.LTIAuthenticator.provisioning_modes_by_platform = {{{PROMPT11[0]!r}: "
        "{'instructor': 'existing_and_new_prompt', 'learner': 'new_only'}}\n"
        'c.LTIAuthenticator.local_authenticator_class = "dummy"\n'
        'c.DummyAuthenticator.password = "local-password-4711"\n'
    )
    cert, key = certificate
    hub = LocalhostHub(
        tmp_path_factory.mktemp("hub-chromium"), config, cert=cert, key=key, env={"JUPYTERHUB_CRYPT_KEY": crypt_key()}
    )
    with hub.start():
        assert hub.hub_url.startswith("https://localhost:"), hub.hub_url
        platform.register_redirect_uri(hub.callback_url)
        yield hub


@pytest.fixture
def learner(platform: PlatformPeer) -> PlatformPeer:
    """The platform, launching for a user of its own and with an empty storage log."""
    platform.user_id = new_user_id()
    platform.storage_log.clear()
    return platform


def browser(hub: LocalhostHub, platform: PlatformPeer, cookies: Cookies) -> Any:
    return chromium(cookies, tool_origin=hub.origin, platform_origin=platform.browser_origin)


def user_names(hub: LocalhostHub, certificate: tuple[Path, Path]) -> set[str]:
    response = requests.get(
        hub.hub_url + "api/users",
        headers={"Authorization": f"token {hub.api_token}"},
        verify=str(certificate[0]),
        timeout=30,
    )
    response.raise_for_status()
    return {user["name"] for user in response.json()}


def course(hub: LocalhostHub, platform: PlatformPeer, *, storage: bool, framed: bool = True) -> str:
    return platform.course_url(hub.login_url, hub.callback_url, storage=storage, framed=framed)


def body_text(driver: Any) -> str:
    try:
        return str(driver.find_element(By.TAG_NAME, "body").text)
    except Exception:  # noqa: BLE001 - the page is navigating
        return ""


def wait_for_text(driver: Any, text: str, timeout: float = 30) -> None:
    try:
        WebDriverWait(driver, timeout, poll_frequency=0.2).until(lambda d: text in body_text(d))
    except Exception as exc:
        raise AssertionError(f"{text!r} never appeared; the page shows: {body_text(driver)[:800]!r}") from exc


def into_tool_frame(driver: Any) -> None:
    driver.switch_to.default_content()
    WebDriverWait(driver, 30).until(lambda d: d.find_elements(By.ID, "tool"))
    driver.switch_to.frame("tool")


def wait_for_lab(driver: Any, hub: LocalhostHub, timeout: float = 90) -> str:
    """Wait until the current browsing context (window or frame) shows the learner's JupyterLab on
    the hub; returns the user's name."""
    seen: dict[str, Any] = {}

    def lab(d: Any) -> str | bool:
        try:
            where = d.execute_script(
                "return [location.origin, location.pathname, document.title,"
                " !!document.querySelector('#jp-main-dock-panel'),"
                # A refusal (role=alert), not the browser check or storage pages that share its layout
                # (aria-busy) on the way: caught between two of their steps, they are no refusal.
                " !!document.querySelector('.lti-error[role=alert]')]"
            )
        except Exception:  # noqa: BLE001 - the frame is navigating; look again
            return False
        seen["last"] = where
        origin, path, title, dock, refused = where
        if refused:  # the hub's LTI error page: no need to wait any longer
            raise AssertionError(f"the launch was refused at {path}: {body_text(d)[:800]!r}")
        match = LAB_PATH.match(path)
        if origin == hub.origin and match and dock and "JupyterLab" in title:
            return match.group(1)
        return False

    try:
        return str(WebDriverWait(driver, timeout, poll_frequency=0.3).until(lab))
    except AssertionError:
        raise
    except Exception as exc:
        raise AssertionError(
            f"JupyterLab never appeared; last seen {seen.get('last')!r}, the page shows: {body_text(driver)[:800]!r}"
        ) from exc


def assert_signed_in_as_new_user(
    hub: LocalhostHub, certificate: tuple[Path, Path], before: set[str], name: str
) -> None:
    """The launch made exactly one hub user, the one whose lab is shown."""
    assert user_names(hub, certificate) - before == {name}


# JavaScript run in the lab's frame: the user's server's REST API with the cookies the frame holds.
CONTENTS_API = """
const done = arguments[arguments.length - 1];
const [method, body] = [arguments[0], arguments[1]];
const base = location.pathname.replace(/\\/lab.*$/, "/");
const xsrf = (document.cookie.match(/(?:^|;\\s*)_xsrf=([^;]*)/) || [])[1];
fetch(base + "api/contents", {
  method,
  credentials: "same-origin",
  headers: {"X-XSRFToken": xsrf ? decodeURIComponent(xsrf) : "", "Content-Type": "application/json"},
  body: body === null ? undefined : JSON.stringify(body),
}).then(async (r) => done([r.status, !!xsrf, await r.text()]), (e) => done([0, !!xsrf, String(e)]));
"""


def test_framed_launch_with_platform_storage_and_third_party_cookies_blocked(hub, learner, certificate):
    before = user_names(hub, certificate)
    with browser(hub, learner, Cookies.BLOCK_THIRD_PARTY) as driver:
        driver.get(course(hub, learner, storage=True))
        into_tool_frame(driver)
        name = wait_for_lab(driver, hub)
    assert_signed_in_as_new_user(hub, certificate, before, name)
    # Bound through the platform's storage, not a cookie: the state went in and came back out.
    assert [(entry["subject"], entry["found"]) for entry in learner.storage_log] == [
        ("lti.put_data", True),
        ("lti.get_data", True),
    ]
    assert {entry["origin"] for entry in learner.storage_log} == {hub.origin}


def test_framed_launch_without_storage_or_cookies_offers_a_new_window_that_lands_on_the_lab(hub, learner, certificate):
    before = user_names(hub, certificate)
    with browser(hub, learner, Cookies.NONE_IN_FRAMES) as driver:
        driver.get(course(hub, learner, storage=False))
        into_tool_frame(driver)
        wait_for_text(driver, "state_not_bound")
        assert user_names(hub, certificate) == before
        frame_window = driver.current_window_handle
        link = driver.find_element(By.CSS_SELECTOR, "a.lti-error__action")
        assert link.text == "Open in a new window"
        link.click()
        WebDriverWait(driver, 30).until(lambda d: len(d.window_handles) == 2)
        driver.switch_to.window(next(h for h in driver.window_handles if h != frame_window))
        name = wait_for_lab(driver, hub)
        assert driver.current_url.startswith(f"{hub.origin}/user/{name}/lab")
    assert_signed_in_as_new_user(hub, certificate, before, name)


def test_launch_in_a_new_window_lands_on_the_lab(hub, learner, certificate):
    before = user_names(hub, certificate)
    with browser(hub, learner, Cookies.DEFAULT) as driver:
        driver.get(course(hub, learner, storage=False, framed=False))
        name = wait_for_lab(driver, hub)
        assert driver.current_url.startswith(f"{hub.origin}/user/{name}/lab")
    assert_signed_in_as_new_user(hub, certificate, before, name)
    assert learner.storage_log == []


def test_framed_launch_with_default_cookies_lands_on_the_lab_and_the_server_works_in_the_frame(
    hub, learner, certificate
):
    before = user_names(hub, certificate)
    with browser(hub, learner, Cookies.DEFAULT) as driver:
        driver.get(course(hub, learner, storage=False))
        into_tool_frame(driver)
        name = wait_for_lab(driver, hub)
        # A read, then a write: the server's login cookie and its _xsrf cookie ride the cross-site frame.
        status, has_xsrf, text = driver.execute_async_script(CONTENTS_API, "GET", None)
        assert has_xsrf and status == 200, (status, text[:500])
        status, _, text = driver.execute_async_script(CONTENTS_API, "POST", {"type": "notebook"})
        assert status == 201, (status, text[:500])
        created = driver.execute_async_script(CONTENTS_API, "GET", None)
        assert created[0] == 200 and '"Untitled.ipynb"' in created[2], created
    assert_signed_in_as_new_user(hub, certificate, before, name)
    assert learner.storage_log == []


def test_login_csrf_an_attackers_launch_posted_by_the_victims_browser_is_refused(hub, learner, certificate):
    """The attacker ran the login in their own client and stopped at the platform's form; the victim's
    browser (which never started a login) is made to post it, from a page on another site."""
    with requests.Session() as attacker:
        attacker.trust_env = False
        form = learner.login_form(hub.login_url, hub.callback_url)
        redirect = attacker.post(
            hub.login_url, data=form, allow_redirects=False, verify=str(certificate[0]), timeout=30
        )
        assert redirect.status_code == 302, redirect.text[:2000]
        assert redirect.headers["Location"].startswith(learner.auth_url)
        status, action, fields = learner.authorize_redirect(
            redirect.headers["Location"].replace(learner.browser_origin, learner.issuer)
        )
    assert status == 200 and action == hub.callback_url and "id_token" in fields
    before = user_names(hub, certificate)
    with browser(hub, learner, Cookies.DEFAULT) as driver:
        driver.get(learner.attacker_page_url(action, fields))
        wait_for_text(driver, "state_not_bound")
        time.sleep(0.5)  # nothing more happens (no late redirect into the hub)
        assert "state_not_bound" in body_text(driver)
        assert driver.current_url.startswith(hub.origin)
        assert not [c for c in driver.get_cookies() if c["name"] == "jupyterhub-hub-login"]
    assert user_names(hub, certificate) == before


# -- a frame that keeps none of the hub's cookies (lti_core.handover) --------------------------------


def lti11_course(hub: LocalhostHub, platform: PlatformPeer, consumer: tuple[str, str], **params: str) -> str:
    """The platform's course page, framing a signed LTI 1.1 launch of a new platform user."""
    url = hub.hub_url + "lti/ltiaccess"
    form = sign_lti11_launch(url, *consumer, moodle_lti11_params(user_id=new_user_id(), **params))
    return platform.lti11_course_url(url, form)


def open_new_window(driver: Any, label: str) -> None:
    """Click the frame's link ``label`` (target _blank) and switch to the window it opened."""
    frame_window = driver.current_window_handle
    link = driver.find_element(By.LINK_TEXT, label)
    assert link.get_attribute("target") == "_blank"
    link.click()
    WebDriverWait(driver, 30).until(lambda d: len(d.window_handles) == 2)
    driver.switch_to.window(next(h for h in driver.window_handles if h != frame_window))


def continues_on_the_lab_in_a_new_window(driver: Any, hub: LocalhostHub) -> str:
    into_tool_frame(driver)
    wait_for_text(driver, "cookies_blocked_in_frame")
    open_new_window(driver, "Open in a new window")
    name = wait_for_lab(driver, hub)
    assert driver.current_url.startswith(f"{hub.origin}/user/{name}/lab")
    return name


def test_lti11_in_a_frame_without_cookies_continues_on_the_lab_in_a_new_window(hub, learner, certificate):
    before = user_names(hub, certificate)
    with browser(hub, learner, Cookies.NONE_IN_FRAMES) as driver:
        driver.get(lti11_course(hub, learner, MOODLE11))
        name = continues_on_the_lab_in_a_new_window(driver, hub)
    assert_signed_in_as_new_user(hub, certificate, before, name)


def test_lti13_with_platform_storage_in_a_frame_without_cookies_continues_on_the_lab_in_a_new_window(
    hub, learner, certificate
):
    before = user_names(hub, certificate)
    with browser(hub, learner, Cookies.NONE_IN_FRAMES) as driver:
        driver.get(course(hub, learner, storage=True))
        name = continues_on_the_lab_in_a_new_window(driver, hub)
    assert_signed_in_as_new_user(hub, certificate, before, name)
    assert [entry["subject"] for entry in learner.storage_log] == ["lti.put_data", "lti.get_data"]


def test_lti11_in_a_frame_with_partitioned_cookies_lands_on_the_lab_in_the_frame(hub, learner, certificate):
    before = user_names(hub, certificate)
    with browser(hub, learner, Cookies.BLOCK_THIRD_PARTY) as driver:
        driver.get(lti11_course(hub, learner, MOODLE11))
        into_tool_frame(driver)
        name = wait_for_lab(driver, hub)
        assert len(driver.window_handles) == 1
    assert_signed_in_as_new_user(hub, certificate, before, name)


def test_the_lti11_prompt_in_a_frame_without_cookies_completes_in_a_new_window(hub, learner, certificate):
    before = user_names(hub, certificate)
    with browser(hub, learner, Cookies.NONE_IN_FRAMES) as driver:
        driver.get(lti11_course(hub, learner, PROMPT11, roles=INSTRUCTOR))
        into_tool_frame(driver)
        wait_for_text(driver, "Continue in a new window")
        assert driver.find_elements(By.TAG_NAME, "form") == []  # no button that could not work here
        open_new_window(driver, "Continue in a new window")
        wait_for_text(driver, "How do you want to continue?")
        driver.find_element(By.XPATH, "//button[normalize-space()='Create a new account']").click()
        name = wait_for_lab(driver, hub)
    assert_signed_in_as_new_user(hub, certificate, before, name)
