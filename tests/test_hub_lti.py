"""The JupyterHub host for real: a JupyterHub process behind configurable-http-proxy, launched into by a
Moodle-like LTI 1.3 platform (real RSA keys, real JWKS) and by LTI 1.1 forms signed with oauthlib.

Two hubs per module run: one with the LTI 1.3 authenticator, configured exactly as a
jupyterhub-ltiauthenticator 1.6 config with only ``authenticator_class`` changed (plus two more
platforms in ``platforms``), and one with the LTI 1.1 authenticator. Tests use their own platform
user ids, so they share the hubs without seeing each other's users.
"""

from __future__ import annotations

import base64
import concurrent.futures
import re
import secrets
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import pytest
import requests
from traitlets.config import Config, PyFileConfigLoader

from lti_peer import DELETE
from lti_peer.lti11 import INSTRUCTOR, moodle_lti11_params, sign_lti11_launch
from lti_peer.platform import INSTRUCTOR_ROLES, PlatformPeer, parse_autosubmit_form
from tests.hub import HubProcess

pytestmark = pytest.mark.slow

# What a browser sends with a form POST from another site (the platform's auto-submitted form).
CROSS_SITE = {"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Mode": "navigate", "Sec-Fetch-Dest": "document"}
CONSUMER_KEY, CONSUMER_SECRET = "moodle-key", "moodle-secret-0123456789"
OTHER_KEY, OTHER_SECRET = "canvas-key", "canvas-secret-9876543210"

#: A config for jupyterhub-ltiauthenticator 1.6's LTI 1.3 authenticator, as its docs write it.
LTIAUTHENTICATOR_13_CONFIG = """
c.JupyterHub.authenticator_class = "{authenticator_class}"
c.LTI13Authenticator.issuer = "{issuer}"
c.LTI13Authenticator.client_id = ["{client_id}"]
c.LTI13Authenticator.authorize_url = "{issuer}/auth"
c.LTI13Authenticator.jwks_endpoint = "{issuer}/jwks"
c.LTI13Authenticator.jwks_algorithms = ["RS256"]
c.LTI13Authenticator.uri_scheme = "auto"
c.LTI13Authenticator.tool_name = "Notebooks"
c.LTI13Authenticator.tool_description = "Course notebooks"
"""

#: The same for its LTI 1.1 authenticator.
LTIAUTHENTICATOR_11_CONFIG = """
c.JupyterHub.authenticator_class = "{authenticator_class}"
c.LTI11Authenticator.consumers = {{"{key}": "{secret}", "{other_key}": "{other_secret}"}}
c.LTI11Authenticator.username_key = "{username_key}"
c.LTI11Authenticator.uri_scheme = "auto"
c.LTI11Authenticator.config_title = "Notebooks"
c.LTI11Authenticator.config_description = "Course notebooks"
c.LTI11Authenticator.config_icon = "https://hub.example/icon.png"
"""


def crypt_key() -> str:
    return base64.b64encode(secrets.token_bytes(32)).decode()


@pytest.fixture(scope="module")
def platforms() -> Iterator[dict[str, PlatformPeer]]:
    """The drop-in platform, a strict one (listed deployments) and one whose JWKS answers slowly."""
    peers = {
        "moodle": PlatformPeer(client_id="moodle-client"),
        "strict": PlatformPeer(client_id="strict-client", deployment_id="7"),
        "slow": PlatformPeer(client_id="slow-client", jwks_delay=3.0),
    }
    for peer in peers.values():
        peer.start()
    yield peers
    for peer in peers.values():
        peer.stop()


@pytest.fixture(scope="module")
def hub13(tmp_path_factory: pytest.TempPathFactory, platforms: dict[str, PlatformPeer]) -> Iterator[HubProcess]:
    moodle, strict, slow = platforms["moodle"], platforms["strict"], platforms["slow"]
    config = LTIAUTHENTICATOR_13_CONFIG.format(
        authenticator_class="jupyter_lti.lti13.LTI13Authenticator", issuer=moodle.issuer, client_id=moodle.client_id
    )
    config += f"""
c.LTI13Authenticator.platforms = [
    {{"issuer": "{strict.issuer}", "client_id": "{strict.client_id}", "authorize_url": "{strict.auth_url}",
      "jwks_endpoint": "{strict.jwks_url}", "deployment_ids": ["7"]}},
    {{"issuer": "{slow.issuer}", "client_id": "{slow.client_id}", "authorize_url": "{slow.auth_url}",
      "jwks_endpoint": "{slow.jwks_url}"}},
]
c.LTI13Authenticator.instructor_group = "instructors"
"""
    hub = HubProcess(tmp_path_factory.mktemp("hub13"), config, env={"JUPYTERHUB_CRYPT_KEY": crypt_key()})
    with hub.start():
        for peer in platforms.values():
            peer.register_redirect_uri(hub.hub_url + "lti13/oauth_callback")
        yield hub


