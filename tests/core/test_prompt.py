"""The linking prompt (lti_core.prompt), the linking decision (lti_core.linking.decide_link) and the
LTI 1.1 -> 1.3 migration claim (lti_core.lti13.migration): plain data and a MemoryStore."""

from __future__ import annotations

import dataclasses
import itertools

import pytest

from lti_core.linking import (
    AccountLinker,
    LinkOutcome,
    ProvisioningMode,
    ProvisioningModes,
    decide_link,
    find_link,
)
from lti_core.lti13 import claims as c
from lti_core.lti13.migration import migration_base_string, sign_migration_claim, verified_lti11_identity
from lti_core.memory import MemoryStore
from lti_core.prompt import (
    TRANSITIONS,
    AccountAlreadyLinked,
    ChooseExisting,
    ChooseNew,
    Confirm,
    NoNewAccounts,
    PendingLaunch,
    PromptAction,
    PromptExpired,
    PromptFlow,
    PromptNotBound,
    PromptOutcome,
    PromptRefused,
    PromptState,
    SignedIn,
    transition,
)
from lti_core.types import AgsEndpoint, Consumer, Launch, LaunchServices, Role, UserLink

NOW = 1_760_000_000.0
M = ProvisioningMode
S = PromptState
ISSUER = "https://moodle.example"


def launch(role: Role = Role.LEARNER, **fields: object) -> Launch:
    values: dict[str, object] = {
        "lti_version": "1.3.0",
        "platform": ISSUER,
        "platform_user_id": "2",
        "roles": (),
        "role": role,
        "resource_link_id": "5",
        "client_id": "abc",
        "deployment_id": "1",
        "given_name": "Sam",
        "custom": {"chapter": "1"},
        "services": LaunchServices(ags=AgsEndpoint(lineitem_url=ISSUER + "/lineitem")),
        "raw": {"iss": ISSUER, "nonce": "n-1", "sub": "2"},
    }
    values.update(fields)
    return Launch(**values)  # type: ignore[arg-type]


# -- the decision ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("mode", "signed_in", "can_sign_in", "outcome", "may_create"),
    [
        (M.NEW_ACCOUNTS_ONLY, "", True, LinkOutcome.CREATE, False),
        (M.NEW_ACCOUNTS_ONLY, "u9", True, LinkOutcome.CREATE, False),  # never links whoever is signed in
        (M.EXISTING_AND_NEW_PROMPT, "", True, LinkOutcome.PROMPT, True),
        (M.EXISTING_AND_NEW_PROMPT, "u9", True, LinkOutcome.PROMPT, True),
        (M.EXISTING_AND_NEW_PROMPT, "", False, LinkOutcome.CREATE, False),  # nothing to link to
        (M.EXISTING_ONLY_PROMPT, "", True, LinkOutcome.PROMPT, False),
        (M.EXISTING_ONLY_PROMPT, "", False, LinkOutcome.REFUSE, False),
        (M.EXISTING_ONLY_PROMPT, "u9", False, LinkOutcome.PROMPT, False),
    ],
)
def test_without_a_link_the_mode_decides(mode, signed_in, can_sign_in, outcome, may_create):
    decision = decide_link(mode, None, signed_in, launch(), host_can_sign_in=can_sign_in)
    assert (decision.outcome, decision.may_create) == (outcome, may_create)
    if outcome is LinkOutcome.PROMPT:
        assert decision.local_user_id == signed_in  # offered, not linked
    if outcome is LinkOutcome.REFUSE:
        assert decision.reason == "no_local_sign_in"


@pytest.mark.parametrize("mode", list(M))
def test_a_link_wins_whoever_is_signed_in(mode):
    link = UserLink(ISSUER, "2", "u1")
    decision = decide_link(mode, link, "someone-else", launch())
    assert (decision.outcome, decision.local_user_id, decision.new_link) == (LinkOutcome.LINKED, "u1", False)


