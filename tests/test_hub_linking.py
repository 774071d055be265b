"""Account linking on a real hub (`c.JupyterHub.authenticator_class = "lti"`): the provisioning modes
per platform and role, the prompt through the hub's pages (choice, local sign-in, confirmation), its
refusals, LTI 1.1 -> 1.3 migration, roles that never escalate, and the links pages.

One hub for the module; each mode is a platform of its own (`provisioning_modes_by_platform`), and the
hub's local sign-in is JupyterHub's DummyAuthenticator with a password. Hub users to link to are made
with the harness's admin token. Launches land on a redirect; no user's server is started.
"""

from __future__ import annotations

import base64
import html
import re
import secrets
import sqlite3
from collections.abc import Iterator
from typing import Any
from urllib.parse import urljoin

import pytest
import requests

from lti_peer import DELETE
from lti_peer.claims import CLAIM_DEPLOYMENT_ID, add_lti1p1_claim
from lti_peer.platform import INSTRUCTOR_ROLES, PlatformPeer
from tests.hub import HubProcess
from tests.test_hub_dynamic_registration import xsrf_of
from tests.test_hub_lti import api, assert_refused, launch11, launch13, new_user_id, user_names

pytestmark = pytest.mark.slow

LOCAL_PASSWORD = "local-password-4711"
PROMPT11_KEY, PROMPT11_SECRET = "prompt11-key", "prompt11-secret-0123456789"
MOODLE11_KEY, MOODLE11_SECRET = "moodle11-key", "moodle11-secret-0123456789"
MAPPED11_KEY, MAPPED11_SECRET = "mapped11-key", "mapped11-secret-0123456789"
ADMIN = "linkadmin"
INSTITUTION_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
LEARNER = "http://purl.imsglobal.org/vocab/lis/v2/membership#Learner"
MENTOR = "http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"
MODES = ("new_only", "existing_and_new_prompt", "existing_only_prompt")


class MigratingPeer(PlatformPeer):
    """A platform that moved a course from LTI 1.1: its id_tokens carry the `lti1p1` claim when
    ``lti1p1`` says whose (consumer_key, secret, user_id); added last, as the claim signs exp and nonce."""

    lti1p1: dict[str, str] | None = None

    def sign(self, payload: Any, **options: Any) -> str:
        if self.lti1p1 is not None and CLAIM_DEPLOYMENT_ID in payload and "nonce" in payload:
            payload = add_lti1p1_claim(dict(payload), **self.lti1p1)
        return super().sign(payload, **options)


@pytest.fixture(scope="module")
def peers() -> Iterator[dict[str, PlatformPeer]]:
    made: dict[str, PlatformPeer] = {mode: PlatformPeer(client_id=f"{mode}-client") for mode in MODES}
    made["migrating"] = MigratingPeer(client_id="migrating-client")
    made["mapped"] = PlatformPeer(client_id="mapped-client")
    for peer in made.values():
        peer.start()
    yield made
    for peer in made.values():
        peer.stop()


def both(mode: str) -> dict[str, str]:
    return {"instructor": mode, "learner": mode}


@pytest.fixture(scope="module")
def hub(tmp_path_factory: pytest.TempPathFactory, peers: dict[str, PlatformPeer]) -> Iterator[HubProcess]:
    platforms = [
        {"issuer": p.issuer, "client_id": p.client_id, "authorize_url": p.auth_url, "jwks_endpoint": p.jwks_url}
        for p in peers.values()
    ]
    modes = {peers[mode].issuer: both(mode) for mode in MODES}
    modes[PROMPT11_KEY] = both("existing_and_new_prompt")
    config = f"""
c.JupyterHub.authenticator_class = "lti"
c.LTIAuthenticator.platforms = {platforms!r}
c.LTIAuthenticator.consumers = {{
    {PROMPT11_KEY!r}: {PROMPT11_SECRET!r}, {MOODLE11_KEY!r}: {MOODLE11_SECRET!r}, {MAPPED11_KEY!r}: {MAPPED11_SECRET!r},
}}
c.LTIAuthenticator.provisioning_modes_by_platform = {modes!r}
c.LTIAuthenticator.migrated_consumers = {{{MAPPED11_KEY!r}: {peers["mapped"].issuer!r}}}
c.LTIAuthenticator.instructor_group = "instructors"
c.LTIAuthenticator.staff_roles = ["Mentor"]
c.LTIAuthenticator.local_authenticator_class = "dummy"
c.DummyAuthenticator.password = {LOCAL_PASSWORD!r}
c.Authenticator.admin_users = {{{ADMIN!r}}}
"""
    crypt_key = base64.b64encode(secrets.token_bytes(32)).decode()
    hub = HubProcess(tmp_path_factory.mktemp("hublink"), config, env={"JUPYTERHUB_CRYPT_KEY": crypt_key})
    with hub.start():
        for peer in peers.values():
            peer.register_redirect_uri(hub.hub_url + "lti13/oauth_callback")
        yield hub