@pytest.fixture(scope="module")
def hub11(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    config = LTIAUTHENTICATOR_11_CONFIG.format(
        authenticator_class="lti11",  # the entry point name
        key=CONSUMER_KEY,
        secret=CONSUMER_SECRET,
        other_key=OTHER_KEY,
        other_secret=OTHER_SECRET,
        username_key="",
    )
    hub = HubProcess(tmp_path_factory.mktemp("hub11"), config, env={"JUPYTERHUB_CRYPT_KEY": crypt_key()})
    with hub.start():
        yield hub


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


def api(hub: HubProcess, path: str) -> Any:
    response = requests.get(
        hub.hub_url + "api/" + path, headers={"Authorization": f"token {hub.api_token}"}, timeout=30
    )
    response.raise_for_status()
    return response.json()


def user_names(hub: HubProcess) -> set[str]:
    return {user["name"] for user in api(hub, "users")}


def new_user_id() -> str:
    return str(secrets.randbelow(10**9) + 1000)


def launch13(
    browser: requests.Session,
    hub: HubProcess,
    platform: PlatformPeer,
    *,
    target: str = "",
    claims: dict[str, Any] | None = None,
    **login_overrides: Any,
) -> requests.Response:
    """A whole LTI 1.3 launch as the browser makes it; returns the hub's answer to the id_token POST."""
    login_url = hub.hub_url + "lti13/oauth_login"
    form = platform.login_form(
        login_url, target or hub.hub_url + "lti13/oauth_callback", claims=claims, **login_overrides
    )
    response = browser.post(login_url, data=form, headers=CROSS_SITE, allow_redirects=False, timeout=30)
    if response.status_code != 302:
        return response
    status, action, fields = platform.authorize_redirect(response.headers["Location"])
    assert status == 200 and action == hub.hub_url + "lti13/oauth_callback", (status, action, fields)
    return browser.post(action, data=fields, headers=CROSS_SITE, allow_redirects=False, timeout=60)


def launch11(
    browser: requests.Session,
    hub: HubProcess,
    *,
    key: str = CONSUMER_KEY,
    secret: str = CONSUMER_SECRET,
    path: str = "lti/ltiaccess",
    url: str = "",
    headers: dict[str, str] | None = None,
    **params: Any,
) -> requests.Response:
    launch_url = hub.hub_url + path
    form = sign_lti11_launch(url or launch_url, key, secret, moodle_lti11_params(**params))
    return browser.post(
        launch_url, data=form, headers={**CROSS_SITE, **(headers or {})}, allow_redirects=False, timeout=60
    )


def follow_to_server(browser: requests.Session, hub: HubProcess, response: requests.Response) -> requests.Response:
    """Follow the redirects after a launch, as the browser does, until the user's server answers.

    The spawn-pending page waits for the server with JavaScript; here the REST API is polled instead.
    """
    assert response.status_code == 302, response.text[:2000]
    deadline = time.monotonic() + 90
    location = response.headers["Location"]
    while time.monotonic() < deadline:
        response = browser.get(requests.compat.urljoin(hub.url, location), allow_redirects=False, timeout=60)
        if response.status_code in (301, 302, 303, 307):
            location = response.headers["Location"]
            continue
        pending = re.match(r"/hub/spawn-pending/([^/?]+)", urlsplit(response.url).path)
        if pending is None:
            return response
        name = pending.group(1)
        while not api(hub, f"users/{name}")["servers"].get("", {}).get("ready"):
            assert time.monotonic() < deadline, "the user's server never became ready"
            time.sleep(0.3)
        location = f"/user/{name}/"
    raise AssertionError("the launch never reached the user's server")


def assert_refused(response: requests.Response, reason: str, status: int | None = None) -> None:
    assert 400 <= response.status_code < 500, (response.status_code, response.text[:500])
    if status is not None:
        assert response.status_code == status
    assert f"<code>{reason}</code>" in response.text, response.text[:2000]
    assert "Traceback" not in response.text


# -- LTI 1.3 -------------------------------------------------------------------------------------


def test_lti13_launch_creates_the_user_and_lands_on_their_server(browser, hub13, platforms):
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    response = launch13(browser, hub13, moodle)
    assert response.status_code == 302, response.text[:2000]
    name = next(n for n in user_names(hub13) if n.startswith("sam_"))
    landed = follow_to_server(browser, hub13, response)
    assert landed.status_code == 200
    assert urlsplit(landed.url).path.startswith(f"/user/{name}/"), landed.url
    user = api(hub13, f"users/{name}")
    assert user["servers"][""]["ready"] is True
    assert user["admin"] is False and user["groups"] == []


def test_second_launch_reuses_the_user_and_keeps_the_launch_context(browser, hub13, platforms):
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    before = user_names(hub13)
    assert launch13(browser, hub13, moodle).status_code == 302
    (name,) = user_names(hub13) - before
    with requests.Session() as other_browser:
        assert launch13(other_browser, hub13, moodle).status_code == 302
    assert user_names(hub13) - before == {name}
    state = api(hub13, f"users/{name}")["auth_state"]["lti"]
    assert state["platform"] == moodle.issuer and state["user_id"] == moodle.user_id
    services = state["services"]
    assert services["ags"]["lineitem_url"].startswith(moodle.issuer) and services["ags"]["scopes"]
    assert services["nrps"]["memberships_url"].startswith(moodle.issuer)
    assert state["context"]["id"] == "2" and state["resource_link"]["id"] == "1"


def test_same_sub_on_another_platform_is_another_user(browser, hub13, platforms):
    moodle, strict = platforms["moodle"], platforms["strict"]
    moodle.user_id = strict.user_id = new_user_id()
    before = user_names(hub13)
    assert launch13(browser, hub13, moodle).status_code == 302
    with requests.Session() as other:
        assert launch13(other, hub13, strict).status_code == 302
    assert len(user_names(hub13) - before) == 2


def test_instructor_joins_the_instructor_group_and_a_learner_never_is_admin(browser, hub13, platforms):
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    before = user_names(hub13)
    assert launch13(browser, hub13, moodle, claims={"roles": INSTRUCTOR_ROLES}).status_code == 302
    (name,) = user_names(hub13) - before
    assert api(hub13, f"users/{name}")["groups"] == ["instructors"]
    with requests.Session() as other:  # the same person, a learner in another course
        assert launch13(other, hub13, moodle).status_code == 302
    user = api(hub13, f"users/{name}")
    assert user["groups"] == [] and user["admin"] is False


def test_custom_next_opens_a_notebook_path_in_the_users_server(browser, hub13, platforms):
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    response = launch13(browser, hub13, moodle, claims={"custom": {"next": "lab/tree/week1/intro.ipynb"}})
    assert response.status_code == 302
    assert response.headers["Location"] == "/hub/user-redirect/lab/tree/week1/intro.ipynb"


def test_landing_outside_the_hub_is_never_used(browser, hub13, platforms):
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    response = launch13(browser, hub13, moodle, claims={"custom": {"next": "https://evil.example/phish"}})
    assert response.status_code == 302
    assert not urlsplit(response.headers["Location"]).netloc
    assert_refused(
        launch13(browser, hub13, moodle, target="https://evil.example/hub/"), "target_link_outside_tool", 403
    )


def test_target_link_uri_within_the_hub_is_where_the_launch_lands(browser, hub13, platforms):
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    target = hub13.hub_url + "user-redirect/lab/tree/project.ipynb"
    response = launch13(browser, hub13, moodle, target=target)
    assert response.status_code == 302
    assert response.headers["Location"] == "/hub/user-redirect/lab/tree/project.ipynb"


REFUSED_13 = [
    ({"aud": "someone-else"}, "wrong_audience", 401),
    ({"iss": "https://evil.example"}, "wrong_issuer", 401),
    ({"exp": 1_000_000_000}, "token_expired", 401),
    ({"nonce": "not-the-nonce"}, "nonce_mismatch", 401),
    ({"deployment_id": DELETE}, "unknown_deployment", 403),
    ({"sub": DELETE}, "sub_missing", 400),
    ({"version": "1.1.0"}, "invalid_version", 400),
    ({"message_type": "LtiSomethingElse"}, "unsupported_message_type", 400),
]


@pytest.mark.parametrize(("claims", "reason", "status"), REFUSED_13, ids=[r for _, r, _ in REFUSED_13])
def test_refused_lti13_launches_get_a_readable_page_and_make_no_user(claims, reason, status, browser, hub13, platforms):
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    before = user_names(hub13)
    assert_refused(launch13(browser, hub13, moodle, claims=claims), reason, status)
    assert user_names(hub13) == before


def test_forged_replayed_and_stateless_id_tokens_are_refused(browser, hub13, platforms):
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    login_url = hub13.hub_url + "lti13/oauth_login"
    form = moodle.login_form(login_url, hub13.hub_url + "lti13/oauth_callback")
    response = browser.post(login_url, data=form, headers=CROSS_SITE, allow_redirects=False)
    _, action, fields = moodle.authorize_redirect(response.headers["Location"])
    head, body, signature = fields["id_token"].split(".")
    forged = {**fields, "id_token": f"{head}.{body}.{signature[:-4]}AAAA"}
    assert_refused(browser.post(action, data=forged, headers=CROSS_SITE), "bad_signature", 401)
    assert_refused(browser.post(action, data={**fields, "state": ""}, headers=CROSS_SITE), "state_missing", 400)
    assert browser.post(action, data=fields, headers=CROSS_SITE, allow_redirects=False).status_code == 302
    # A state serves one launch: the replay finds it gone.
    assert_refused(browser.post(action, data=fields, headers=CROSS_SITE), "state_unknown", 401)


def test_login_csrf_an_id_token_and_state_posted_by_another_browser_are_refused(browser, hub13, platforms):
    """The attacker starts a launch, stops at the platform's form and has the victim's browser post it."""
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    login_url = hub13.hub_url + "lti13/oauth_login"
    with requests.Session() as attacker:
        form = moodle.login_form(login_url, hub13.hub_url + "lti13/oauth_callback")
        response = attacker.post(login_url, data=form, headers=CROSS_SITE, allow_redirects=False)
    _, action, fields = moodle.authorize_redirect(response.headers["Location"])
    users = user_names(hub13)
    check = browser.post(action, data=fields, headers=CROSS_SITE, allow_redirects=False)
    assert check.status_code == 200 and 'name="lti_repost"' in check.text  # the browser check page
    assert not any(name.startswith("jupyterhub-") for name in browser.cookies.keys())
    _, repost_fields = parse_autosubmit_form(check.text)
    for fetch_site in ("same-origin", "cross-site"):
        refused = browser.post(
            action, data=repost_fields, headers={"Sec-Fetch-Site": fetch_site}, allow_redirects=False
        )
        assert_refused(refused, "state_not_bound", 403)
        assert "lti13/oauth_login?" in refused.text  # the new-window relaunch link
    assert user_names(hub13) == users


def test_deployments_listed_for_a_platform_are_enforced(browser, hub13, platforms):
    strict = platforms["strict"]
    strict.user_id = new_user_id()
    assert_refused(launch13(browser, hub13, strict, claims={"deployment_id": "8"}), "unknown_deployment", 403)
    assert launch13(browser, hub13, strict).status_code == 302


def test_unknown_platform_is_refused_at_login(browser, hub13, platforms):
    response = launch13(browser, hub13, platforms["moodle"], iss="https://unknown.example")
    assert_refused(response, "unknown_platform", 401)


def test_an_oversized_login_hint_is_refused_with_a_reason(browser, hub13, platforms):
    users = user_names(hub13)
    response = launch13(browser, hub13, platforms["moodle"], login_hint="x" * 20_000)
    assert_refused(response, "login_hint_invalid", 400)
    assert user_names(hub13) == users


def test_a_slow_jwks_fetch_does_not_block_the_hub(browser, hub13, platforms):
    slow = platforms["slow"]  # its JWKS answers after 3 s, and nothing has fetched it yet
    slow.user_id = new_user_id()
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        launching = pool.submit(launch13, browser, hub13, slow)
        while slow.jwks_fetches == 0:  # the hub is now waiting on the platform
            assert not launching.done(), launching.result().text[:2000]
            time.sleep(0.05)
        started = time.monotonic()
        answer = requests.get(hub13.hub_url + "api/", timeout=10)
        waited = time.monotonic() - started
        assert answer.status_code == 200 and not launching.done()
        assert waited < 1.0, f"/hub/api answered after {waited:.2f} s: the launch blocked the event loop"
        assert launching.result().status_code == 302
    assert slow.jwks_fetches == 1
    slow.user_id = new_user_id()
    with requests.Session() as other:
        assert launch13(other, hub13, slow).status_code == 302
    assert slow.jwks_fetches == 1  # steady state: the cached key set, no fetch


def test_lti_posts_need_no_xsrf_but_other_hub_forms_keep_it(browser, hub13, platforms):
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    response = launch13(browser, hub13, moodle)  # cross-site POSTs without any _xsrf
    assert response.status_code == 302
    refused = browser.post(hub13.hub_url + "spawn", headers=CROSS_SITE, allow_redirects=False)
    assert refused.status_code == 403 and "_xsrf" in refused.text


def test_lti13_behind_a_proxy_uses_the_public_url(browser, hub13_proxied, platforms):
    """The redirect URI sent to the platform and the target link check use the forwarded public URL, on a hub
    that trusts its proxies (`trusted_proxies`; the test client stands for the TLS proxy on loopback)."""
    forwarded = {**CROSS_SITE, "X-Forwarded-Proto": "https", "X-Forwarded-Host": "hub.example.org"}
    moodle = platforms["moodle"]
    login_url = hub13_proxied.hub_url + "lti13/oauth_login"
    public_target = "https://hub.example.org/hub/lti13/oauth_callback"
    form = moodle.login_form(login_url, public_target)
    response = browser.post(login_url, data=form, headers=forwarded, allow_redirects=False)
    assert response.status_code == 302, response.text[:2000]
    query = dict(parse_qsl(urlsplit(response.headers["Location"]).query))
    assert query["redirect_uri"] == public_target
    # Without the proxy's headers, the same public target is not this hub's address.
    form = moodle.login_form(login_url, public_target)
    refused = browser.post(login_url, data=form, headers=CROSS_SITE, allow_redirects=False)
    assert_refused(refused, "target_link_outside_tool", 403)


def test_tool_jwks_and_config_are_served(hub13):
    jwks = requests.get(hub13.hub_url + "lti13/jwks", timeout=10).json()
    assert jwks["keys"] and all(set(k) <= {"kty", "n", "e", "kid", "alg", "use"} for k in jwks["keys"])
    config = requests.get(hub13.hub_url + "lti13/config", timeout=10).json()
    assert config["oidc_initiation_url"] == hub13.hub_url + "lti13/oauth_login"
    assert config["public_jwk_url"] == hub13.hub_url + "lti13/jwks"
    assert config["title"] == "Notebooks"


def test_a_visit_without_a_launch_explains_how_to_get_in(hub13):
    response = requests.get(hub13.url, timeout=10)
    assert_refused(response, "not_signed_in", 401)


# -- LTI 1.1 -------------------------------------------------------------------------------------


def test_lti11_launch_creates_the_user_and_lands_on_their_server(browser, hub11):
    user_id = new_user_id()
    before = user_names(hub11)
    response = launch11(browser, hub11, user_id=user_id)
    landed = follow_to_server(browser, hub11, response)
    (name,) = user_names(hub11) - before
    assert landed.status_code == 200 and urlsplit(landed.url).path.startswith(f"/user/{name}/")
    state = api(hub11, f"users/{name}")["auth_state"]
    outcome = state["lti"]["services"]["basic_outcome"]
    assert outcome["service_url"] == "https://moodle.example/mod/lti/service.php"
    assert outcome["sourcedid"].startswith('{"data"')
    assert "oauth_signature" not in state and state["user_id"] == user_id


def test_lti11_second_launch_and_the_old_launch_url_reuse_the_user(browser, hub11):
    user_id = new_user_id()
    before = user_names(hub11)
    assert launch11(browser, hub11, user_id=user_id).status_code == 302
    assert launch11(browser, hub11, user_id=user_id, path="lti/launch").status_code == 302
    assert len(user_names(hub11) - before) == 1


def test_lti11_same_user_id_from_another_consumer_is_another_user(browser, hub11):
    user_id = new_user_id()
    before = user_names(hub11)
    assert launch11(browser, hub11, user_id=user_id).status_code == 302
    assert launch11(browser, hub11, user_id=user_id, key=OTHER_KEY, secret=OTHER_SECRET).status_code == 302
    assert len(user_names(hub11) - before) == 2


def test_lti11_behind_a_proxy_checks_the_public_url(browser, hub11_proxied):
    """On a hub that trusts its proxies (`trusted_proxies`; the test client stands for the TLS proxy)."""
    public = "https://hub.example.org/hub/lti/ltiaccess"
    forwarded = {"X-Forwarded-Proto": "https", "X-Forwarded-Host": "hub.example.org"}
    assert launch11(browser, hub11_proxied, user_id=new_user_id(), url=public, headers=forwarded).status_code == 302
    assert_refused(launch11(browser, hub11_proxied, user_id=new_user_id(), url=public), "bad_signature", 401)


def test_refused_lti11_launches_get_a_readable_page_and_make_no_user(browser, hub11):
    before = user_names(hub11)
    assert_refused(launch11(browser, hub11, user_id=new_user_id(), secret="wrong"), "bad_signature", 401)
    assert_refused(launch11(browser, hub11, key="nobody", user_id=new_user_id()), "unknown_consumer", 401)
    assert_refused(launch11(browser, hub11, user_id=""), "user_id_missing", 400)
    url = hub11.hub_url + "lti/ltiaccess"
    old = sign_lti11_launch(
        url,
        CONSUMER_KEY,
        CONSUMER_SECRET,
        moodle_lti11_params(user_id=new_user_id()),
        timestamp=int(time.time()) - 3600,
    )
    assert_refused(browser.post(url, data=old, headers=CROSS_SITE), "timestamp_out_of_window", 401)
    assert_refused(browser.get(url), "method_not_allowed", 405)
    assert user_names(hub11) == before
    form = sign_lti11_launch(url, CONSUMER_KEY, CONSUMER_SECRET, moodle_lti11_params(user_id=new_user_id()))
    assert browser.post(url, data=form, headers=CROSS_SITE, allow_redirects=False).status_code == 302
    after_first = user_names(hub11)
    assert_refused(browser.post(url, data=form, headers=CROSS_SITE), "nonce_reused", 401)
    assert user_names(hub11) == after_first


def test_lti11_instructor_is_not_admin_by_default(browser, hub11):
    before = user_names(hub11)
    assert launch11(browser, hub11, user_id=new_user_id(), roles=INSTRUCTOR).status_code == 302
    (name,) = user_names(hub11) - before
    assert api(hub11, f"users/{name}")["admin"] is False


def test_lti11_config_xml(hub11):
    xml = requests.get(hub11.hub_url + "lti11/config", timeout=10).text
    assert f"<blti:launch_url>{hub11.hub_url}lti/ltiaccess</blti:launch_url>" in xml
    assert "<blti:title>Notebooks</blti:title>" in xml


# -- drop-in for jupyterhub-ltiauthenticator ------------------------------------------------------


def load(config_text: str, tmp_path: Path) -> Config:
    path = tmp_path / "jupyterhub_config.py"
    path.write_text(config_text)
    return PyFileConfigLoader(path.name, str(tmp_path)).load_config()


@pytest.mark.parametrize("version", ["1.1", "1.3"])
def test_an_ltiauthenticator_config_is_understood_by_both_classes(version, tmp_path):
    """The config the hubs above run on is a genuine jupyterhub-ltiauthenticator config: its traits load
    into ltiauthenticator's class and into ours, with the same values."""
    if version == "1.3":
        from ltiauthenticator.lti13.auth import LTI13Authenticator as Theirs

        from jupyter_lti.lti13 import LTI13Authenticator as Ours

        text = LTIAUTHENTICATOR_13_CONFIG.format(
            authenticator_class="x", issuer="https://moodle.example", client_id="abc"
        )
        traits = [
            "issuer",
            "client_id",
            "authorize_url",
            "jwks_endpoint",
            "jwks_algorithms",
            "uri_scheme",
            "tool_name",
            "tool_description",
        ]
    else:
        from ltiauthenticator.lti11.auth import LTI11Authenticator as Theirs

        from jupyter_lti.lti11 import LTI11Authenticator as Ours

        text = LTIAUTHENTICATOR_11_CONFIG.format(
            authenticator_class="x", key="k", secret="s", other_key="k2", other_secret="s2", username_key="user_id"
        )
        traits = ["consumers", "username_key", "uri_scheme", "config_title", "config_description", "config_icon"]
    config = load(text, tmp_path)
    theirs, ours = Theirs(config=config), Ours(config=config, store_url="sqlite://")
    for trait in traits:
        assert getattr(ours, trait) == getattr(theirs, trait), trait
        assert ours.trait_metadata(trait, "config") and ours.trait_metadata(trait, "help"), trait
    # Ours stands on its own (no option listed twice by `jupyterhub --help-all`, tests/test_hub_help.py),
    # under the same name, with every option theirs has: no config of theirs is "not recognized".
    assert Ours.__name__ == Theirs.__name__ and not issubclass(Ours, Theirs)
    mine = Ours.class_traits(config=True)
    for name in Theirs.class_traits(config=True):
        assert name in mine and len(mine[name].help) > 40, name


def test_every_option_is_configurable_with_help_that_links_the_spec():
    from jupyter_lti.lti11 import LTI11Authenticator
    from jupyter_lti.lti13 import LTI13Authenticator

    for cls in (LTI11Authenticator, LTI13Authenticator):
        own = {name for k in cls.mro() if k.__module__.startswith("jupyter_lti") for name in vars(k)}
        for name, trait in cls.class_traits(config=True).items():
            if name in own:
                assert len(trait.help) > 40, f"{cls.__name__}.{name}"
        protocol = [
            n for n in ("username_key", "uri_scheme", "jwks_endpoint", "consumers") if cls.class_traits().get(n)
        ]
        for name in protocol:
            assert re.search(r"https://www\.imsglobal\.org/spec", cls.class_traits()[name].help), name


def test_authenticators_are_registered_as_entry_points():
    from importlib.metadata import entry_points

    names = {ep.name: ep.value for ep in entry_points(group="jupyterhub.authenticators")}
    assert names["lti11"] == "jupyter_lti.lti11:LTI11Authenticator"
    assert names["lti13"] == "jupyter_lti.lti13:LTI13Authenticator"


# -- where a launch lands: never outside the hub (lti_core.urls.safe_landing_path) -----------------------

EVIL_NEXT = ["//evil.example/x", "///evil.example/"]


def assert_lands_inside(hub: HubProcess, response: requests.Response) -> str:
    assert response.status_code == 302, response.text[:2000]
    location = response.headers["Location"]
    assert location.startswith("/") and not location.startswith("//") and "\\" not in location, location
    assert "evil.example" not in location
    assert urlsplit(requests.compat.urljoin(hub.url, location)).netloc == urlsplit(hub.url).netloc
    return location


@pytest.mark.parametrize("evil", EVIL_NEXT)
def test_lti13_custom_next_never_leaves_the_hub(evil, browser, hub13, platforms):
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    assert_lands_inside(hub13, launch13(browser, hub13, moodle, claims={"custom": {"next": evil}}))


@pytest.mark.parametrize("evil", EVIL_NEXT)
def test_lti13_next_in_the_target_link_never_leaves_the_hub(evil, browser, hub13, platforms):
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    target = hub13.hub_url + "lti13/oauth_callback?" + urlencode({"next": evil})
    assert_lands_inside(hub13, launch13(browser, hub13, moodle, target=target))


@pytest.mark.parametrize("evil", EVIL_NEXT)
def test_lti11_custom_next_never_leaves_the_hub(evil, browser, hub11):
    assert_lands_inside(hub11, launch11(browser, hub11, user_id=new_user_id(), custom_next=evil))


def test_lti11_custom_next_inside_the_hub_is_kept(browser, hub11):
    response = launch11(browser, hub11, user_id=new_user_id(), custom_next="lab/tree/week1/intro.ipynb")
    assert assert_lands_inside(hub11, response) == "/hub/user-redirect/lab/tree/week1/intro.ipynb"


# -- forwarded headers: believed from `trusted_proxies` only (lti_core.forwarded) --------------------------

#: What a client sends to have a launch signed for another tool (sharing the key and secret) checked here.
OTHER_TOOL = {"X-Forwarded-Host": "other-tool.example", "X-Forwarded-Proto": "http"}


@pytest.fixture(scope="module")
def hub13_proxied(tmp_path_factory: pytest.TempPathFactory, platforms: dict[str, PlatformPeer]) -> Iterator[HubProcess]:
    """An LTI 1.3 hub set up for a TLS proxy on its machine: JupyterHub's proxy and the TLS proxy in front of
    it both on loopback, hence `trusted_proxies = ["127.0.0.1"]`."""
    moodle = platforms["moodle"]
    config = LTIAUTHENTICATOR_13_CONFIG.format(
        authenticator_class="jupyter_lti.lti13.LTI13Authenticator", issuer=moodle.issuer, client_id=moodle.client_id
    )
    config += 'c.LTI13Authenticator.trusted_proxies = ["127.0.0.1"]\n'
    hub = HubProcess(tmp_path_factory.mktemp("hub13-proxied"), config)
    with hub.start():
        yield hub


@pytest.fixture(scope="module")
def hub11_proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HubProcess]:
    """The LTI 1.1 hub, set up like hub13_proxied."""
    config = LTIAUTHENTICATOR_11_CONFIG.format(
        authenticator_class="lti11",
        key=CONSUMER_KEY,
        secret=CONSUMER_SECRET,
        other_key=OTHER_KEY,
        other_secret=OTHER_SECRET,
        username_key="",
    )
    config += 'c.LTI11Authenticator.trusted_proxies = ["127.0.0.1"]\n'
    hub = HubProcess(tmp_path_factory.mktemp("hub11-proxied"), config)
    with hub.start():
        yield hub