def test_moodles_defaults_prompt_instructors_and_create_learners():
    modes = ProvisioningModes()
    assert modes.for_role(Role.STAFF) is M.EXISTING_AND_NEW_PROMPT
    assert modes.for_role(Role.LEARNER) is M.NEW_ACCOUNTS_ONLY
    assert [m.label for m in M] == [
        "New accounts only (automatic)",
        "Existing and new accounts (prompt)",
        "Existing accounts only (prompt)",
    ]


# -- the LTI 1.1 migration claim --------------------------------------------------------------------

# The example of 1EdTech's LTI 1.3 migration guide, with its secret.
SPEC_BODY = {
    "nonce": "172we8671fd8z",
    "iat": 1551290796,
    "exp": 1551290856,
    "iss": "https://lmsvendor.com",
    "aud": "PM48OJSfGDTAzAo",
    "sub": "3",
    c.DEPLOYMENT_ID: "689302",
    c.LTI1P1: {
        "user_id": "34212",
        "oauth_consumer_key": "179248902",
        "oauth_consumer_key_sign": "lWd54kFo5qU7xshAna6v8BwoBm6tmUjc6GTax6+12ps=",
    },
}
SPEC_CONSUMER = Consumer("179248902", "my-lti11-secret")


def spec_launch(body: dict[str, object] | None = None) -> Launch:
    return launch(platform="https://lmsvendor.com", platform_user_id="3", raw=dict(body or SPEC_BODY))


def test_the_specs_example_signature_verifies():
    assert (
        migration_base_string(SPEC_BODY)
        == "179248902&689302&https://lmsvendor.com&PM48OJSfGDTAzAo&1551290856&172we8671fd8z"
    )
    assert sign_migration_claim(migration_base_string(SPEC_BODY) or "", "my-lti11-secret") == (
        "lWd54kFo5qU7xshAna6v8BwoBm6tmUjc6GTax6+12ps="
    )
    store = MemoryStore()
    store.save_consumer(SPEC_CONSUMER)
    identity = verified_lti11_identity(spec_launch(), store)
    assert identity is not None and (identity.consumer_key, identity.user_id) == ("179248902", "34212")


def _changed(**changes: object) -> dict[str, object]:
    body = dict(SPEC_BODY)
    claim = dict(SPEC_BODY[c.LTI1P1])  # type: ignore[arg-type]
    for name, value in changes.items():
        if name in claim:
            claim[name] = value
        else:
            body[name] = value
    body[c.LTI1P1] = claim
    return body


@pytest.mark.parametrize(
    "body",
    [
        _changed(oauth_consumer_key_sign="lWd54kFo5qU7xshAna6v8BwoBm6tmUjc6GTax6+12pq="),  # forged
        _changed(user_id="1"),  # another 1.1 user: the signature does not cover it, the claim's owner must not be
        _changed(nonce="other"),  # replayed from another launch
        _changed(exp=1551290857),
        _changed(aud="another-client"),
        _changed(oauth_consumer_key="unknown-key"),
        _changed(oauth_consumer_key_sign=""),
        {k: v for k, v in SPEC_BODY.items() if k != c.LTI1P1},
    ],
    ids=["forged", "user", "nonce", "exp", "aud", "consumer", "empty", "absent"],
)
def test_a_migration_claim_that_does_not_verify_is_ignored(body):
    store = MemoryStore()
    store.save_consumer(SPEC_CONSUMER)
    store.save_user_link(UserLink("179248902", "34212", "old-user"))
    identity = verified_lti11_identity(spec_launch(body), store)
    if body is SPEC_BODY or identity is None:
        assert find_link(store, spec_launch(body)) == (None, False)
    else:  # only the user_id changed: the signature covers the consumer, not the user (the spec's choice)
        assert identity.user_id == "1"


def test_a_disabled_consumer_vouches_for_no_one():
    store = MemoryStore()
    store.save_consumer(dataclasses.replace(SPEC_CONSUMER, enabled=False))
    assert verified_lti11_identity(spec_launch(), store) is None