# -- helpers -------------------------------------------------------------------------------------


def hub_user(hub: HubProcess) -> str:
    """A hub user made by the admin (someone with an account before any launch)."""
    name = f"local{secrets.token_hex(4)}"
    response = requests.post(
        hub.hub_url + f"api/users/{name}", headers={"Authorization": f"token {hub.api_token}"}, timeout=30
    )
    assert response.status_code == 201, response.text
    return name


def whoami(browser: requests.Session, hub: HubProcess) -> str:
    """The hub user the browser's cookie signs in ("" for nobody)."""
    response = browser.get(hub.hub_url + "api/user", timeout=30)
    return str(response.json()["name"]) if response.status_code == 200 else ""


def groups_of(hub: HubProcess, name: str) -> list[str]:
    return list(api(hub, f"users/{name}")["groups"])


def links(hub: HubProcess, platform: str = "", user_id: str = "") -> list[tuple[str, str, str]]:
    """The hub's links (platform, platform user id, hub user), read beside it from its LTI store."""
    with sqlite3.connect(f"file:{hub.workdir / 'lti_publish.sqlite'}?mode=ro", uri=True, timeout=30) as db:
        rows = db.execute("SELECT platform, platform_user_id, local_user_id FROM lti_publish_user_links").fetchall()
    return [r for r in rows if (not platform or r[0] == platform) and (not user_id or r[1] == user_id)]


def form_of(page: str) -> tuple[str, dict[str, str]]:
    """The first form of a prompt page: its action and hidden fields."""
    action = re.search(r'<form method="post" action="([^"]+)"', page)
    assert action, page[:2000]
    fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', page.split("</form>")[0]))
    return html.unescape(action.group(1)), {k: html.unescape(v) for k, v in fields.items()}


def step(browser: requests.Session, hub: HubProcess, page: str, choice: str, **changes: str) -> requests.Response:
    """POST a choice from a prompt page (``changes`` replace or, as "", drop its hidden fields)."""
    action, fields = form_of(page)
    data = {k: v for k, v in {**fields, **changes, "choice": choice}.items() if v != ""}
    return browser.post(urljoin(hub.hub_url, action), data=data, allow_redirects=False, timeout=30)


def follow(browser: requests.Session, hub: HubProcess, response: requests.Response) -> requests.Response:
    """Follow the prompt's own redirects (never into a user's server)."""
    while response.status_code in (302, 303) and "/lti/link/" in response.headers["Location"]:
        response = browser.get(urljoin(hub.hub_url, response.headers["Location"]), allow_redirects=False, timeout=30)
    return response


def sign_in_locally(
    browser: requests.Session, hub: HubProcess, page: str, name: str, password: str
) -> requests.Response:
    action, fields = form_of(page)
    data = {**fields, "username": name, "password": password}
    return browser.post(urljoin(hub.hub_url, action), data=data, allow_redirects=False, timeout=30)


def launch(
    browser: requests.Session, hub: HubProcess, peer: PlatformPeer, role: str, **claims: Any
) -> requests.Response:
    if role == "instructor":
        claims.setdefault("roles", INSTRUCTOR_ROLES)
    return launch13(browser, hub, peer, claims=claims)


