"""Account linking: which local user a launch signs in as, and the usernames offered for new accounts."""

from __future__ import annotations

import dataclasses
import threading

import pytest

from lti_core.linking import AccountLinker, LinkDecision, LinkOutcome, ProvisioningMode, suggested_username
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
    linker = AccountLinker(store, instructor_mode=ProvisioningMode.EXISTING_ONLY_PROMPT)
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
    linker = AccountLinker(store, instructor_mode=instructor_mode, learner_mode=learner_mode)
    decision = linker.decide(make_launch(role=role))
    assert decision.outcome is outcome
    assert decision.suggested_username == suggested_username(make_launch())