def test_a_verified_claim_finds_the_lti11_users_link():
    store = MemoryStore()
    store.save_consumer(SPEC_CONSUMER)
    store.save_user_link(UserLink("179248902", "34212", "old-user"))
    link, migrated = find_link(store, spec_launch())
    assert (link, migrated) == (UserLink("https://lmsvendor.com", "3", "old-user"), True)
    decision = AccountLinker(store).decide(spec_launch())
    assert (decision.outcome, decision.local_user_id, decision.new_link) == (LinkOutcome.LINKED, "old-user", True)
    # Once the 1.3 identity has its own link, that one is used.
    store.save_user_link(UserLink("https://lmsvendor.com", "3", "old-user"))
    assert find_link(store, spec_launch()) == (UserLink("https://lmsvendor.com", "3", "old-user"), False)


def test_an_admins_mapping_matches_the_same_platform_user_id_never_an_email():
    store = MemoryStore()
    store.save_consumer(Consumer("moodle-key", "s3cret-0123456789", migrated_to=ISSUER))
    store.save_user_link(UserLink("moodle-key", "2", "old-user"))
    store.save_user_link(UserLink("moodle-key", "7", "someone-else"))
    assert find_link(store, launch(email="someone-else@example.org")) == (UserLink(ISSUER, "2", "old-user"), True)
    assert find_link(store, launch(platform_user_id="3")) == (None, False)  # no 1.1 user "3"
    assert find_link(store, launch(platform="https://other.example")) == (None, False)  # not mapped
    lti11 = launch(lti_version="1.1", platform="moodle-key", platform_user_id="9")
    assert find_link(store, lti11) == (None, False)  # 1.1 launches use their own links only


# -- the prompt -------------------------------------------------------------------------------------


def pending(state: PromptState = S.CHOOSING, may_create: bool = True, local_user_id: str = "") -> PendingLaunch:
    return PendingLaunch("p1", launch(), "content", state, may_create, "b", "h", "f", NOW + 60, local_user_id)


EVENTS = {ChooseNew: ChooseNew(), ChooseExisting: ChooseExisting(), SignedIn: SignedIn("u1"), Confirm: Confirm("u1")}


@pytest.mark.parametrize(("state", "event_type"), list(itertools.product(S, EVENTS)))
def test_every_step_follows_the_table(state, event_type):
    current = pending(state, local_user_id="u1" if state is S.CONFIRMING else "")
    if (state, event_type) not in TRANSITIONS:
        with pytest.raises(PromptRefused):
            transition(current, EVENTS[event_type])
        return
    after = transition(current, EVENTS[event_type])
    expected = TRANSITIONS[(state, event_type)]
    assert (after.state if after else None) == expected


def test_existing_accounts_only_never_creates():
    for state in (S.CHOOSING, S.SIGNING_IN, S.CONFIRMING):
        with pytest.raises(NoNewAccounts) as refused:
            transition(pending(state, may_create=False, local_user_id="u1"), ChooseNew())
        assert refused.value.status == 403 and refused.value.reason == "existing_accounts_only"


def test_a_confirmation_for_another_account_than_the_signed_in_one_is_refused():
    with pytest.raises(PromptRefused):
        transition(pending(S.CONFIRMING, local_user_id="u1"), Confirm("u2"))
    with pytest.raises(PromptRefused):
        transition(pending(S.CONFIRMING, local_user_id="u1"), Confirm(""))


@pytest.fixture
def flow() -> PromptFlow:
    return PromptFlow(MemoryStore(), lifetime=600)


def begin(flow: PromptFlow, signed_in: str = "", mode: ProvisioningMode = M.EXISTING_AND_NEW_PROMPT):
    decision = decide_link(mode, None, signed_in, launch(Role.STAFF))
    return flow.begin(launch(Role.STAFF), decision, "block-1", NOW)