def link_through_prompt(browser: requests.Session, hub: HubProcess, first: requests.Response, name: str) -> str:
    """From the choice page: sign in locally as ``name``, confirm; returns the confirmation page's text."""
    assert first.status_code == 200 and 'value="existing"' in first.text, first.text[:2000]
    sign_in = follow(browser, hub, step(browser, hub, first.text, "existing"))
    assert sign_in.status_code == 200 and 'name="password"' in sign_in.text, sign_in.text[:2000]
    confirm = follow(browser, hub, sign_in_locally(browser, hub, sign_in.text, name, LOCAL_PASSWORD))
    assert confirm.status_code == 200 and 'value="confirm"' in confirm.text and name in confirm.text, confirm.text
    return confirm.text


def assert_landed(response: requests.Response) -> None:
    assert response.status_code == 302, response.text[:2000]
    assert "/lti/link/" not in response.headers["Location"]


# -- each mode x role: first launch, second launch -----------------------------------------------


@pytest.mark.parametrize("role", ["learner", "instructor"])
@pytest.mark.parametrize(
    ("mode", "path"),
    [
        ("new_only", "automatic"),
        ("existing_and_new_prompt", "create"),
        ("existing_and_new_prompt", "link"),
        ("existing_only_prompt", "link"),
    ],
)
def test_first_and_second_launch(mode, path, role, hub, peers):
    peer = peers[mode]
    peer.user_id = new_user_id()
    before = user_names(hub)
    with requests.Session() as browser:
        first = launch(browser, hub, peer, role)
        if path == "automatic":
            assert_landed(first)
            (name,) = user_names(hub) - before
        elif path == "create":
            assert first.status_code == 200 and 'value="new"' in first.text, first.text[:2000]
            assert user_names(hub) == before  # nothing is made while the person chooses
            done = step(browser, hub, first.text, "new")
            assert_landed(done)
            (name,) = user_names(hub) - before
        else:
            name = hub_user(hub)
            assert ('value="new"' in first.text) is (mode == "existing_and_new_prompt")
            confirm = link_through_prompt(browser, hub, first, name)
            assert not links(hub, peer.issuer, peer.user_id)  # nothing linked before the confirmation
            assert_landed(step(browser, hub, confirm, "confirm"))
            assert user_names(hub) - before == {name}
        assert whoami(browser, hub) == name
    assert links(hub, peer.issuer, peer.user_id) == [(peer.issuer, peer.user_id, name)]
    assert ("instructors" in groups_of(hub, name)) is (role == "instructor")
    with requests.Session() as browser:  # the second launch goes straight in, in any browser
        assert_landed(launch(browser, hub, peer, role))
        assert whoami(browser, hub) == name


def test_existing_only_without_an_account_is_a_clear_page_and_makes_nothing(hub, peers):
    peer = peers["existing_only_prompt"]
    peer.user_id = new_user_id()
    before = user_names(hub)
    with requests.Session() as browser:
        first = launch(browser, hub, peer, "learner")
        assert first.status_code == 200 and 'value="new"' not in first.text
        assert "Sign in to your account here" in first.text
        assert_refused(step(browser, hub, first.text, "new"), "existing_accounts_only", 403)
        sign_in = follow(browser, hub, step(browser, hub, first.text, "existing"))
        wrong = sign_in_locally(browser, hub, sign_in.text, "nobody-here", LOCAL_PASSWORD)
        assert wrong.status_code == 403 and "no user on this hub" in wrong.text
        wrong = sign_in_locally(browser, hub, sign_in.text, ADMIN, "not-the-password")
        assert wrong.status_code == 403 and "wrong" in wrong.text
    assert user_names(hub) == before and not links(hub, peer.issuer, peer.user_id)


