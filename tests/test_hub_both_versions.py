"""One real hub for both LTI versions (`c.JupyterHub.authenticator_class = "lti"`): an LTI 1.1 consumer
and an LTI 1.3 platform launch into it, each lands signed in, each refusal is a reason-code page, an LTI
1.1 and an LTI 1.3 identity stay two hub users, and a hub admin turns the LTI 1.1 consumer off and on
again on /hub/lti13/registrations, without a restart.

One hub for the module. Its config mixes sections as an existing hub's would: the LTI 1.3 platform in
`c.LTIAuthenticator`, the LTI 1.1 consumers in `c.LTI11Authenticator` (a parent's section applies).
"""

from __future__ import annotations

import base64
import secrets
from collections.abc import Iterator

import pytest
import requests

from lti_peer.platform import INSTRUCTOR_ROLES, PlatformPeer
from tests.hub import HubProcess
from tests.test_hub_dynamic_registration import xsrf_of
from tests.test_hub_lti import (
    CONSUMER_KEY,
    CONSUMER_SECRET,
    api,
    assert_refused,
    launch11,
    launch13,
    new_user_id,
    user_names,
)

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def moodle() -> Iterator[PlatformPeer]:
    with PlatformPeer(client_id="both-client") as peer:
        yield peer


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, moodle: PlatformPeer) -> Iterator[HubProcess]:
    config = f"""
c.JupyterHub.authenticator_class = "lti"
c.LTIAuthenticator.issuer = "{moodle.issuer}"
c.LTIAuthenticator.client_id = ["{moodle.client_id}"]
c.LTIAuthenticator.authorize_url = "{moodle.auth_url}"
c.LTIAuthenticator.jwks_endpoint = "{moodle.jwks_url}"
c.LTIAuthenticator.deployment_ids = ["{moodle.deployment_id}"]
c.LTIAuthenticator.admin_instructors = True
c.LTI11Authenticator.consumers = {{"{CONSUMER_KEY}": "{CONSUMER_SECRET}"}}
"""
    crypt_key = base64.b64encode(secrets.token_bytes(32)).decode()
    hub = HubProcess(tmp_path_factory.mktemp("hubboth"), config, env={"JUPYTERHUB_CRYPT_KEY": crypt_key})
    with hub.start():
        moodle.register_redirect_uri(hub.hub_url + "lti13/oauth_callback")
        yield hub


def signed_in_as(browser: requests.Session, hub: HubProcess) -> str:
    """The hub user the browser's cookie signs in, read from the hub's home page."""
    home = browser.get(hub.hub_url + "home", allow_redirects=False, timeout=30)
    assert home.status_code == 200, (home.status_code, home.headers.get("Location"))
    return home.text


def test_an_lti11_and_an_lti13_launch_each_land_signed_in_as_two_users(hub, moodle):
    user_id = new_user_id()  # the same user id in both versions: still two people
    moodle.user_id = user_id
    before = user_names(hub)
    with requests.Session() as browser13:
        launched = launch13(browser13, hub, moodle)
        assert launched.status_code == 302, launched.text[:2000]
        (name13,) = user_names(hub) - before
        assert name13 in signed_in_as(browser13, hub)
    with requests.Session() as browser11:
        launched = launch11(browser11, hub, user_id=user_id)
        assert launched.status_code == 302, launched.text[:2000]
        (name11,) = user_names(hub) - before - {name13}
        assert name11 in signed_in_as(browser11, hub)
    with requests.Session() as again:  # the old LTI 1.1 URL works too, and finds the same user
        assert launch11(again, hub, path="lti/launch", user_id=user_id).status_code == 302
    assert user_names(hub) - before == {name11, name13}
    state11 = api(hub, f"users/{name11}")["auth_state"]["lti"]
    state13 = api(hub, f"users/{name13}")["auth_state"]["lti"]
    assert (state11["lti_version"], state11["platform"]) == ("1.1", CONSUMER_KEY)
    assert (state13["lti_version"], state13["platform"]) == ("1.3.0", moodle.issuer)
    # Both versions' configuration documents are served.
    assert requests.get(hub.hub_url + "lti11/config", timeout=30).status_code == 200
    assert requests.get(hub.hub_url + "lti13/config", timeout=30).json()


def test_a_refusal_of_each_version_is_a_reason_code_page(hub, moodle):
    with requests.Session() as browser:
        assert_refused(launch11(browser, hub, user_id=new_user_id(), secret="wrong"), "bad_signature", 401)
        moodle.user_id = new_user_id()
        assert_refused(launch13(browser, hub, moodle, claims={"deployment_id": "8"}), "unknown_deployment", 403)
        assert_refused(browser.get(hub.hub_url + "lti/ltiaccess"), "method_not_allowed", 405)


def test_a_hub_admin_turns_the_lti11_consumer_off_and_on_again(hub, moodle):
    page_url = hub.hub_url + "lti13/registrations"
    with requests.Session() as admin:
        moodle.user_id = new_user_id()
        assert launch13(admin, hub, moodle, claims={"roles": INSTRUCTOR_ROLES}).status_code == 302
        listing = admin.get(page_url, timeout=30)
        assert listing.status_code == 200, listing.text[:2000]
        assert f"<code>{CONSUMER_KEY}</code>" in listing.text and 'data-enabled="true"' in listing.text
        assert CONSUMER_SECRET not in listing.text  # never the secret
        assert f"<code>{moodle.client_id}</code>" in listing.text  # and the LTI 1.3 platforms

        def switch(action: str) -> None:
            form = {"key": CONSUMER_KEY, "action": action, "_xsrf": xsrf_of(admin.get(page_url, timeout=30).text)}
            answer = admin.post(page_url, data=form, allow_redirects=False, timeout=30)
            assert answer.status_code == 302, answer.text[:2000]

        # Without the _xsrf token, nothing changes.
        form = {"key": CONSUMER_KEY, "action": "disable_consumer"}
        assert admin.post(page_url, data=form, allow_redirects=False, timeout=30).status_code == 403
        switch("disable_consumer")
        assert 'data-enabled="false"' in admin.get(page_url, timeout=30).text
        with requests.Session() as learner:
            assert_refused(launch11(learner, hub, user_id=new_user_id()), "consumer_disabled", 403)
        switch("enable_consumer")
        with requests.Session() as learner:
            assert launch11(learner, hub, user_id=new_user_id()).status_code == 302
        # An unknown key is a reason-code page, not a traceback.
        form = {"key": "nobody", "action": "disable_consumer", "_xsrf": xsrf_of(listing.text)}
        assert_refused(admin.post(page_url, data=form, timeout=30), "unknown_consumer", 404)