class _FromAddress(requests.adapters.HTTPAdapter):
    """Connections from another loopback address."""

    def __init__(self, address: str) -> None:
        self.address = address
        super().__init__()

    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        super().init_poolmanager(*args, source_address=(self.address, 0), **kwargs)


@pytest.fixture
def remote_browser() -> Iterator[requests.Session]:
    """A browser on 127.0.0.2: reaches the hub through its proxy, but is no trusted proxy itself."""
    with requests.Session() as session:
        session.mount("http://", _FromAddress("127.0.0.2"))
        yield session


def test_lti11_forwarded_host_and_scheme_from_a_client_are_ignored_by_default(browser, hub11):
    before = user_names(hub11)
    other = "http://other-tool.example/hub/lti/ltiaccess"
    for headers in (OTHER_TOOL, {"X-Forwarded-Host": "other-tool.example, other-tool.example"}):
        response = launch11(browser, hub11, user_id=new_user_id(), url=other, headers=headers)
        assert_refused(response, "bad_signature", 401)
    # The scheme alone (tornado's xheaders believe X-Scheme from anyone; the hub does not).
    https = hub11.hub_url.replace("http://", "https://") + "lti/ltiaccess"
    for headers in ({"X-Forwarded-Proto": "https"}, {"X-Scheme": "https"}):
        assert_refused(launch11(browser, hub11, user_id=new_user_id(), url=https, headers=headers), "bad_signature")
    assert user_names(hub11) == before