def test_wrong_passwords_are_throttled_per_client_and_username(hub, peers):
    """Five wrong passwords for one account: the sixth try waits (429), even with the right password,
    and nothing is linked; another account is not held up."""
    from jupyter_lti.linking import MAX_SIGN_IN_FAILURES

    peer = peers["existing_only_prompt"]
    peer.user_id = new_user_id()
    target, other = hub_user(hub), hub_user(hub)
    with requests.Session() as browser:
        first = launch(browser, hub, peer, "learner")
        sign_in = follow(browser, hub, step(browser, hub, first.text, "existing"))
        for _ in range(MAX_SIGN_IN_FAILURES):
            wrong = sign_in_locally(browser, hub, sign_in.text, target, "not-the-password")
            assert wrong.status_code == 403 and "wrong" in wrong.text
        held = sign_in_locally(browser, hub, sign_in.text, target.upper(), LOCAL_PASSWORD)
        assert held.status_code == 429 and "Too many wrong sign-ins" in held.text
        assert not links(hub, peer.issuer, peer.user_id)
        confirm = follow(browser, hub, sign_in_locally(browser, hub, sign_in.text, other, LOCAL_PASSWORD))
        assert confirm.status_code == 200 and 'value="confirm"' in confirm.text


def test_the_throttle_forgets_after_its_window_and_stays_bounded():
    from jupyter_lti import linking

    throttle = linking.SignInThrottle(limit=2, window=10.0)
    key = ("127.0.0.1", "sam")
    throttle.failed(key, 100.0)
    throttle.failed(key, 101.0)
    assert throttle.blocked(key, 105.0) and not throttle.blocked(key, 111.5)
    throttle.failed(key, 200.0)
    throttle.succeeded(key)
    assert not throttle.blocked(key, 200.5)
    for n in range(linking.MAX_THROTTLED + 5):
        throttle.failed((str(n), "x"), 300.0)
    assert len(throttle._failures) == linking.MAX_THROTTLED  # noqa: SLF001 - the bound itself


# -- refusals: nothing changes -------------------------------------------------------------------


def test_forged_replayed_and_csrf_less_steps_are_refused_and_change_nothing(hub, peers):
    peer = peers["existing_and_new_prompt"]
    peer.user_id = new_user_id()
    name = hub_user(hub)
    before = user_names(hub)
    with requests.Session() as browser:
        first = launch(browser, hub, peer, "instructor")
        # A confirmation before any sign-in: not a step of this state.
        assert_refused(step(browser, hub, first.text, "confirm"), "prompt_step_refused", 409)
        assert_refused(step(browser, hub, first.text, "new", form_token="forged"), "prompt_not_bound", 403)
        assert_refused(step(browser, hub, first.text, "new", _xsrf=""), "form_expired", 403)
        with requests.Session() as other:  # another browser: the page's fields, but not its cookie
            other.cookies.update({k: v for k, v in browser.cookies.items() if not k.startswith("lti_link_")})
            assert_refused(step(other, hub, first.text, "new"), "prompt_not_bound", 403)
        confirm = link_through_prompt(browser, hub, first, name)
        assert_refused(step(browser, hub, confirm, "confirm", form_token=""), "prompt_not_bound", 403)
        assert user_names(hub) == before and not links(hub, peer.issuer, peer.user_id)
        assert_landed(step(browser, hub, confirm, "confirm"))
        # Replayed: with the page's _xsrf (which the sign-in changed), then with a fresh one.
        assert_refused(step(browser, hub, confirm, "confirm"), "form_expired", 403)
        fresh = xsrf_of(browser.get(hub.hub_url + "lti/links", timeout=30).text)
        assert_refused(step(browser, hub, confirm, "confirm", _xsrf=fresh), "prompt_expired", 404)
    assert links(hub, peer.issuer, peer.user_id) == [(peer.issuer, peer.user_id, name)]


def test_an_expired_pending_launch_is_refused_and_changes_nothing(hub, peers):
    peer = peers["existing_and_new_prompt"]
    peer.user_id = new_user_id()
    before = user_names(hub)
    with requests.Session() as browser:
        first = launch(browser, hub, peer, "learner")
        with sqlite3.connect(hub.workdir / "lti_publish.sqlite", timeout=30) as db:
            db.execute("UPDATE lti_publish_pending_launches SET expires_at = 0")
        assert_refused(step(browser, hub, first.text, "new"), "prompt_expired", 404)
    assert user_names(hub) == before and not links(hub, peer.issuer, peer.user_id)


