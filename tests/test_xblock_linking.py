"""Account linking in the workbench host over real HTTP: the provisioning modes per role (set on the
published block, as in Studio), the prompt's pages (choice, Django's own sign-in, confirmation), its
refusals, LTI 1.1 -> 1.3 migration, roles that never escalate, launches without name or email, and the
page where users unlink."""

from __future__ import annotations

import html
import json
import re
import time
from collections.abc import Iterator
from typing import Any
from urllib.parse import unquote, urljoin

import pytest
import requests
from django.contrib.auth import get_user_model
from workbench.runtime import WorkbenchRuntime

from lti_core.lti13 import binding
from lti_core.types import Consumer
from lti_peer import DELETE
from lti_peer.claims import CLAIM_DEPLOYMENT_ID, INSTRUCTOR_ROLES, LEARNER_ROLES, add_lti1p1_claim
from lti_peer.lti11 import moodle_lti11_params, sign_lti11_launch
from lti_peer.platform import PlatformPeer
from lti_xblock import models as m
from tests.conftest import Tool, registration_of
from tests.test_host_lti13 import full_launch, written_rows

PASSWORD = "local-password-4711"
INSTITUTION_ADMIN = "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Administrator"
OTHER_ROLE = {"learner": "instructor", "instructor": "learner"}


# -- helpers -------------------------------------------------------------------------------------


def configure(tool: Tool, **modes: str) -> None:
    """The published block's provisioning modes, as its author saved them in Studio (``learner=..``)."""
    block = WorkbenchRuntime().get_block(tool.content_id)
    for role, mode in modes.items():
        setattr(block, f"{role}_provisioning", mode)
    block.save()


def roles_of(role: str) -> list[str]:
    return list(INSTRUCTOR_ROLES if role == "instructor" else LEARNER_ROLES)


def absolute(tool: Tool, location: str) -> str:
    return urljoin(tool.base_url + "/", location)


def landed_as(browser: requests.Session, tool: Tool, response: requests.Response) -> str:
    """The username the launch signed in, after following it to the content."""
    assert response.status_code == 302, response.text[:2000]
    assert response.headers["Location"].endswith(f"/lti_publish/content/{tool.content_id}/")
    page = browser.get(absolute(tool, response.headers["Location"]))
    assert page.status_code == 200, page.text[:2000]
    found = re.search(r'data-username="([^"]*)"', page.text)
    assert found is not None
    return html.unescape(found.group(1))


def enrolled_role(username: str, tool: Tool) -> str:
    return str(m.LtiContentEnrollment.objects.get(user__username=username, content_id=tool.content_id).role)


def prompt_forms(page: requests.Response) -> dict[str, tuple[str, dict[str, str]]]:
    """The prompt page's forms by choice: (action, hidden fields)."""
    assert page.status_code == 200, page.text[:2000]
    forms = {}
    for action, body in re.findall(r'<form method="post" action="([^"]+)">(.*?)</form>', page.text, re.S):
        fields = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)">', body))
        choice = re.search(r'name="choice" value="([^"]+)"', body)
        assert choice is not None
        forms[choice.group(1)] = (html.unescape(action), {k: html.unescape(v) for k, v in fields.items()})
    return forms


def choose(browser: requests.Session, tool: Tool, page: requests.Response, button: str, **changes: Any) -> Any:
    """Press a button of the prompt page (``changes``: fields changed or, with DELETE, left out)."""
    action, fields = prompt_forms(page)[button]
    data = {**fields, "choice": button, **changes}
    return browser.post(
        absolute(tool, action), data={k: v for k, v in data.items() if v is not DELETE}, allow_redirects=False
    )


def sign_in(browser: requests.Session, tool: Tool, sign_in_redirect: requests.Response, username: str) -> Any:
    """Django's sign-in form, filled in as a person does; returns its redirect back."""
    assert sign_in_redirect.status_code == 302, sign_in_redirect.text[:2000]
    form_page = browser.get(absolute(tool, sign_in_redirect.headers["Location"]))
    assert form_page.status_code == 200 and 'name="password"' in form_page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', form_page.text)
    next_url = re.search(r'name="next" value="([^"]*)"', form_page.text)
    assert csrf is not None and next_url is not None
    data = {"csrfmiddlewaretoken": csrf.group(1), "username": username, "password": PASSWORD}
    signed_in = browser.post(
        form_page.url, data={**data, "next": html.unescape(next_url.group(1))}, allow_redirects=False
    )
    assert signed_in.status_code == 302, signed_in.text[:2000]
    return browser.get(absolute(tool, signed_in.headers["Location"]))