def test_the_whole_prompt_link_an_existing_account(flow):
    first, browser = begin(flow)
    assert first.state is S.CHOOSING and first.may_create
    kept = flow.load(first.id, browser.cookie, NOW + 1)
    assert kept.launch == dataclasses.replace(launch(Role.STAFF), raw={"iss": ISSUER, "sub": "2"})  # no nonce kept
    signing_in = flow.step(first.id, browser.cookie, browser.form_token, ChooseExisting(), NOW + 2)
    assert isinstance(signing_in, PendingLaunch) and signing_in.state is S.SIGNING_IN
    confirming = flow.step(first.id, browser.cookie, browser.form_token, SignedIn("teacher-7"), NOW + 30)
    assert isinstance(confirming, PendingLaunch) and confirming.local_user_id == "teacher-7"
    done = flow.step(first.id, browser.cookie, browser.form_token, Confirm("teacher-7"), NOW + 40)
    assert isinstance(done, PromptOutcome)
    assert (done.action, done.local_user_id, done.pending.content_id) == (PromptAction.LINK, "teacher-7", "block-1")
    # Single use: the same confirmation again (a replay) finds nothing.
    with pytest.raises(PromptExpired):
        flow.step(first.id, browser.cookie, browser.form_token, Confirm("teacher-7"), NOW + 41)


def test_already_signed_in_starts_at_the_confirmation(flow):
    first, browser = begin(flow, signed_in="teacher-7")
    assert (first.state, first.local_user_id) == (S.CONFIRMING, "teacher-7")
    done = flow.step(first.id, browser.cookie, browser.form_token, ChooseNew(), NOW + 1)
    assert isinstance(done, PromptOutcome) and done.action is PromptAction.CREATE and done.local_user_id == ""


def test_forged_and_replayed_steps_change_nothing(flow):
    first, browser = begin(flow)
    store = flow.store
    for cookie, token, error in (
        ("", browser.form_token, PromptNotBound),  # no cookie (another browser)
        ("guess", browser.form_token, PromptNotBound),
        (browser.cookie, "", PromptNotBound),  # a cross-site form without the page's token
        (browser.cookie, "guess", PromptNotBound),
    ):
        with pytest.raises(error):
            flow.step(first.id, cookie, token, ChooseNew(), NOW + 1)
    with pytest.raises(PromptExpired):
        flow.step("unknown", browser.cookie, browser.form_token, ChooseNew(), NOW + 1)
    kept = store.get_pending_launch(first.id, NOW + 1)
    assert kept == dataclasses.replace(first, launch=kept.launch)  # nothing changed
    with pytest.raises(PromptExpired):  # expired
        flow.step(first.id, browser.cookie, browser.form_token, ChooseNew(), NOW + 601)


def test_linking_an_account_that_holds_another_identity_of_the_platform_is_refused(flow):
    flow.store.save_user_link(UserLink(ISSUER, "99", "teacher-7"))
    first, browser = begin(flow)
    flow.step(first.id, browser.cookie, browser.form_token, ChooseExisting(), NOW + 1)
    with pytest.raises(AccountAlreadyLinked) as refused:
        flow.step(first.id, browser.cookie, browser.form_token, SignedIn("teacher-7"), NOW + 2)
    assert refused.value.status == 409
    assert flow.store.get_pending_launch(first.id, NOW + 2).state is S.SIGNING_IN  # still there, unchanged
    flow.store.save_user_link(UserLink("https://other.example", "99", "teacher-8"))  # another platform: fine
    assert flow.step(first.id, browser.cookie, browser.form_token, SignedIn("teacher-8"), NOW + 3).state is S.CONFIRMING


def test_a_new_window_takes_the_prompt_over_once(flow):
    first, browser = begin(flow)
    rebound, cookie = flow.hand_over(first.id, browser.handover, NOW + 1)
    assert cookie != browser.cookie and rebound.handover == ""
    with pytest.raises(PromptNotBound):
        flow.load(first.id, browser.cookie, NOW + 2)  # the frame's cookie (if any) no longer counts
    assert flow.load(first.id, cookie, NOW + 2).id == first.id
    with pytest.raises(PromptNotBound):
        flow.hand_over(first.id, browser.handover, NOW + 3)  # the handover works once
    with pytest.raises(PromptNotBound):
        flow.hand_over(first.id, "", NOW + 3)