def test_lti13_target_link_at_a_forwarded_host_is_refused_by_default(browser, hub13, platforms):
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    before = user_names(hub13)
    login_url = hub13.hub_url + "lti13/oauth_login"
    other = "http://other-tool.example/hub/lti13/oauth_callback"
    spoofed = {**CROSS_SITE, **OTHER_TOOL}
    refused = browser.post(login_url, data=moodle.login_form(login_url, other), headers=spoofed, allow_redirects=False)
    assert_refused(refused, "target_link_outside_tool", 403)
    # At the launch too: a login for this hub, then an id_token naming the other host, posted with its headers.
    form = moodle.login_form(login_url, hub13.hub_url + "lti13/oauth_callback", claims={"target_link_uri": other})
    response = browser.post(login_url, data=form, headers=CROSS_SITE, allow_redirects=False)
    _, action, fields = moodle.authorize_redirect(response.headers["Location"])
    refused = browser.post(action, data=fields, headers=spoofed, allow_redirects=False)
    assert_refused(refused, "target_link_outside_tool", 403)
    assert user_names(hub13) == before


def test_behind_a_trusted_proxy_a_client_cannot_forward_a_host_through_jupyterhubs_proxy(remote_browser, hub11_proxied):
    """configurable-http-proxy (trusted) passes a client's X-Forwarded-Host on: it counts only when set by a
    trusted proxy in front of it."""
    before = user_names(hub11_proxied)
    other = "http://other-tool.example/hub/lti/ltiaccess"
    refused = launch11(remote_browser, hub11_proxied, user_id=new_user_id(), url=other, headers=OTHER_TOOL)
    assert_refused(refused, "bad_signature", 401)
    assert user_names(hub11_proxied) == before
    # The same client's genuine launch goes through: it is only not a trusted proxy.
    assert launch11(remote_browser, hub11_proxied, user_id=new_user_id()).status_code == 302


