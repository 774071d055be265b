"""LTI Dynamic Registration into a real JupyterHub: the Moodle-like platform peer registers the hub,
a hub admin approves the registration on /hub/lti13/registrations, and the peer launches through it;
the admin adds and removes its deployments there, and each change holds at the next launch.

One hub for the module (starting one is slow): a configured platform (whose instructors are hub
admins) and platforms that register themselves.
"""

from __future__ import annotations

import base64
import re
import secrets
import sqlite3
import time
from collections.abc import Iterator
from typing import Any

import pytest
import requests

from lti_peer.platform import INSTRUCTOR_ROLES, PlatformPeer
from tests.hub import HubProcess
from tests.test_hub_lti import assert_refused, launch13

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def moodle() -> Iterator[PlatformPeer]:
    with PlatformPeer(client_id="configured-client") as peer:
        yield peer


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, moodle: PlatformPeer) -> Iterator[HubProcess]:
    config = f"""
c.JupyterHub.authenticator_class = "lti13"
c.LTI13Authenticator.issuer = "{moodle.issuer}"
c.LTI13Authenticator.client_id = ["{moodle.client_id}"]
c.LTI13Authenticator.authorize_url = "{moodle.auth_url}"
c.LTI13Authenticator.jwks_endpoint = "{moodle.jwks_url}"
c.LTI13Authenticator.admin_instructors = True
"""
    crypt_key = base64.b64encode(secrets.token_bytes(32)).decode()
    hub = HubProcess(tmp_path_factory.mktemp("hubdr"), config, env={"JUPYTERHUB_CRYPT_KEY": crypt_key})
    with hub.start():
        moodle.register_redirect_uri(hub.hub_url + "lti13/oauth_callback")
        yield hub


def registrations(hub: HubProcess) -> dict[tuple[str, str], str]:
    """(issuer, client_id) -> status, read beside the hub from its LTI store."""
    uri = f"file:{hub.workdir / 'lti_publish.sqlite'}?mode=ro"
    db = sqlite3.connect(uri, uri=True, timeout=30)
    try:
        rows = db.execute("SELECT issuer, client_id, status FROM lti_publish_registrations").fetchall()
    finally:
        db.close()
    return {(issuer, client_id): status for issuer, client_id, status in rows}


def register(hub: HubProcess, peer: PlatformPeer, **options: Any) -> requests.Response:
    url = peer.registrar.start_url(hub.hub_url + "lti13/register", **options)
    return requests.get(url, allow_redirects=False, timeout=30)


def admin_session(hub: HubProcess, moodle: PlatformPeer) -> requests.Session:
    """A hub admin's browser: an instructor of the configured platform (admin_instructors)."""
    session = requests.Session()
    moodle.user_id = str(secrets.randbelow(10**9) + 1000)
    response = launch13(session, hub, moodle, claims={"roles": INSTRUCTOR_ROLES})
    assert response.status_code == 302, response.text[:2000]
    return session


def xsrf_of(page: str) -> str:
    found = re.search(r'name="_xsrf" value="([^"]+)"', page)
    assert found, page[:2000]
    return found.group(1)


