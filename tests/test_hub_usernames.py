"""Hub usernames: stable per platform identity, never shared between identities, never an admin's.

Plain data: the authenticator's naming against an in-memory SQLAlchemy store and a stand-in for the
hub's user table (the handler's ``find_user``), which is all the naming reads.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import pytest

from jupyter_lti.lti11 import LTI11Authenticator
from jupyter_lti.lti13 import LTI13Authenticator
from lti_core.types import Launch, Role

MOODLE, CANVAS = "https://moodle.example", "https://canvas.example"


@dataclass
class HubUser:
    name: str
    admin: bool = False


@dataclass
class Handler:
    """What the authenticator reads of a hub request handler when it names a user."""

    users: dict[str, HubUser] = field(default_factory=dict)
    lti_launch: Any = None

    def find_user(self, name: str) -> HubUser | None:
        return self.users.get(name)


def launch(platform: str = MOODLE, user_id: str = "2", role: Role = Role.LEARNER, **raw: Any) -> Launch:
    return Launch(
        lti_version="1.3.0",
        platform=platform,
        platform_user_id=user_id,
        roles=(),
        role=role,
        resource_link_id="1",
        given_name="Sam",
        raw={"sub": user_id, **raw},
    )


@pytest.fixture
def authenticator() -> LTI13Authenticator:
    return LTI13Authenticator(store_url="sqlite://")


def signed_in_as(authenticator: Any, handler: Any, launch: Any) -> str:
    """The name a committed launch signs in as: chosen (nothing written), then linked."""
    plan = authenticator.name_plan(launch)
    model = {"name": authenticator.username_from(handler, launch, plan)}
    authenticator.commit_and_link(launch, model, plan, lambda: None)
    return str(model["name"])


def test_choosing_a_name_writes_nothing(authenticator):
    handler = Handler()
    first = launch(email="sam@example.com")
    name = authenticator.username_for(handler, first)
    assert authenticator.store.get_user_link(first.platform, first.platform_user_id) is None
    assert signed_in_as(authenticator, handler, first) == name
    assert authenticator.store.get_user_link(first.platform, first.platform_user_id).local_user_id == name


def test_default_name_is_readable_stable_and_differs_across_platforms(authenticator):
    handler = Handler()
    first = signed_in_as(authenticator, handler, launch())
    assert first.startswith("sam_") and first == first.lower()
    assert signed_in_as(authenticator, handler, launch()) == first
    assert signed_in_as(authenticator, handler, launch(CANVAS)) != first
    assert signed_in_as(authenticator, handler, launch(user_id="3")) != first


def test_a_link_is_permanent_even_if_the_claim_changes_later(authenticator):
    handler = Handler()
    authenticator.username_key = "email"
    name = signed_in_as(authenticator, handler, launch(email="sam@example.com"))
    assert name == "sam@example.com"
    assert signed_in_as(authenticator, handler, launch(email="samuel@example.com")) == name


def test_a_claimed_name_linked_to_someone_else_is_not_shared(authenticator):
    handler = Handler()
    authenticator.username_key = "email"
    sam = signed_in_as(authenticator, handler, launch(email="sam@example.com"))
    # Another platform's user with the same email (or a platform lying about it) gets another user.
    other = signed_in_as(authenticator, handler, launch(CANVAS, email="sam@example.com"))
    assert other != sam and other.startswith("sam@example.com-")
    assert signed_in_as(authenticator, handler, launch(CANVAS, email="sam@example.com")) == other


def test_an_existing_hub_user_from_ltiauthenticator_is_taken_over_but_never_an_admin(authenticator):
    handler = Handler({"sam@example.com": HubUser("sam@example.com"), "root@example.com": HubUser("root", admin=True)})
    authenticator.username_key = "email"
    assert signed_in_as(authenticator, handler, launch(email="sam@example.com")) == "sam@example.com"
    name = signed_in_as(authenticator, handler, launch(user_id="9", email="root@example.com"))
    assert name != "root@example.com" and name.startswith("root@example.com-")


def test_without_username_key_an_existing_hub_user_is_never_taken_over(authenticator):
    handler = Handler()
    name = signed_in_as(authenticator, handler, launch(user_id="5"))
    fresh = LTI13Authenticator(store_url="sqlite://")  # a new store: as if the link were lost
    assert fresh.username_for(Handler({name: HubUser(name)}), launch(user_id="5")) != name


def test_claims_are_made_safe_for_urls_and_lowercased(authenticator):
    authenticator.username_key = "custom_uname"
    odd = Launch(**{**launch().__dict__, "custom": {"uname": "Ada Lovelace/../x?y#z"}})
    assert signed_in_as(authenticator, Handler(), odd) == "ada-lovelace-..-x-y-z"


def test_missing_claim_falls_back_to_the_safe_default(authenticator):
    authenticator.username_key = "email"
    assert signed_in_as(authenticator, Handler(), launch()).startswith("sam_")


def test_lti11_username_key_reads_the_launch_parameters():
    authenticator = LTI11Authenticator(store_url="sqlite://", username_key="ext_user_username")
    lti11 = Launch(**{**launch("moodle-key").__dict__, "lti_version": "1.1", "raw": {"ext_user_username": "Sam"}})
    assert signed_in_as(authenticator, Handler(), lti11) == "sam"


def test_learners_are_never_admins_and_instructors_only_when_configured(authenticator):
    authenticator.instructor_group = "instructors"
    learner = authenticator.auth_model(Handler(), launch(user_id="20"))
    assert learner["admin"] is False and learner["groups"] == []
    instructor = authenticator.auth_model(Handler(), launch(user_id="21", role=Role.STAFF))
    assert "admin" not in instructor and instructor["groups"] == ["instructors"]
    authenticator.admin_instructors = True
    assert authenticator.auth_model(Handler(), launch(user_id="21", role=Role.STAFF))["admin"] is True
