"""Account linking: which local user a verified launch signs in as.

Links are permanent: once (platform, platform user id) points at a local user, every later launch
lands there. Provisioning modes follow Moodle's "Publish as LTI tool" and are set separately for
instructors and learners; this release provisions new accounts, and the decision type already
carries the prompt outcome that the prompt modes will use.
"""

from __future__ import annotations

import hashlib
import re
import unicodedata
from collections.abc import Collection
from dataclasses import dataclass
from enum import Enum
from typing import Protocol

from lti_core.errors import InvalidRequest
from lti_core.i18n import N_
from lti_core.store import UserLinkStore
from lti_core.types import Launch, Role, UserLink

# Characters that would break a URL or a home directory built from a username; everything else a
# platform sends in a claimed name is kept, so accounts made earlier from the same claim keep their names.
_UNSAFE_IN_USERNAME = re.compile(r"[\s/\\?#%\x00-\x1f]+")


class ProvisioningMode(Enum):
    NEW_ACCOUNTS_ONLY = "new_only"
    EXISTING_AND_NEW_PROMPT = "existing_and_new_prompt"
    EXISTING_ONLY_PROMPT = "existing_only_prompt"


class LinkOutcome(Enum):
    LINKED = "linked"  # a permanent link exists: sign in as that user
    CREATE = "create"  # make a new local account, then link it
    PROMPT = "prompt"  # ask the person to sign in to an existing account (or create one) first


@dataclass(frozen=True)
class LinkDecision:
    outcome: LinkOutcome
    local_user_id: str = ""
    suggested_username: str = ""


def identity_digest(launch: Launch) -> str:
    """A hex digest of (platform, platform user id): the same person, the same digest, on every host."""
    return hashlib.sha256(f"{launch.platform}\x00{launch.platform_user_id}".encode()).hexdigest()


def suggested_username(launch: Launch, max_length: int = 30) -> str:
    """A readable, stable and collision-safe username: name slug + hash of (platform, user id).

    The hash part makes two platforms' user "2" different people; the slug helps staff recognise them.
    """
    digest = identity_digest(launch)[:10]
    source = launch.given_name or launch.name or "lti"
    ascii_name = unicodedata.normalize("NFKD", source).encode("ascii", "ignore").decode("ascii")
    slug = re.sub(r"[^a-z0-9]+", "", ascii_name.lower())[: max_length - len(digest) - 1] or "lti"
    return f"{slug}_{digest}"


def safe_username(claimed: str, max_length: int = 255) -> str:
    """A claimed name (an email, a platform username) made safe for URLs and paths: runs of unsafe
    characters become "-"."""
    return _UNSAFE_IN_USERNAME.sub("-", claimed).strip("-")[:max_length]


class LocalAccounts(Protocol):
    """What a host says about its own accounts when a new identity needs a username."""

    def username_available(self, name: str) -> bool:
        """True when ``name`` may go to the identity being linked: no account has it, or the one that
        has it may be taken over (the host decides: the hub adopts an unlinked non-admin user that
        jupyterhub-ltiauthenticator made; Open edX never adopts)."""
        ...


def username_candidates(candidate: str, launch: Launch) -> tuple[str, ...]:
    """The names ``choose_username`` tries, in order (a host may look them up in bulk beforehand)."""
    digest = identity_digest(launch)
    return (candidate, f"{candidate}-{digest[:8]}", f"{candidate}-{digest[:16]}", f"lti-{digest[:32]}")


def choose_username(candidate: str, launch: Launch, accounts: LocalAccounts, taken: Collection[str] = ()) -> str:
    """``candidate``, or the first free of ``candidate-<8 hex>``, ``candidate-<16 hex>``,
    ``lti-<32 hex>`` (hex of the identity's digest): a name someone else holds is never shared, and
    the same identity always tries the same names. ``taken``: names known to be linked already."""
    for name in username_candidates(candidate, launch):
        if name not in taken and accounts.username_available(name):
            return name
    raise InvalidRequest("username_unavailable", N_("No username could be chosen for this user."))


@dataclass(frozen=True)
class NamePlan:
    """What the links say about the username of a launch's identity, read before the host's own
    accounts are asked (a host whose accounts live elsewhere, or on another thread, asks them after).

    ``linked``: the local user the identity is linked to, if it is. Otherwise the ``candidate`` name,
    whether it was ``claimed`` (from a launch value the admin chose) rather than made up, and which of
    ``username_candidates`` other identities are linked to (``taken``).
    """

    linked: str = ""
    candidate: str = ""
    claimed: bool = False
    taken: frozenset[str] = frozenset()


class AccountLinker:
    """Decides, per launch, from the stored links and the provisioning mode for the launch's role."""

    def __init__(
        self,
        store: UserLinkStore,
        *,
        instructor_mode: ProvisioningMode = ProvisioningMode.NEW_ACCOUNTS_ONLY,
        learner_mode: ProvisioningMode = ProvisioningMode.NEW_ACCOUNTS_ONLY,
    ) -> None:
        self._store = store
        self._modes = {Role.STAFF: instructor_mode, Role.LEARNER: learner_mode}

    def decide(self, launch: Launch) -> LinkDecision:
        link = self._store.get_user_link(launch.platform, launch.platform_user_id)
        if link is not None:
            return LinkDecision(LinkOutcome.LINKED, local_user_id=link.local_user_id)
        mode = self._modes[launch.role]
        if mode is ProvisioningMode.NEW_ACCOUNTS_ONLY:
            return LinkDecision(LinkOutcome.CREATE, suggested_username=suggested_username(launch))
        return LinkDecision(LinkOutcome.PROMPT, suggested_username=suggested_username(launch))

    def plan_name(self, launch: Launch, claimed: str = "") -> NamePlan:
        """The identity's link, or the names a new one may get: ``claimed`` (already made safe by the
        host's rules) or the suggested name, and which of their variants are linked to others."""
        decision = self.decide(launch)
        if decision.outcome is LinkOutcome.LINKED:
            return NamePlan(linked=decision.local_user_id)
        candidate = claimed or decision.suggested_username
        # The few names it may get, looked up at once (no round trip per name later).
        taken = frozenset(name for name in username_candidates(candidate, launch) if self._store.find_user_links(name))
        return NamePlan(candidate=candidate, claimed=bool(claimed), taken=taken)

    def link(self, launch: Launch, local_user_id: str) -> UserLink:
        """Record the permanent link. If a racing launch linked first, its link wins and is returned:
        the caller signs in as ``returned.local_user_id``, whatever it had just created."""
        return self._store.save_user_link(UserLink(launch.platform, launch.platform_user_id, local_user_id))