def test_behind_a_trusted_proxy_a_client_cannot_forward_a_target_link_host(remote_browser, hub13_proxied, platforms):
    moodle = platforms["moodle"]
    login_url = hub13_proxied.hub_url + "lti13/oauth_login"
    form = moodle.login_form(login_url, "http://other-tool.example/hub/lti13/oauth_callback")
    spoofed = {**CROSS_SITE, **OTHER_TOOL}
    refused = remote_browser.post(login_url, data=form, headers=spoofed, allow_redirects=False)
    assert_refused(refused, "target_link_outside_tool", 403)


# The hub's public origin from what its proxy sends, without a hub: LTIAuthenticator.public_origin.


def hub_handler(peer: str, host: str, headers: dict[str, str], public_url: str = "") -> Any:
    """A request as the hub's tornado server receives it from ``peer`` (before tornado's xheaders)."""
    from types import SimpleNamespace

    from tornado.httputil import HTTPHeaders, HTTPServerRequest, RequestStartLine

    context = SimpleNamespace(_orig_remote_ip=peer, _orig_protocol="http", remote_ip=peer, protocol="http")
    request = HTTPServerRequest(
        start_line=RequestStartLine("POST", "/hub/lti/ltiaccess", "HTTP/1.1"),
        headers=HTTPHeaders({"Host": host, **headers}),
        connection=SimpleNamespace(context=context),
    )
    settings = {"base_url": "/", **({"public_url": public_url} if public_url else {})}
    return SimpleNamespace(request=request, settings=settings)


