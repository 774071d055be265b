"""Account linking: which local user a verified launch signs in as.

Links are permanent: once (platform, platform user id) points at a local user, every later launch
lands there (until the user or an admin removes the link). Provisioning modes follow Moodle's
"Publish as LTI tool" and are set separately for instructors and learners (``ProvisioningModes``):

* New accounts only (automatic): the first launch creates a local account and links it.
* Existing and new accounts (prompt): the first launch asks "create a new account" or "sign in to an
  existing account and link it".
* Existing accounts only (prompt): the person must sign in to an existing account.

``decide_link`` is the decision, a pure function of (mode, link, signed-in local user, launch); the
prompt is the state machine of ``lti_core.prompt``. An identity an LTI 1.1 consumer knew keeps its
local user when the platform moves to LTI 1.3 (``lti_core.lti13.migration``; ``find_link``).
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
from lti_core.lti13.migration import mapped_lti11_identities, verified_lti11_identity
from lti_core.store import ConsumerStore, UserLinkStore
from lti_core.types import Launch, Role, UserLink

# Characters that would break a URL or a home directory built from a username; everything else a
# platform sends in a claimed name is kept, so accounts made earlier from the same claim keep their names.
_UNSAFE_IN_USERNAME = re.compile(r"[\s/\\?#%\x00-\x1f]+")


class ProvisioningMode(Enum):
    """How a platform identity without a link gets a local user (Moodle's names in ``label``)."""

    NEW_ACCOUNTS_ONLY = "new_only"
    EXISTING_AND_NEW_PROMPT = "existing_and_new_prompt"
    EXISTING_ONLY_PROMPT = "existing_only_prompt"

    @property
    def label(self) -> str:
        return _MODE_LABELS[self]

    @property
    def may_create(self) -> bool:
        """Whether a first launch may create a new local account."""
        return self is not ProvisioningMode.EXISTING_ONLY_PROMPT


_MODE_LABELS = {
    ProvisioningMode.NEW_ACCOUNTS_ONLY: N_("New accounts only (automatic)"),
    ProvisioningMode.EXISTING_AND_NEW_PROMPT: N_("Existing and new accounts (prompt)"),
    ProvisioningMode.EXISTING_ONLY_PROMPT: N_("Existing accounts only (prompt)"),
}


@dataclass(frozen=True)
class ProvisioningModes:
    """The mode for each local role. Moodle's defaults: instructors are asked, learners get accounts."""

    instructor: ProvisioningMode = ProvisioningMode.EXISTING_AND_NEW_PROMPT
    learner: ProvisioningMode = ProvisioningMode.NEW_ACCOUNTS_ONLY

    def for_role(self, role: Role) -> ProvisioningMode:
        return self.instructor if role is Role.STAFF else self.learner


#: Every role gets new accounts: what the hosts did before the prompt modes (and the hub's default:
#: a hub has no other sign-in unless its admin configures one).
AUTOMATIC = ProvisioningModes(ProvisioningMode.NEW_ACCOUNTS_ONLY, ProvisioningMode.NEW_ACCOUNTS_ONLY)


class LinkOutcome(Enum):
    LINKED = "linked"  # a permanent link exists: sign in as that user
    CREATE = "create"  # make a new local account, then link it
    PROMPT = "prompt"  # ask the person to sign in to an existing account (or create one) first
    REFUSE = "refuse"  # no way to a local user here (see ``LinkDecision.reason``)


@dataclass(frozen=True)
class LinkDecision:
    """What to do with a launch. ``local_user_id``: the linked user (LINKED), or the signed-in user
    the prompt may offer to link (PROMPT). ``new_link``: LINKED through an LTI 1.1 identity, so the
    launch's own identity is to be linked too. ``may_create``: the prompt offers a new account."""

    outcome: LinkOutcome
    local_user_id: str = ""
    suggested_username: str = ""
    new_link: bool = False
    may_create: bool = False
    reason: str = ""


def decide_link(
    mode: ProvisioningMode,
    link: UserLink | None,
    signed_in: str,
    launch: Launch,
    *,
    host_can_sign_in: bool = True,
    migrated: bool = False,
) -> LinkDecision:
    """The linking decision: ``link`` is the identity's link (``migrated``: found through its LTI
    1.1 identity), ``signed_in`` the local user already signed in to the host in this browser ("" if
    none), ``host_can_sign_in`` whether the host has a sign-in of its own to link an existing account.

    A link wins whoever is signed in: links are permanent, and a launch never signs in as someone
    the identity is not linked to. Without a link, the mode decides.
    """
    if link is not None:
        return LinkDecision(LinkOutcome.LINKED, local_user_id=link.local_user_id, new_link=migrated)
    name = suggested_username(launch)
    if mode is ProvisioningMode.NEW_ACCOUNTS_ONLY:
        return LinkDecision(LinkOutcome.CREATE, suggested_username=name)
    if not host_can_sign_in and not signed_in:
        if mode.may_create:  # nothing to link to here: a new account is the only way in
            return LinkDecision(LinkOutcome.CREATE, suggested_username=name)
        return LinkDecision(LinkOutcome.REFUSE, reason="no_local_sign_in")
    return LinkDecision(
        LinkOutcome.PROMPT, local_user_id=signed_in, suggested_username=name, may_create=mode.may_create
    )


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


class LinkingStore(UserLinkStore, ConsumerStore, Protocol):
    """What linking reads: the links, and the LTI 1.1 consumers (for migrated identities)."""


def find_link(store: LinkingStore, launch: Launch) -> tuple[UserLink | None, bool]:
    """The identity's link and whether it was found through its LTI 1.1 identity: the launch's own
    link first; for an LTI 1.3 launch without one, the link of the 1.1 identity its verified
    migration claim names, else of the 1.1 identities an admin mapped its issuer to."""
    link = store.get_user_link(launch.platform, launch.platform_user_id)
    if link is not None or launch.lti_version.startswith("1.1"):
        return link, False
    verified = verified_lti11_identity(launch, store)
    for identity in [verified] if verified is not None else mapped_lti11_identities(launch, store):
        old = store.get_user_link(identity.consumer_key, identity.user_id)
        if old is not None:
            return UserLink(launch.platform, launch.platform_user_id, old.local_user_id), True
    return None, False


class AccountLinker:
    """Decides, per launch, from the stored links and the provisioning mode for the launch's role."""

    def __init__(self, store: LinkingStore, modes: ProvisioningModes = AUTOMATIC) -> None:
        self._store = store
        self.modes = modes

    def decide(self, launch: Launch, signed_in: str = "", *, host_can_sign_in: bool = True) -> LinkDecision:
        link, migrated = find_link(self._store, launch)
        mode = self.modes.for_role(launch.role)
        return decide_link(mode, link, signed_in, launch, host_can_sign_in=host_can_sign_in, migrated=migrated)

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