def test_registered_pending_then_approved_by_a_hub_admin_then_launches(hub, moodle):
    with PlatformPeer() as peer:
        response = register(hub, peer)
        assert response.status_code == 200, response.text[:2000]
        assert f"<code>{peer.client_id}</code>" in response.text and "org.imsglobal.lti.close" in response.text
        (sent,) = peer.registrar.received
        assert sent["initiate_login_uri"] == hub.hub_url + "lti13/oauth_login"
        assert sent["redirect_uris"] == [hub.hub_url + "lti13/oauth_callback"]
        assert registrations(hub)[(peer.issuer, peer.client_id)] == "pending"
        with requests.Session() as learner:
            assert_refused(launch13(learner, hub, peer), "registration_pending")

        page_url = hub.hub_url + "lti13/registrations"
        with requests.Session() as anonymous:  # not signed in: to the hub's login, which says "from your course"
            assert anonymous.get(page_url, allow_redirects=False, timeout=30).status_code == 302
        with requests.Session() as learner:
            moodle.user_id = str(secrets.randbelow(10**9) + 1000)
            assert launch13(learner, hub, moodle).status_code == 302
            assert learner.get(page_url, timeout=30).status_code == 403
        with admin_session(hub, moodle) as admin:
            listing = admin.get(page_url, timeout=30)
            assert listing.status_code == 200, listing.text[:2000]
            assert peer.client_id in listing.text and 'data-status="pending"' in listing.text
            form = {"issuer": peer.issuer, "client_id": peer.client_id, "action": "approve"}
            # Without the _xsrf token the hub refuses the form, as all its forms.
            refused = admin.post(page_url, data=form, allow_redirects=False, timeout=30)
            assert refused.status_code == 403
            assert registrations(hub)[(peer.issuer, peer.client_id)] == "pending"
            # The configured platform is shown, not changed here.
            configured = {"issuer": moodle.issuer, "client_id": moodle.client_id, "action": "disable"}
            xsrf = xsrf_of(listing.text)
            kept = admin.post(page_url, data={**configured, "_xsrf": xsrf}, allow_redirects=False, timeout=30)
            assert kept.status_code == 400
            approved = admin.post(page_url, data={**form, "_xsrf": xsrf}, allow_redirects=False, timeout=30)
            assert approved.status_code == 302, approved.text[:2000]
        assert registrations(hub)[(peer.issuer, peer.client_id)] == "active"
        assert registrations(hub)[(moodle.issuer, moodle.client_id)] == "active"
        with requests.Session() as learner:
            assert launch13(learner, hub, peer).status_code == 302


def test_each_failure_is_a_clear_page_and_stores_nothing(hub):
    before = registrations(hub)
    with PlatformPeer() as peer:
        peer.registrar.issuer_override = "http://127.0.0.1:1"
        assert_refused(register(hub, peer), "registration_issuer_mismatch")
        peer.registrar.issuer_override = None
        assert_refused(register(hub, peer, now=time.time() - 7200), "registration_configuration_unavailable")
        peer.registrar.registration_status = 400
        assert_refused(register(hub, peer), "registration_refused")
    response = requests.get(hub.hub_url + "lti13/register", params={"openid_configuration": "ftp://x"}, timeout=30)
    assert_refused(response, "openid_configuration_invalid")
    assert registrations(hub) == before


def test_a_hub_admin_manages_deployments_on_the_page_without_a_restart(hub, moodle):
    """A launch from a deployment the registration does not list is refused with a page naming it; the
    admin adds it on /hub/lti13/registrations and the next launch is accepted, then removes it, then
    lets the registration accept new deployments: each change holds at the next launch."""
    page_url = hub.hub_url + "lti13/registrations"
    with PlatformPeer() as peer, admin_session(hub, moodle) as admin:
        assert register(hub, peer).status_code == 200
        key = {"issuer": peer.issuer, "client_id": peer.client_id}

        def change(action: str, **fields: str) -> requests.Response:
            xsrf = xsrf_of(admin.get(page_url, timeout=30).text)
            form = {**key, **fields, "action": action, "_xsrf": xsrf}
            return admin.post(page_url, data=form, allow_redirects=False, timeout=30)

        assert change("approve").status_code == 302
        registered = peer.deployment_id
        new = f"placement-{secrets.token_hex(4)}"
        peer.user_id = str(secrets.randbelow(10**9) + 1000)
        with requests.Session() as learner:
            assert launch13(learner, hub, peer).status_code == 302  # the deployment it registered with
            refused = launch13(learner, hub, peer, claims={"deployment_id": new})
            assert_refused(refused, "unknown_deployment", 403)
            assert new in refused.text  # the page names the deployment the admin is to add
        listing = admin.get(page_url, timeout=30).text
        assert f'data-deployment="{registered}"' in listing and 'data-any-deployment="false"' in listing

        assert change("add_deployment", deployment_id=new).status_code == 302
        assert f'data-deployment="{new}"' in admin.get(page_url, timeout=30).text
        with requests.Session() as learner:
            assert launch13(learner, hub, peer, claims={"deployment_id": new}).status_code == 302

        assert change("remove_deployment", deployment_id=new).status_code == 302
        with requests.Session() as learner:
            assert_refused(launch13(learner, hub, peer, claims={"deployment_id": new}), "unknown_deployment", 403)

        assert change("accept_new_deployments").status_code == 302
        assert 'data-any-deployment="true"' in admin.get(page_url, timeout=30).text
        with requests.Session() as learner:
            assert launch13(learner, hub, peer, claims={"deployment_id": new}).status_code == 302
        assert change("listed_deployments_only").status_code == 302
        with requests.Session() as learner:
            assert_refused(launch13(learner, hub, peer, claims={"deployment_id": new}), "unknown_deployment", 403)

        # Refusals of the page's forms are reason-code pages; the configured platform is not changed here.
        assert_refused(change("add_deployment", deployment_id=" "), "deployment_id_invalid", 400)
        assert_refused(change("remove_deployment", deployment_id="nowhere"), "unknown_deployment", 404)
        configured = {"issuer": moodle.issuer, "client_id": moodle.client_id, "action": "add_deployment"}
        xsrf = xsrf_of(admin.get(page_url, timeout=30).text)
        kept = admin.post(page_url, data={**configured, "deployment_id": new, "_xsrf": xsrf}, timeout=30)
        assert kept.status_code == 400