def local_account(username: str) -> Any:
    """Someone with an account here before any launch (with a password: Django's sign-in)."""
    return get_user_model().objects.create_user(username, password=PASSWORD)


def assert_refused(response: requests.Response, reason: str, status: int) -> None:
    assert response.status_code == status, response.text[:2000]
    assert reason in response.text


def link_then_land(
    browser: requests.Session, tool: Tool, platform: PlatformPeer, sub: str, role: str, path: str
) -> tuple[str, str]:
    """A first launch, through the prompt when the mode asks: (the user landed as, the account signed in to)."""
    first = full_launch(browser, tool, platform, sub=sub, roles=roles_of(role))
    if path == "automatic":
        return landed_as(browser, tool, first), ""
    assert first.status_code == 200 and "How do you want to continue?" in first.text
    if path == "new":
        return landed_as(browser, tool, choose(browser, tool, first, "new")), ""
    account = local_account(f"local-{role}-{sub}").username
    confirmation = sign_in(browser, tool, choose(browser, tool, first, "existing"), account)
    assert "Link your account" in confirmation.text and account in confirmation.text
    return landed_as(browser, tool, choose(browser, tool, confirmation, "confirm")), account


# -- the modes in Studio ----------------------------------------------------------------------------


def test_the_course_team_sets_the_modes_in_studio_and_the_site_default_shows_until_then(browser, tool, platform):
    from tests.test_xblock_grades import save_settings

    block = WorkbenchRuntime().get_block(tool.content_id)
    editor = block.studio_view().body_html()
    for label in ("New accounts only (automatic)", "Existing and new accounts (prompt)", "Existing accounts only"):
        assert label in editor
    assert editor.count('value="new_only" selected') == 2  # the tests' site default, for both roles
    username = landed_as(browser, tool, full_launch(browser, tool, platform, sub="21", roles=roles_of("instructor")))
    assert enrolled_role(username, tool) == "staff"
    refused = save_settings(browser, tool, {"learner_provisioning": "everyone_is_admin"})
    assert refused.json()["result"] == "error" and set(refused.json()["errors"]) == {"learner_provisioning"}
    saved = save_settings(browser, tool, {"learner_provisioning": "existing_only_prompt"})
    assert saved.json() == {"result": "success"}
    block = WorkbenchRuntime().get_block(tool.content_id)
    assert (block.learner_provisioning, block.instructor_provisioning) == ("existing_only_prompt", "")
    with requests.Session() as learner:  # the new mode is in force at once
        assert set(prompt_forms(full_launch(learner, tool, platform, sub="22"))) == {"existing"}


# -- each mode, each role --------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["learner", "instructor"])
@pytest.mark.parametrize(
    ("mode", "path"),
    [
        ("new_only", "automatic"),
        ("existing_and_new_prompt", "new"),
        ("existing_and_new_prompt", "existing"),
        ("existing_only_prompt", "existing"),
    ],
)
def test_first_launch_by_the_mode_then_every_launch_goes_straight_in(browser, tool, platform, mode, path, role):
    # The other role's mode is another one: the launch's own role picks its mode.
    configure(tool, **{role: mode, OTHER_ROLE[role]: "existing_only_prompt" if mode == "new_only" else "new_only"})
    users_before = get_user_model().objects.count()
    username, account = link_then_land(browser, tool, platform, "31", role, path)
    if account:
        assert username == account  # linked, nothing created
        assert get_user_model().objects.count() == users_before + 1  # the account made for the test only
    else:
        assert get_user_model().objects.count() == users_before + 1  # the new account
    link = m.LtiUserLink.objects.get(platform=platform.issuer, platform_user_id="31")
    assert link.user.username == username
    assert enrolled_role(username, tool) == ("staff" if role == "instructor" else "learner")
    assert not m.LtiPendingLaunch.objects.exists()  # used once, gone

    # The second launch, in another browser: straight in as the same user, nothing asked or created.
    with requests.Session() as later:
        users = get_user_model().objects.count()
        assert landed_as(later, tool, full_launch(later, tool, platform, sub="31", roles=roles_of(role))) == username
        assert get_user_model().objects.count() == users