def test_an_lti11_prompt_in_a_frame_without_cookies_goes_on_in_a_new_window(hub):
    user_id = new_user_id()
    before = user_names(hub)
    with requests.Session() as frame:
        framed = {"Sec-Fetch-Dest": "iframe"}
        launched = launch11(frame, hub, key=PROMPT11_KEY, secret=PROMPT11_SECRET, user_id=user_id, headers=framed)
        frame.cookies.clear()  # the frame kept none of the hub's cookies: its cookie check finds none
        first = frame.get(urljoin(hub.hub_url, launched.headers["Location"]), headers=framed, timeout=30)
        assert first.status_code == 200 and "<form" not in first.text, first.text[:2000]
        found = re.search(r'href="([^"]*handover[^"]*)"', first.text)
        assert found, first.text[:2000]
        new_window_url = urljoin(hub.hub_url, html.unescape(found.group(1)))
    with requests.Session() as window:
        page = follow(window, hub, window.get(new_window_url, allow_redirects=False, timeout=30))
        assert page.status_code == 200 and 'value="new"' in page.text, page.text[:2000]
        assert_refused(window.get(new_window_url, allow_redirects=False, timeout=30), "prompt_not_bound", 403)
        assert_landed(step(window, hub, page.text, "new"))
        (name,) = user_names(hub) - before
        assert whoami(window, hub) == name
    assert links(hub, PROMPT11_KEY, user_id) == [(PROMPT11_KEY, user_id, name)]


# -- migration -----------------------------------------------------------------------------------


def test_an_lti11_user_is_the_same_user_after_the_move_to_lti13_with_the_claim(hub, peers):
    peer = peers["migrating"]
    assert isinstance(peer, MigratingPeer)
    old_id, before = new_user_id(), user_names(hub)
    with requests.Session() as browser:
        assert_landed(launch11(browser, hub, key=MOODLE11_KEY, secret=MOODLE11_SECRET, user_id=old_id))
    (name,) = user_names(hub) - before
    peer.user_id = new_user_id()  # the platform's 1.3 sub need not be its 1.1 user_id
    peer.lti1p1 = {"consumer_key": MOODLE11_KEY, "secret": MOODLE11_SECRET, "user_id": old_id}
    try:
        with requests.Session() as browser:
            assert_landed(launch(browser, hub, peer, "learner"))
            assert whoami(browser, hub) == name
    finally:
        peer.lti1p1 = None
    assert links(hub, peer.issuer, peer.user_id) == [(peer.issuer, peer.user_id, name)]  # the 1.3 link is kept
    with requests.Session() as browser:  # later launches need no claim
        assert_landed(launch(browser, hub, peer, "learner"))
        assert whoami(browser, hub) == name
    assert user_names(hub) - before == {name}


def test_a_forged_migration_claim_takes_nobodys_account(hub, peers):
    peer = peers["migrating"]
    assert isinstance(peer, MigratingPeer)
    old_id, before = new_user_id(), user_names(hub)
    with requests.Session() as browser:
        assert_landed(launch11(browser, hub, key=MOODLE11_KEY, secret=MOODLE11_SECRET, user_id=old_id))
    (victim,) = user_names(hub) - before
    peer.user_id = new_user_id()
    peer.lti1p1 = {"consumer_key": MOODLE11_KEY, "secret": "guessed-secret-0123456789", "user_id": old_id}
    try:
        with requests.Session() as browser:
            assert_landed(launch(browser, hub, peer, "learner"))
            assert whoami(browser, hub) not in ("", victim)
    finally:
        peer.lti1p1 = None


def test_an_lti11_user_is_the_same_user_after_the_move_with_the_admin_mapping(hub, peers):
    peer = peers["mapped"]
    user_id, before = new_user_id(), user_names(hub)
    with requests.Session() as browser:
        assert_landed(launch11(browser, hub, key=MAPPED11_KEY, secret=MAPPED11_SECRET, user_id=user_id))
    (name,) = user_names(hub) - before
    peer.user_id = user_id  # the same stable user id in both versions, and no claim
    with requests.Session() as browser:
        assert_landed(launch(browser, hub, peer, "learner"))
        assert whoami(browser, hub) == name
    assert links(hub, peer.issuer, user_id) == [(peer.issuer, user_id, name)]


