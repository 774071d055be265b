"""Account linking: which local user a launch signs in as, and the usernames offered for new accounts."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from lti_core.errors import InvalidRequest
from lti_core.linking import (
    AccountLinker,
    LinkDecision,
    LinkOutcome,
    NamePlan,
    ProvisioningMode,
    ProvisioningModes,
    choose_username,
    identity_digest,
    safe_username,
    suggested_username,
)
from lti_core.types import Launch, Role, UserLink


def make_launch(platform: str = "https://moodle.example", user_id: str = "2", **fields) -> Launch:
    values = {
        "lti_version": "1.3.0",
        "platform": platform,
        "platform_user_id": user_id,
        "roles": ("http://purl.imsglobal.org/vocab/lis/v2/membership#Learner",),
        "role": Role.LEARNER,
        "resource_link_id": "1",
        "given_name": "Sam",
        "name": "Sam Student",
    }
    values.update(fields)
    return Launch(**values)


@pytest.fixture
def linker(store) -> AccountLinker:
    return AccountLinker(store)


def test_first_launch_creates_an_account_with_a_stable_username(linker, store):
    launch = make_launch()
    decision = linker.decide(launch)
    assert decision.outcome is LinkOutcome.CREATE
    assert decision.local_user_id == ""
    assert decision.suggested_username.startswith("sam_")
    assert len(decision.suggested_username) <= 30
    # Stable: the same identity gets the same suggestion, on any later call and from a new linker.
    assert linker.decide(launch) == decision
    assert AccountLinker(store).decide(dataclasses.replace(launch, roles=(), resource_link_id="9")) == decision
    assert store.writes == []  # deciding writes nothing


def test_same_user_id_on_two_platforms_gets_two_usernames(linker):
    moodle = linker.decide(make_launch("https://moodle.example", "2")).suggested_username
    other = linker.decide(make_launch("https://moodle.other.example", "2")).suggested_username
    lti11 = linker.decide(make_launch("moodle-key", "2", lti_version="1.1")).suggested_username
    assert len({moodle, other, lti11}) == 3
    assert moodle.split("_")[0] == other.split("_")[0] == "sam"


def test_username_does_not_depend_on_the_display_name_for_its_unique_part():
    renamed = suggested_username(make_launch(given_name="Samantha"))
    assert renamed.startswith("samantha_")
    assert renamed.split("_")[1] == suggested_username(make_launch()).split("_")[1]
    assert suggested_username(make_launch(user_id="3")).split("_")[1] != suggested_username(make_launch()).split("_")[1]


def test_platform_and_user_id_boundary_is_unambiguous():
    assert suggested_username(make_launch("https://a.example", "12")) != suggested_username(
        make_launch("https://a.example1", "2")
    )


@pytest.mark.parametrize(
    ("fields", "prefix"),
    [
        ({"given_name": "Zoë", "name": "Zoë Ölçer"}, "zoe_"),
        ({"given_name": "", "name": "Jean-Luc Picard"}, "jeanlucpicard_"),
        ({"given_name": "", "name": ""}, "lti_"),
        ({"given_name": "王小明"}, "lti_"),
        ({"given_name": "O'Brien; DROP TABLE"}, "obriendroptable_"),
        ({"given_name": "Maximilian-Alexander-Wolfgang"}, "maximilianalexander_"),
    ],
)
def test_username_slug(fields, prefix):
    username = suggested_username(make_launch(**fields))
    assert username.startswith(prefix)
    assert len(username) <= 30
    assert username.isascii() and username.replace("_", "").isalnum() and username == username.lower()


def test_username_max_length():
    username = suggested_username(make_launch(given_name="a" * 100), max_length=20)
    assert len(username) == 20
    assert username.startswith("a" * 9 + "_")


def test_link_then_decide_is_linked(linker, store):
    launch = make_launch()
    link = linker.link(launch, "user-42")
    assert link == UserLink("https://moodle.example", "2", "user-42")
    assert linker.decide(launch) == LinkDecision(LinkOutcome.LINKED, local_user_id="user-42")
    # The link is for that identity only.
    assert linker.decide(make_launch(user_id="3")).outcome is LinkOutcome.CREATE
    assert linker.decide(make_launch("https://moodle.other.example")).outcome is LinkOutcome.CREATE


def test_linked_user_stays_linked_whatever_the_role(store):
    linker = AccountLinker(store, ProvisioningModes(instructor=ProvisioningMode.EXISTING_ONLY_PROMPT))
    linker.link(make_launch(), "user-42")
    staff = make_launch(role=Role.STAFF)
    assert linker.decide(staff) == LinkDecision(LinkOutcome.LINKED, local_user_id="user-42")


def test_racing_link_keeps_the_first(linker, store):
    launch = make_launch()
    first = linker.link(launch, "user-first")
    second = linker.link(launch, "user-second")
    assert first.local_user_id == second.local_user_id == "user-first"
    assert store.get_user_link("https://moodle.example", "2").local_user_id == "user-first"


def test_racing_link_in_threads_one_wins(linker, store):
    launch = make_launch()
    start = threading.Barrier(8, timeout=10)
    returned: list[str] = []

    def run(n: int) -> None:
        start.wait()
        returned.append(linker.link(launch, f"user-{n}").local_user_id)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=20)
    assert len(returned) == 8
    assert len(set(returned)) == 1  # every racer signs in as the winner
    assert store.get_user_link("https://moodle.example", "2").local_user_id == returned[0]


@pytest.mark.parametrize(
    ("instructor_mode", "learner_mode", "role", "outcome"),
    [
        (ProvisioningMode.NEW_ACCOUNTS_ONLY, ProvisioningMode.NEW_ACCOUNTS_ONLY, Role.STAFF, LinkOutcome.CREATE),
        (ProvisioningMode.EXISTING_AND_NEW_PROMPT, ProvisioningMode.NEW_ACCOUNTS_ONLY, Role.STAFF, LinkOutcome.PROMPT),
        (
            ProvisioningMode.EXISTING_AND_NEW_PROMPT,
            ProvisioningMode.NEW_ACCOUNTS_ONLY,
            Role.LEARNER,
            LinkOutcome.CREATE,
        ),
        (ProvisioningMode.NEW_ACCOUNTS_ONLY, ProvisioningMode.EXISTING_ONLY_PROMPT, Role.LEARNER, LinkOutcome.PROMPT),
        (ProvisioningMode.NEW_ACCOUNTS_ONLY, ProvisioningMode.EXISTING_ONLY_PROMPT, Role.STAFF, LinkOutcome.CREATE),
    ],
)
def test_provisioning_mode_follows_the_launch_role(store, instructor_mode, learner_mode, role, outcome):
    linker = AccountLinker(store, ProvisioningModes(instructor_mode, learner_mode))
    decision = linker.decide(make_launch(role=role))
    assert decision.outcome is outcome
    assert decision.suggested_username == suggested_username(make_launch())


# -- the username rule both hosts share ----------------------------------------------------------


class Accounts:
    """A host's accounts: ``taken`` names are held by someone and are not to be taken over."""

    def __init__(self, *taken: str) -> None:
        self.taken = set(taken)
        self.asked: list[str] = []

    def username_available(self, name: str) -> bool:
        self.asked.append(name)
        return name not in self.taken