def authenticator(**traits: Any) -> Any:
    from jupyter_lti.lti11 import LTI11Authenticator

    return LTI11Authenticator(store_url="sqlite://", **traits)


#: Deployments: (trusted_proxies, hub's peer, Host, headers as they reach the hub, public origin).
DEPLOYMENTS = [
    pytest.param(
        [],
        "127.0.0.1",
        "hub.example.org",
        {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "http", "X-Forwarded-Host": "evil.example"},
        "http://hub.example.org",
        id="default: a client's headers through CHP are ignored",
    ),
    pytest.param(
        [],
        "127.0.0.1",
        "hub.example.org",
        {"X-Forwarded-For": "203.0.113.9", "X-Scheme": "https", "X-Real-Ip": "127.0.0.1"},
        "http://hub.example.org",
        id="default: X-Scheme and X-Real-Ip too",
    ),
    pytest.param(
        ["127.0.0.1"],
        "127.0.0.1",
        "hub.example.org",
        {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "evil.example"},
        "https://hub.example.org",
        id="CHP serving TLS itself: its scheme, the Host header, not the client's X-Forwarded-Host",
    ),
    pytest.param(
        ["127.0.0.1"],
        "127.0.0.1",
        "127.0.0.1:8000",
        {
            "X-Forwarded-For": "198.51.100.1, 203.0.113.9, 127.0.0.1",
            "X-Forwarded-Proto": "https,http",
            "X-Forwarded-Host": "hub.example.org",
        },
        "https://hub.example.org",
        id="nginx on loopback in front of CHP",
    ),
    pytest.param(
        ["10.0.0.0/8"],
        "10.1.0.5",
        "hub.example.org",
        {
            "X-Forwarded-For": "203.0.113.9, 10.2.0.7",
            "X-Forwarded-Proto": "https,http",
            "X-Forwarded-Host": "hub.example.org",
        },
        "https://hub.example.org",
        id="Kubernetes: ingress and proxy pods",
    ),
    pytest.param(
        ["10.0.0.0/8"],
        "192.0.2.1",
        "hub.example.org",
        {"X-Forwarded-For": "10.2.0.7", "X-Forwarded-Proto": "https,https", "X-Forwarded-Host": "evil.example"},
        "http://hub.example.org",
        id="a client reaching the hub's port directly",
    ),
]