def test_a_hub_admin_registers_a_platform_by_hand_and_it_launches(hub, moodle):
    """The page's manual registration: the fields Moodle shows, an issuer with a trailing slash kept
    as the platform sends it; a bad URL is a reason-code page and nothing is saved."""
    page_url = hub.hub_url + "lti13/registrations"
    with PlatformPeer(client_id=f"manual-{secrets.token_hex(3)}") as peer, admin_session(hub, moodle) as admin:
        peer.register_redirect_uri(hub.hub_url + "lti13/oauth_callback")
        fields = {
            "issuer": peer.issuer + "/",
            "client_id": peer.client_id,
            "auth_login_url": peer.auth_url,
            "key_set_url": peer.jwks_url,
            "auth_token_url": peer.token_url,
            "deployment_ids": f" {peer.deployment_id} , ",
        }

        def post(**changes: str) -> requests.Response:
            xsrf = xsrf_of(admin.get(page_url, timeout=30).text)
            form = {**fields, **changes, "action": "add_platform", "_xsrf": xsrf}
            return admin.post(page_url, data=form, allow_redirects=False, timeout=30)

        assert_refused(post(key_set_url="ftp://nowhere/jwks"), "key_set_url_invalid", 400)
        assert (peer.issuer, peer.client_id) not in registrations(hub)
        assert post().status_code == 302
        assert registrations(hub)[(peer.issuer, peer.client_id)] == "active"
        assert 'id="add-platform"' in admin.get(page_url, timeout=30).text
        peer.user_id = str(secrets.randbelow(10**9) + 1000)
        with requests.Session() as learner:
            assert launch13(learner, hub, peer).status_code == 302


# Last in the module: it stops the module's hub.
def test_registrations_survive_a_restart_and_the_config_is_saved_again_beside_them(hub, moodle):
    with PlatformPeer() as waiting:
        assert register(hub, waiting).status_code == 200
        pending_key = (waiting.issuer, waiting.client_id)
        pending_issuer = waiting.issuer
    before = registrations(hub)
    assert before[pending_key] == "pending"
    assert before[(moodle.issuer, moodle.client_id)] == "active"
    assert len(before) >= 3  # with the one approved above, when the module runs whole
    hub.stop()
    # The same hub again (its workdir: database, LTI store, config), on ports of its own.
    again = HubProcess(hub.workdir, hub.config, env=hub.env)
    with again.start():
        assert registrations(again) == before
        # The platforms it may be framed by, by default: every active one, dynamic ones included.
        csp = requests.get(again.hub_url + "lti/login", timeout=30).headers["Content-Security-Policy"]
        ancestors = csp.split(";")[0].split()[1:]
        active = {issuer for (issuer, _), status in before.items() if status == "active"}
        assert len(active) >= 2 and active <= set(ancestors), (active, csp)
        assert pending_issuer not in ancestors
        moodle.register_redirect_uri(again.hub_url + "lti13/oauth_callback")
        with requests.Session() as browser:
            moodle.user_id = str(secrets.randbelow(10**9) + 1000)
            assert launch13(browser, again, moodle).status_code == 302