def test_existing_accounts_only_without_an_account_says_so_and_creates_nothing(browser, tool, platform):
    configure(tool, learner="existing_only_prompt")
    before = written_rows()
    first = full_launch(browser, tool, platform, sub="41")
    assert set(prompt_forms(first)) == {"existing"}  # no "Create a new account"
    assert "Sign in to your account here to link it" in first.text
    refused = choose(browser, tool, first, "existing", choice="new")  # a hand-made form asking for one anyway
    assert_refused(refused, "existing_accounts_only", 403)
    assert "Nothing was created" in refused.text
    after = written_rows()
    assert (after["users"], after["links"], after["enrollments"]) == (before["users"], before["links"], 0)


def test_in_a_frame_without_cookies_the_prompt_goes_on_in_a_new_window(tool, platform):
    """A launch bound by the platform's storage (a frame that drops the tool's cookies): the prompt
    page offers a new window only, whose handover binds the prompt there, once."""
    configure(tool, learner="existing_and_new_prompt")
    with requests.Session() as frame:
        form = platform.login_form(
            tool.details.lti13_login_url, tool.details.lti13_target_link_uri, claims={"sub": "91"}
        )
        started = frame.post(tool.details.lti13_login_url, data={**form, "lti_storage_target": "_parent"})
        config = re.search(r'<script id="lti-login" type="application/json">(.*?)</script>', started.text, re.S)
        assert config is not None
        status, action, fields = platform.authorize_redirect(json.loads(config.group(1))["auth_url"])
        assert status == 200
        frame.cookies.clear()
        check = frame.post(action, data=fields, allow_redirects=False)
        assert check.status_code == 200
        # What the check page's script posts back, with the state it read from the platform's storage.
        back = {**fields, binding.REPOST_FIELD: "1", binding.STORAGE_VALUE_FIELD: fields["state"]}
        prompt = frame.post(action, data=back, headers={"Sec-Fetch-Site": "same-origin"}, allow_redirects=False)
        assert prompt.status_code == 200 and not prompt_forms(prompt), prompt.text[:2000]
        window_link = re.search(r'<a class="lti-error__action" href="([^"]+)" target="_blank"', prompt.text)
        assert window_link is not None
    with requests.Session() as window:
        page = window.get(html.unescape(window_link.group(1)))
        assert set(prompt_forms(page)) == {"existing", "new"}
        username = landed_as(window, tool, choose(window, tool, page, "new"))
        assert m.LtiUserLink.objects.get(platform_user_id="91").user.username == username
    with requests.Session() as another:  # the handover was used
        assert_refused(another.get(html.unescape(window_link.group(1))), "prompt_expired", 404)


def test_back_from_the_sign_in_without_signing_in_offers_the_choice_again(browser, tool, platform):
    page = pending_prompt(tool, platform, browser, "57")
    to_sign_in = choose(browser, tool, page, "existing")
    next_url = re.search(r"next=([^&]+)", to_sign_in.headers["Location"])
    assert next_url is not None
    back = browser.get(tool.url(unquote(next_url.group(1))))  # the person comes back without signing in
    assert set(prompt_forms(back)) == {"existing", "new"}
    again = choose(browser, tool, back, "existing")
    assert again.status_code == 302 and again.headers["Location"] == to_sign_in.headers["Location"]
    owner = local_account("owner57")
    confirmation = sign_in(browser, tool, again, owner.username)
    assert landed_as(browser, tool, choose(browser, tool, confirmation, "confirm")) == owner.username


# -- refusals change nothing -------------------------------------------------------------------------


def pending_prompt(tool: Tool, platform: PlatformPeer, browser: requests.Session, sub: str) -> requests.Response:
    configure(tool, learner="existing_and_new_prompt")
    page = full_launch(browser, tool, platform, sub=sub)
    assert page.status_code == 200 and set(prompt_forms(page)) == {"existing", "new"}
    return page