def test_a_consumer_key_spelled_as_an_issuer_is_refused_at_configuration(tmp_path):
    from traitlets import TraitError

    from jupyter_lti.lti import LTIAuthenticator

    issuer = "https://moodle.example"
    authenticator = LTIAuthenticator(
        store_url=f"sqlite:///{tmp_path / 'store.sqlite'}",
        issuer=issuer,
        client_id={"c"},
        authorize_url=issuer + "/auth",
        jwks_endpoint=issuer + "/jwks",
        consumers={issuer: "secret-0123456789"},
    )
    with pytest.raises(TraitError, match="is also an LTI 1.3 issuer"):
        _ = authenticator.store


# -- roles, names ----------------------------------------------------------------------------------


def test_a_learner_with_instructor_looking_parameters_stays_a_learner(hub, peers):
    peer = peers["new_only"]
    peer.user_id = new_user_id()
    before = user_names(hub)
    claims = {
        "roles": [LEARNER, INSTITUTION_ADMIN],
        "custom": {"roles": "Instructor", "role": "Administrator", "lti_roles": INSTRUCTOR_ROLES[0]},
    }
    with requests.Session() as browser:
        assert_landed(launch(browser, hub, peer, "learner", **claims))
    (name,) = user_names(hub) - before
    assert "instructors" not in groups_of(hub, name) and api(hub, f"users/{name}")["admin"] is False


def test_a_staff_role_the_admin_added_gives_the_instructor_group(hub, peers):
    peer = peers["new_only"]
    peer.user_id = new_user_id()
    before = user_names(hub)
    with requests.Session() as browser:
        assert_landed(launch(browser, hub, peer, "mentor", roles=[MENTOR]))
    (name,) = user_names(hub) - before
    assert "instructors" in groups_of(hub, name)


def test_a_launch_without_name_or_email_gets_a_stable_generated_name(hub, peers):
    peer = peers["new_only"]
    peer.user_id = new_user_id()
    anonymous = {"given_name": DELETE, "family_name": DELETE, "name": DELETE, "email": DELETE}
    before = user_names(hub)
    with requests.Session() as browser:
        assert_landed(launch(browser, hub, peer, "learner", **anonymous))
    (name,) = user_names(hub) - before
    assert re.fullmatch(r"lti_[0-9a-f]{10}", name), name
    with requests.Session() as browser:
        assert_landed(launch(browser, hub, peer, "learner", **anonymous))
        assert whoami(browser, hub) == name


# -- the links pages -------------------------------------------------------------------------------


def test_a_user_unlinks_and_the_next_launch_is_a_first_launch_again(hub, peers):
    peer = peers["existing_and_new_prompt"]
    peer.user_id = new_user_id()
    with requests.Session() as browser:
        first = launch(browser, hub, peer, "learner")
        assert_landed(step(browser, hub, first.text, "new"))
        page = browser.get(hub.hub_url + "lti/links", timeout=30)
        assert page.status_code == 200 and f"<code>{peer.user_id}</code>" in page.text
        fields = {"platform": peer.issuer, "platform_user_id": peer.user_id}
        refused = browser.post(hub.hub_url + "lti/links", data=fields, allow_redirects=False, timeout=30)
        assert refused.status_code == 403 and links(hub, peer.issuer, peer.user_id)  # no _xsrf
        unlinked = browser.post(
            hub.hub_url + "lti/links", data={**fields, "_xsrf": xsrf_of(page.text)}, allow_redirects=False, timeout=30
        )
        assert unlinked.status_code == 303 and not links(hub, peer.issuer, peer.user_id)
    with requests.Session() as browser:
        again = launch(browser, hub, peer, "learner")
        assert again.status_code == 200 and 'value="new"' in again.text