@pytest.mark.parametrize(("trusted", "peer", "host", "headers", "expected"), DEPLOYMENTS)
def test_the_hubs_public_origin_behind_proxies(trusted, peer, host, headers, expected):
    assert authenticator(trusted_proxies=trusted).public_origin(hub_handler(peer, host, headers)) == expected


def test_public_url_wins_over_everything_and_uri_scheme_over_the_headers():
    chp_tls = {"X-Forwarded-For": "127.0.0.1", "X-Forwarded-Proto": "https", "X-Forwarded-Host": "hub.example.org"}
    handler = hub_handler("127.0.0.1", "127.0.0.1:8000", chp_tls, public_url="https://public.example/")
    assert authenticator(trusted_proxies=["127.0.0.1"]).public_origin(handler) == "https://public.example"
    handler = hub_handler("127.0.0.1", "hub.example.org", chp_tls)
    assert authenticator(uri_scheme="https").public_origin(handler) == "https://hub.example.org"
    assert (
        authenticator(uri_scheme="http", trusted_proxies=["127.0.0.1"]).public_origin(handler)
        == "http://hub.example.org"
    )


def test_trusted_proxies_must_be_addresses_or_networks():
    from traitlets import TraitError

    with pytest.raises(TraitError, match="proxy.example"):
        authenticator(trusted_proxies=["127.0.0.1", "proxy.example"])