@pytest.mark.parametrize(
    ("changes", "reason", "status"),
    [
        ({"csrfmiddlewaretoken": DELETE}, "csrf_failed", 403),
        ({"csrfmiddlewaretoken": "x" * 64}, "csrf_failed", 403),
        ({"form_token": DELETE}, "prompt_not_bound", 403),
        ({"form_token": "guessed"}, "prompt_not_bound", 403),
        ({"choice": "take-over"}, "prompt_step_refused", 409),
    ],
)
def test_a_step_without_its_tokens_is_refused_and_changes_nothing(browser, tool, platform, changes, reason, status):
    page = pending_prompt(tool, platform, browser, "51")
    before = written_rows()
    assert_refused(choose(browser, tool, page, "new", **changes), reason, status)
    assert written_rows() == before
    # The real page still works afterwards.
    assert landed_as(browser, tool, choose(browser, tool, page, "new"))


def test_a_step_from_another_browser_is_refused(browser, tool, platform):
    page = pending_prompt(tool, platform, browser, "52")
    before = written_rows()
    with requests.Session() as attacker:  # has the page's fields, not the launch's cookie
        attacker.cookies.set("csrftoken", browser.cookies["csrftoken"])
        assert_refused(choose(attacker, tool, page, "new"), "prompt_not_bound", 403)
    assert written_rows() == before


def test_forged_and_replayed_confirmations_are_refused(browser, tool, platform):
    page = pending_prompt(tool, platform, browser, "53")
    owner, intruder = local_account("owner53"), local_account("intruder53")
    confirmation = sign_in(browser, tool, choose(browser, tool, page, "existing"), owner.username)
    before = written_rows()
    # Someone else signs in in this browser meanwhile: the page confirmed the owner, not them.
    with requests.Session() as other:
        other_page = pending_prompt(tool, platform, other, "54")
        sign_in(other, tool, choose(other, tool, other_page, "existing"), intruder.username)
        for cookie in browser.cookies:
            if cookie.name == "sessionid":
                cookie.value = other.cookies["sessionid"]
    assert_refused(choose(browser, tool, confirmation, "confirm"), "prompt_step_refused", 409)
    assert written_rows()["links"] == before["links"]
    assert not m.LtiUserLink.objects.filter(user=intruder).exists()


def test_a_used_confirmation_cannot_be_replayed(browser, tool, platform):
    page = pending_prompt(tool, platform, browser, "55")
    owner = local_account("owner55")
    confirmation = sign_in(browser, tool, choose(browser, tool, page, "existing"), owner.username)
    assert landed_as(browser, tool, choose(browser, tool, confirmation, "confirm")) == owner.username
    before = written_rows()
    replayed = choose(browser, tool, confirmation, "confirm", csrfmiddlewaretoken=browser.cookies["csrftoken"])
    assert_refused(replayed, "prompt_expired", 404)  # with a fresh CSRF token (the sign-in rotated it) too
    assert written_rows() == before


def test_an_expired_pending_launch_is_refused_and_creates_nothing(browser, tool, platform):
    page = pending_prompt(tool, platform, browser, "56")
    m.LtiPendingLaunch.objects.update(expires_at=time.time() - 1)
    before = written_rows()
    assert_refused(choose(browser, tool, page, "new"), "prompt_expired", 404)
    pending_id = re.search(r"/link/([^/]+)/step", page.text)
    assert pending_id is not None
    assert_refused(browser.get(tool.url(f"/lti_publish/link/{pending_id.group(1)}/")), "prompt_expired", 404)
    assert written_rows() == before
    assert not m.LtiUserLink.objects.filter(platform_user_id="56").exists()


# -- LTI 1.1 -> 1.3 migration -------------------------------------------------------------------------


class MigratingPeer(PlatformPeer):
    """A platform that moved the course from LTI 1.1: its id_tokens carry the ``lti1p1`` claim
    (added last: it signs exp and nonce)."""

    lti1p1: dict[str, str] | None = None

    def sign(self, payload: Any, **options: Any) -> str:
        if self.lti1p1 is not None and CLAIM_DEPLOYMENT_ID in payload and "nonce" in payload:
            payload = add_lti1p1_claim(dict(payload), **self.lti1p1)
        return super().sign(payload, **options)