@pytest.fixture(scope="module")
def admin(hub: HubProcess, peers: dict[str, PlatformPeer]) -> Iterator[requests.Session]:
    """A hub admin's browser: an instructor who linked their platform user to the admin account."""
    peer = peers["existing_and_new_prompt"]
    with requests.Session() as browser:
        peer.user_id = new_user_id()
        first = launch(browser, hub, peer, "instructor")
        assert_landed(step(browser, hub, link_through_prompt(browser, hub, first, ADMIN), "confirm"))
        assert whoami(browser, hub) == ADMIN
        yield browser


def test_admins_list_search_and_remove_links_and_others_cannot(hub, peers, admin):
    peer = peers["existing_and_new_prompt"]
    learner_id = peer.user_id = new_user_id()
    with requests.Session() as learner:
        assert_landed(step(learner, hub, launch(learner, hub, peer, "learner").text, "new"))
        assert learner.get(hub.hub_url + "lti/admin/links", timeout=30).status_code == 403
    page = admin.get(hub.hub_url + "lti/admin/links", params={"q": learner_id}, timeout=30)
    assert page.status_code == 200 and f"<code>{learner_id}</code>" in page.text
    assert page.text.count("<tr>") == 2  # the heading and the one match
    fields = {"platform": peer.issuer, "platform_user_id": learner_id}
    refused = admin.post(hub.hub_url + "lti/admin/links", data=fields, allow_redirects=False, timeout=30)
    assert refused.status_code == 403 and links(hub, peer.issuer, learner_id)
    removed = admin.post(
        hub.hub_url + "lti/admin/links",
        data={**fields, "_xsrf": xsrf_of(page.text)},
        allow_redirects=False,
        timeout=30,
    )
    assert removed.status_code == 303 and not links(hub, peer.issuer, learner_id)


def test_an_admin_cannot_register_an_issuer_spelled_as_a_consumer_key(hub, admin):
    page = admin.get(hub.hub_url + "lti13/registrations", timeout=30)
    assert page.status_code == 200 and "lti/admin/links" in page.text
    form = {
        "action": "add_platform",
        "issuer": PROMPT11_KEY,
        "client_id": "x",
        "auth_login_url": "https://platform.example/auth",
        "key_set_url": "https://platform.example/jwks",
        "_xsrf": xsrf_of(page.text),
    }
    refused = admin.post(hub.hub_url + "lti13/registrations", data=form, allow_redirects=False, timeout=30)
    assert_refused(refused, "issuer_is_consumer_key", 400)


# -- configuration -----------------------------------------------------------------------------------


def test_modes_and_staff_roles_are_checked_when_configured():
    from traitlets import TraitError

    from jupyter_lti.lti13 import LTI13Authenticator

    with pytest.raises(TraitError, match="not in"):
        LTI13Authenticator(provisioning_modes_by_platform={"https://moodle.example": {"learner": "sometimes"}})
    with pytest.raises(TraitError, match="instructor, learner"):
        LTI13Authenticator(provisioning_modes_by_platform={"https://moodle.example": {"admin": "new_only"}})
    for role in (LEARNER, INSTITUTION_ADMIN):
        with pytest.raises(TraitError, match="staff_roles"):
            LTI13Authenticator(staff_roles=[role])


def test_without_a_local_sign_in_prompt_modes_create_or_refuse():
    """The default hub has no other sign-in: "existing and new" creates, "existing only" refuses."""
    from jupyter_lti.lti13 import LTI13Authenticator
    from lti_core.linking import LinkOutcome
    from lti_core.types import Launch, Role

    authenticator = LTI13Authenticator(store_url="sqlite://", learner_provisioning_mode="existing_only_prompt")
    assert (
        authenticator.instructor_provisioning_mode == "existing_and_new_prompt" and not authenticator.host_can_sign_in
    )

    def first_launch(role: Role) -> Launch:
        return Launch("1.3.0", "https://moodle.example", new_user_id(), (), role, "1")

    assert authenticator.link_decision(first_launch(Role.STAFF)).outcome is LinkOutcome.CREATE
    refused = authenticator.link_decision(first_launch(Role.LEARNER))
    assert (refused.outcome, refused.reason) == (LinkOutcome.REFUSE, "no_local_sign_in")