def test_deprecated_trust_forwarded_headers_trusts_loopback_only_and_warns(caplog):
    import logging

    log = logging.getLogger("test-hub-auth")
    with caplog.at_level(logging.WARNING, logger=log.name):
        auth = authenticator(log=log, trust_forwarded_headers=True)
    assert "trust_forwarded_headers is deprecated" in caplog.text
    nginx = {
        "X-Forwarded-For": "203.0.113.9, 127.0.0.1",
        "X-Forwarded-Proto": "https,http",
        "X-Forwarded-Host": "hub.example.org",
    }
    assert auth.public_origin(hub_handler("127.0.0.1", "127.0.0.1:8000", nginx)) == "https://hub.example.org"
    assert auth.public_origin(hub_handler("::1", "127.0.0.1:8000", nginx)) == "https://hub.example.org"
    assert auth.public_origin(hub_handler("10.0.0.1", "127.0.0.1:8000", nginx)) == "http://127.0.0.1:8000"


def test_an_https_hub_without_trusted_proxies_says_what_to_set_once(caplog):
    import logging

    log = logging.getLogger("test-hub-auth-hint")
    auth = authenticator(log=log)
    chp_tls = {"X-Forwarded-For": "203.0.113.9", "X-Forwarded-Proto": "https"}
    with caplog.at_level(logging.WARNING, logger=log.name):
        for _ in range(3):
            assert auth.public_origin(hub_handler("127.0.0.1", "hub.example.org", chp_tls)) == "http://hub.example.org"
    assert caplog.text.count("trusted_proxies") == 1 and "public_url" in caplog.text


def launch_context_rows(hub: HubProcess, platform: str, user_id: str) -> list[dict[str, Any]]:
    """The launch contexts of a platform identity, read from the hub's LTI store (beside its database)."""
    import contextlib
    import json
    import sqlite3

    with contextlib.closing(sqlite3.connect(hub.workdir / "lti_publish.sqlite")) as db:
        db.row_factory = sqlite3.Row
        rows = db.execute(
            "SELECT * FROM lti_publish_launch_contexts WHERE platform = ? AND platform_user_id = ?", (platform, user_id)
        ).fetchall()
    return [{**dict(row), "services": json.loads(row["services"]), "roles": json.loads(row["roles"])} for row in rows]


def test_launches_keep_one_launch_context_per_user_and_link_in_the_store(browser, hub13, platforms):
    """What grade and roster jobs read later, without a browser or auth_state: the latest launch wins."""
    moodle = platforms["moodle"]
    moodle.user_id = new_user_id()
    before = user_names(hub13)
    assert launch13(browser, hub13, moodle).status_code == 302
    (name,) = user_names(hub13) - before
    (row,) = launch_context_rows(hub13, moodle.issuer, moodle.user_id)
    assert (row["local_user_id"], row["resource_link_id"], row["context_id"]) == (name, "1", "2")
    assert (row["client_id"], row["deployment_id"], row["role"]) == (moodle.client_id, moodle.deployment_id, "learner")
    ags = row["services"]["ags"]
    assert ags["lineitem_url"] == f"{moodle.issuer}/mod/lti/services.php/2/lineitems/1/lineitem?type_id=1"
    assert ags["lineitems_url"] == f"{moodle.issuer}/mod/lti/services.php/2/lineitems?type_id=1"
    assert row["services"]["nrps"]["memberships_url"].startswith(moodle.issuer)
    assert row["services"]["basic_outcome"] is None

    # The same link again, Moodle having made a new line item: the same row, updated.
    new_lineitem = f"{moodle.issuer}/mod/lti/services.php/2/lineitems/9/lineitem?type_id=1"
    claims = {"ags": {"scope": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"], "lineitem": new_lineitem}}
    with requests.Session() as other_browser:
        assert launch13(other_browser, hub13, moodle, claims=claims).status_code == 302
    (again,) = launch_context_rows(hub13, moodle.issuer, moodle.user_id)
    assert again["id"] == row["id"] and again["updated_at"] >= row["updated_at"]
    assert again["services"]["ags"] == {
        "lineitems_url": "",
        "lineitem_url": new_lineitem,
        "scopes": ["https://purl.imsglobal.org/spec/lti-ags/scope/score"],
    }