@pytest.fixture
def moved(tool: Tool) -> Iterator[MigratingPeer]:
    from lti_xblock.views import store

    with MigratingPeer(redirect_uris=[tool.details.lti13_redirect_uri]) as peer:
        store.save_registration(registration_of(peer))
        yield peer


def lti11_user(tool: Tool, user_id: str) -> str:
    """An LTI 1.1 launch of ``user_id`` from the tool's consumer; the username it landed as."""
    url = tool.details.lti11_tool_url
    body = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, moodle_lti11_params(user_id=user_id))
    with requests.Session() as browser:
        return landed_as(browser, tool, browser.post(url, data=body, allow_redirects=False))


def test_a_learner_of_lti11_is_the_same_user_after_the_move_to_lti13(tool, moved):
    from tests.test_xblock_grades import answer, problem_ids

    url = tool.details.lti11_tool_url
    body = sign_lti11_launch(url, tool.consumer.key, tool.consumer.secret, moodle_lti11_params(user_id="61"))
    with requests.Session() as old:
        username = landed_as(old, tool, old.post(url, data=body, allow_redirects=False))
        user = get_user_model().objects.get(username=username)
        answer(old, tool, problem_ids(tool)[0], user.pk, right=True)  # a score, kept by user
    scored = m.LtiChildScore.objects.filter(user=user).count()
    assert scored == 1

    moved.lti1p1 = {"consumer_key": tool.consumer.key, "secret": tool.consumer.secret, "user_id": "61"}
    with requests.Session() as browser:  # the 1.3 sub is another id: the claim names the 1.1 one
        assert landed_as(browser, tool, full_launch(browser, tool, moved, sub="new-61")) == username
    assert m.LtiUserLink.objects.get(platform=moved.issuer, platform_user_id="new-61").user == user
    assert m.LtiChildScore.objects.filter(user=user).count() == scored  # the same learner, the same scores
    moved.lti1p1 = None
    with requests.Session() as browser:  # later launches without the claim: the 1.3 link
        assert landed_as(browser, tool, full_launch(browser, tool, moved, sub="new-61")) == username


def test_a_forged_migration_claim_gets_nobody_elses_account(tool, moved):
    username = lti11_user(tool, "62")
    moved.lti1p1 = {"consumer_key": tool.consumer.key, "secret": "guessed-secret-0123456789", "user_id": "62"}
    with requests.Session() as browser:
        response = full_launch(browser, tool, moved, sub="forger")
        if response.status_code == 302:
            assert landed_as(browser, tool, response) != username
        else:
            assert response.status_code in (400, 401, 403)
    assert not m.LtiUserLink.objects.filter(platform=moved.issuer, user__username=username).exists()


def test_an_admin_mapping_keeps_the_accounts_without_a_claim(tool, moved):
    from lti_xblock.views import store

    username = lti11_user(tool, "63")
    consumer = store.get_consumer(tool.consumer.key)
    assert isinstance(consumer, Consumer)
    store.save_consumer(Consumer(consumer.key, consumer.secret, consumer.name, migrated_to=moved.issuer))
    with requests.Session() as browser:  # the platform sends the same user id in both versions
        assert landed_as(browser, tool, full_launch(browser, tool, moved, sub="63")) == username
    with requests.Session() as browser:  # another id is another person
        assert landed_as(browser, tool, full_launch(browser, tool, moved, sub="64")) != username


# -- roles, privacy ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "claims",
    [
        {"custom": {"roles": "Instructor", "role": "Administrator", "is_staff": "true"}},
        {"roles": [*LEARNER_ROLES, INSTITUTION_ADMIN]},
        {"roles": [*LEARNER_ROLES, "http://purl.imsglobal.org/vocab/lis/v2/institution/person#Instructor"]},
    ],
)
def test_nothing_in_a_launch_makes_a_learner_staff(browser, tool, platform, claims):
    username = landed_as(browser, tool, full_launch(browser, tool, platform, sub="71", **claims))
    assert enrolled_role(username, tool) == "learner"


def test_staff_roles_setting_adds_context_roles(browser, tool, platform, settings):
    settings.LTI_PUBLISH = {**settings.LTI_PUBLISH, "STAFF_ROLES": ["Mentor"]}
    mentor = ["http://purl.imsglobal.org/vocab/lis/v2/membership#Mentor"]
    username = landed_as(browser, tool, full_launch(browser, tool, platform, sub="72", roles=mentor))
    assert enrolled_role(username, tool) == "staff"