def test_the_candidate_itself_when_it_is_free():
    launch = make_launch()
    assert choose_username("sam_3f2a9c01b4", launch, Accounts()) == "sam_3f2a9c01b4"


def test_a_taken_name_gets_the_identitys_hash_and_never_someone_elses_account():
    launch = make_launch()
    digest = identity_digest(launch)
    accounts = Accounts("sam")
    assert choose_username("sam", launch, accounts) == f"sam-{digest[:8]}"
    accounts = Accounts("sam", f"sam-{digest[:8]}", f"sam-{digest[:16]}")
    assert choose_username("sam", launch, accounts) == f"lti-{digest[:32]}"
    assert accounts.asked == ["sam", f"sam-{digest[:8]}", f"sam-{digest[:16]}", f"lti-{digest[:32]}"]


def test_no_free_name_is_a_refusal_with_a_reason():
    launch = make_launch()
    digest = identity_digest(launch)
    accounts = Accounts("sam", f"sam-{digest[:8]}", f"sam-{digest[:16]}", f"lti-{digest[:32]}")
    with pytest.raises(InvalidRequest) as refusal:
        choose_username("sam", launch, accounts)
    assert refusal.value.reason == "username_unavailable"


def test_the_same_identity_tries_the_same_names_and_another_identity_others():
    first, other = make_launch(user_id="2"), make_launch(user_id="3")
    assert choose_username("sam", first, Accounts("sam")) == choose_username("sam", first, Accounts("sam"))
    assert choose_username("sam", first, Accounts("sam")) != choose_username("sam", other, Accounts("sam"))


@pytest.mark.parametrize(
    ("claimed", "safe"),
    [
        ("sam@example.com", "sam@example.com"),
        ("Sam Student", "Sam-Student"),
        ("../../etc/passwd", "..-..-etc-passwd"),
        ("a?b#c%d\\e", "a-b-c-d-e"),
        ("\x00ctl\x1f", "ctl"),
        ("é.ñ", "é.ñ"),
    ],
)
def test_claimed_names_are_made_safe_for_urls_and_paths(claimed, safe):
    assert safe_username(claimed) == safe


def test_a_name_plan_of_a_linked_identity_is_its_link(linker, store):
    launch = make_launch()
    linker.link(launch, "sam_linked")
    assert linker.plan_name(launch, claimed="anything") == NamePlan(linked="sam_linked")


def test_a_name_plan_names_the_variants_other_identities_hold(linker, store):
    launch, other = make_launch(user_id="2"), make_launch(user_id="3")
    digest = identity_digest(launch)
    linker.link(other, "sam")
    linker.link(make_launch(user_id="4"), f"sam-{digest[:8]}")
    plan = linker.plan_name(launch, claimed="sam")
    assert plan == NamePlan(candidate="sam", claimed=True, taken=frozenset({"sam", f"sam-{digest[:8]}"}))
    # The host's accounts are asked only about the names no identity holds.
    accounts = Accounts()
    assert choose_username(plan.candidate, launch, accounts, plan.taken) == f"sam-{digest[:16]}"
    assert accounts.asked == [f"sam-{digest[:16]}"]


def test_a_name_plan_without_a_claim_suggests_the_stable_name(linker):
    launch = make_launch()
    assert linker.plan_name(launch) == NamePlan(candidate=suggested_username(launch))