def test_a_launch_without_name_or_email_gets_a_stable_generated_name(tool, platform):
    anonymous = {"name": DELETE, "given_name": DELETE, "family_name": DELETE, "email": DELETE}
    names = set()
    for _ in range(2):
        with requests.Session() as browser:
            names.add(landed_as(browser, tool, full_launch(browser, tool, platform, sub="73", **anonymous)))
    (name,) = names
    assert name.startswith("lti_") and get_user_model().objects.get(username=name).email == ""


# -- users see their links and unlink --------------------------------------------------------------------


def test_a_user_sees_their_links_and_unlinking_makes_the_next_launch_a_first_one(browser, tool, platform):
    configure(tool, learner="existing_and_new_prompt")
    username, _account = link_then_land(browser, tool, platform, "81", "learner", "new")
    with requests.Session() as stranger:
        assert_refused(stranger.get(tool.url("/lti_publish/links")), "not_signed_in", 401)
    page = browser.get(tool.url("/lti_publish/links"))
    assert page.status_code == 200 and platform.issuer in page.text and ">81<" in page.text
    csrf = re.search(r'name="csrfmiddlewaretoken" value="([^"]+)"', page.text)
    assert csrf is not None
    unlink = {"platform": platform.issuer, "platform_user_id": "81"}
    assert_refused(browser.post(tool.url("/lti_publish/links/unlink"), data=unlink), "csrf_failed", 403)
    with_csrf = {**unlink, "csrfmiddlewaretoken": csrf.group(1)}
    someone_elses = {**with_csrf, "platform_user_id": "82"}
    assert_refused(browser.post(tool.url("/lti_publish/links/unlink"), data=someone_elses), "unknown_user_link", 404)
    done = browser.post(tool.url("/lti_publish/links/unlink"), data=with_csrf, allow_redirects=False)
    assert done.status_code == 302 and not m.LtiUserLink.objects.filter(platform_user_id="81").exists()
    # A first launch again: the prompt, offering to link the account still signed in here.
    again = full_launch(browser, tool, platform, sub="81")
    assert set(prompt_forms(again)) == {"confirm", "existing", "new"} and username in again.text


# -- admins: the Django admin ------------------------------------------------------------------------------


@pytest.mark.django_db
def test_admins_search_and_remove_links_and_map_a_consumer(admin_client):
    from lti_core.types import UserLink
    from lti_xblock.views import store

    sam = get_user_model().objects.create_user("sam-linked")
    store.save_user_link(UserLink("https://moodle.example", "2", str(sam.pk)))
    store.save_user_link(UserLink("moodle-key", "7", str(sam.pk)))
    found = admin_client.get("/admin/lti_xblock/ltiuserlink/", {"q": "sam-linked"}).content.decode()
    assert "https://moodle.example" in found and "moodle-key" in found
    by_platform = admin_client.get("/admin/lti_xblock/ltiuserlink/", {"q": "moodle.example"}).content.decode()
    assert "1 result" in by_platform
    link = m.LtiUserLink.objects.get(platform="moodle-key")
    assert admin_client.post(f"/admin/lti_xblock/ltiuserlink/{link.pk}/delete/", {"post": "yes"}).status_code == 302
    assert store.get_user_link("moodle-key", "7") is None and store.get_user_link("https://moodle.example", "2")

    store.save_consumer(Consumer("moved-key", "moved-secret-0123456789", "Moodle"))
    url = f"/admin/lti_xblock/lticonsumer/{m.LtiConsumer.objects.get(key='moved-key').pk}/change/"
    form = {"name": "Moodle", "enabled": "on", "new_secret": "", "migrated_to": "https://Moodle.example/"}
    assert admin_client.post(url, form).status_code == 302
    assert store.get_consumer("moved-key") == Consumer(
        "moved-key", "moved-secret-0123456789", "Moodle", migrated_to="https://moodle.example"
    )
    refused = admin_client.post(url, {**form, "migrated_to": "not an issuer"})
    assert refused.status_code == 200 and store.get_consumer("moved-key").migrated_to == "https://moodle.example"
