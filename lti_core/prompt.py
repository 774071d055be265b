"""The linking prompt: a first launch that asks how the person gets a local account.

A launch whose decision is ``LinkOutcome.PROMPT`` (``lti_core.linking``) is kept server-side as a
``PendingLaunch`` while the person chooses, signs in through the host's own sign-in and confirms.
It is bound to the browser that made the launch, usable once, and expires.

The states and events (``TRANSITIONS``; anything else is refused with ``PromptRefused``)::

    CHOOSING   --new account (mode allows it)--> done: create and link
    CHOOSING   --existing account-->             SIGNING_IN (the host's sign-in, then back)
    CHOOSING   --signed in as U-->               CONFIRMING U (already signed in to the host)
    SIGNING_IN --signed in as U-->               CONFIRMING U
    SIGNING_IN --new account (mode allows it)--> done: create and link
    CONFIRMING --confirm U-->                    done: link U (U must still be who is signed in)
    CONFIRMING --existing account-->             SIGNING_IN (another account)
    CONFIRMING --new account (mode allows it)--> done: create and link

Binding to the browser, as launches are (``lti_core.lti13.binding``): the launch's answer sets a
cookie whose digest the pending launch keeps (``binding``). In a platform's frame where the browser
blocks third-party cookies the cookie never comes back; the prompt then continues in a new window,
with a one-time ``handover`` secret the launch's page carried, exchanged there for a new binding
(first-party, so the host's sign-in works too). Every POST also carries ``form_token``, which only
the pages of this pending launch show: a cross-site form cannot take a step for the person.

Pure: no I/O but the ``PendingLaunchStore`` a host implements; times are passed in.
"""

from __future__ import annotations

import enum
import hashlib
import hmac
import secrets
from dataclasses import dataclass, replace
from typing import Protocol

from lti_core.errors import Forbidden, LtiError, NotFound
from lti_core.i18n import N_
from lti_core.linking import LinkDecision
from lti_core.store import UserLinkStore
from lti_core.types import Launch

#: Seconds a person has to choose, sign in and confirm (Moodle's login takes a minute or two).
PROMPT_LIFETIME = 1800.0


class PromptState(enum.StrEnum):
    CHOOSING = "choosing"
    SIGNING_IN = "signing_in"
    CONFIRMING = "confirming"


class PromptAction(enum.StrEnum):
    """What a finished prompt asks the host to do."""

    CREATE = "create"  # create a new local account and link it
    LINK = "link"  # link the confirmed existing account


@dataclass(frozen=True)
class ChooseNew:
    """ "Create a new account"."""


@dataclass(frozen=True)
class ChooseExisting:
    """ "Sign in to an existing account and link it" (or another account than the one shown)."""


@dataclass(frozen=True)
class SignedIn:
    """The host's sign-in says the person is ``local_user_id``."""

    local_user_id: str


@dataclass(frozen=True)
class Confirm:
    """ "Link my account": ``local_user_id`` is who is signed in to the host as the person confirms."""

    local_user_id: str


PromptEvent = ChooseNew | ChooseExisting | SignedIn | Confirm
S = PromptState
_DONE = None
#: (state, event type) -> the next state, or None: the prompt is done (see ``PromptFlow.finish``).
TRANSITIONS: dict[tuple[PromptState, type[PromptEvent]], PromptState | None] = {
    (S.CHOOSING, ChooseNew): _DONE,
    (S.CHOOSING, ChooseExisting): S.SIGNING_IN,
    (S.CHOOSING, SignedIn): S.CONFIRMING,
    (S.SIGNING_IN, SignedIn): S.CONFIRMING,
    (S.SIGNING_IN, ChooseNew): _DONE,
    (S.CONFIRMING, Confirm): _DONE,
    (S.CONFIRMING, ChooseExisting): S.SIGNING_IN,
    (S.CONFIRMING, ChooseNew): _DONE,
}


class CookieEvidence(enum.StrEnum):
    """What a launch tells about this browser keeping the tool's cookies where the prompt shows."""

    KEPT = "kept"  # a cookie of the tool came back with the launch (LTI 1.3's state cookie, any other)
    DROPPED = "dropped"  # bound through the platform's storage, or the prompt's cookie did not come back
    UNKNOWN = "unknown"  # LTI 1.1 without any cookie of the tool: nothing says either way


def cookie_evidence(*, cookie_came_back: bool, bound_by_storage: bool = False) -> CookieEvidence:
    """What a launch says about the tool's cookies: bound through the platform's storage (LTI 1.3
    without its state cookie), dropped; any cookie of the tool back with it (LTI 1.3's state
    cookie), kept; else (LTI 1.1 carries nothing of the tool's) unknown."""
    if bound_by_storage:
        return CookieEvidence.DROPPED
    return CookieEvidence.KEPT if cookie_came_back else CookieEvidence.UNKNOWN


class PromptStart(enum.StrEnum):
    """How the prompt shows (``prompt_start``)."""

    PAGE = "page"  # its buttons: the prompt's cookie comes back here
    NEW_WINDOW = "new_window"  # only "Continue in a new window", with the one-time handover
    CHECK_COOKIE = "check_cookie"  # a redirect that sets the prompt's cookie and comes back to see


def prompt_start(cookies: CookieEvidence, *, framed: bool) -> PromptStart:
    """Buttons only where they can work: the prompt's forms post with its cookie, which a platform's
    frame may drop (a first-party window keeps it)::

        cookies   framed  start
        KEPT      any     PAGE
        DROPPED   any     NEW_WINDOW
        UNKNOWN   yes     CHECK_COOKIE (then KEPT or DROPPED: whether the cookie came back)
        UNKNOWN   no      PAGE
    """
    if cookies is CookieEvidence.KEPT or (cookies is CookieEvidence.UNKNOWN and not framed):
        return PromptStart.PAGE
    if cookies is CookieEvidence.UNKNOWN:
        return PromptStart.CHECK_COOKIE
    return PromptStart.NEW_WINDOW


class PromptRefused(LtiError):
    """A step of the prompt that is not allowed now (a replayed or forged form, a stale page)."""

    status = 409
    reason = "prompt_step_refused"
    message = N_("This step is no longer possible. Please launch the activity again from your course.")


class PromptExpired(NotFound):
    """No such pending launch: never made, used already, or expired."""

    reason = "prompt_expired"
    message = N_("This page has expired or was already used. Please launch the activity again from your course.")


class PromptNotBound(Forbidden):
    """The request does not come from the browser the launch was made in (or its form token is wrong)."""

    reason = "prompt_not_bound"
    message = N_(
        "This page belongs to a launch made in another browser window. Please launch the activity again from "
        "your course."
    )


class NoNewAccounts(Forbidden):
    """The mode allows existing accounts only; the person asked for a new one."""

    reason = "existing_accounts_only"
    message = N_(
        "This tool only links existing accounts: sign in to your account here to continue. Without an account "
        "here, please ask your teacher or the site's administrator. Nothing was created."
    )


@dataclass(frozen=True)
class PendingLaunch:
    """A launch waiting for the person's choice. ``binding``, ``handover`` and ``form_token_digest``
    are sha256 digests of secrets only the launch's browser was given (``handover``: "" once used)."""

    id: str
    launch: Launch
    content_id: str
    state: PromptState
    may_create: bool
    binding: str
    handover: str
    form_token_digest: str
    expires_at: float
    local_user_id: str = ""
    suggested_username: str = ""


@dataclass(frozen=True)
class PromptSecrets:
    """What the browser gets (never stored): the cookie value, the new-window secret, the form token."""

    cookie: str
    handover: str
    form_token: str


@dataclass(frozen=True)
class PromptOutcome:
    """A finished prompt: what the host does now, for which launch (and which account, to link)."""

    action: PromptAction
    pending: PendingLaunch

    @property
    def local_user_id(self) -> str:
        return self.pending.local_user_id if self.action is PromptAction.LINK else ""


class AccountAlreadyLinked(LtiError):
    """The account signed in already holds another identity of the same platform."""

    status = 409
    reason = "account_already_linked"
    message = N_(
        "The account you signed in to is already linked to another user of this platform. Sign in to your own "
        "account, or ask the site's administrator."
    )


class PendingLaunchStore(Protocol):
    def save_pending_launch(self, pending: PendingLaunch) -> None: ...
    def get_pending_launch(self, pending_id: str, now: float) -> PendingLaunch | None:
        """The unexpired pending launch, or None."""
        ...

    def replace_pending_launch(self, read: PendingLaunch, written: PendingLaunch) -> bool:
        """Write ``written`` if the stored one is still ``read`` (state, account, binding, handover);
        False if it changed or went in between (a replay racing the real step loses)."""
        ...

    def delete_pending_launch(self, pending_id: str) -> bool:
        """Delete it; True only for the one call that did (single use)."""
        ...


class PromptStore(PendingLaunchStore, UserLinkStore, Protocol):
    """What the prompt reads and writes: pending launches, and the links (one per platform and account)."""


def digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


def _matches(secret: str, expected_digest: str) -> bool:
    return bool(secret) and bool(expected_digest) and hmac.compare_digest(digest(secret), expected_digest)


def form_token_matches(pending: PendingLaunch, form_token: str) -> bool:
    """Whether ``form_token`` is the one this pending launch's pages carry (constant time)."""
    return _matches(form_token, pending.form_token_digest)


def transition(pending: PendingLaunch, event: PromptEvent) -> PendingLaunch | None:
    """The pending launch after ``event`` (None: done); ``PromptRefused``/``NoNewAccounts`` if not allowed."""
    key = (pending.state, type(event))
    if key not in TRANSITIONS:
        raise PromptRefused(detail=f"{type(event).__name__} in state {pending.state.value}")
    if isinstance(event, ChooseNew) and not pending.may_create:
        raise NoNewAccounts
    if isinstance(event, Confirm) and (not event.local_user_id or event.local_user_id != pending.local_user_id):
        # The page confirmed one account, and someone else is signed in now (or nobody): start over.
        raise PromptRefused(detail="the confirmed account is not the one signed in")
    target = TRANSITIONS[key]
    if target is None:
        return None
    account = event.local_user_id if isinstance(event, SignedIn) else ""
    return replace(pending, state=target, local_user_id=account)


#: The ``choice`` field of the prompt's forms, and the event each stands for.
CHOICE_NEW, CHOICE_EXISTING, CHOICE_CONFIRM = "new", "existing", "confirm"


def parse_prompt_choice(choice: str, signed_in: str) -> PromptEvent:
    """The event a prompt form's ``choice`` stands for; ``signed_in`` is who is signed in to the host
    now (the account a confirmation links: never one the form names)."""
    if choice == CHOICE_NEW:
        return ChooseNew()
    if choice == CHOICE_EXISTING:
        return ChooseExisting()
    if choice == CHOICE_CONFIRM:
        return Confirm(signed_in)
    raise PromptRefused(detail=f"unknown choice {choice[:20]!r}")


class PromptFlow:
    """The prompt over a host's ``PendingLaunchStore``: begin, bind, step, finish."""

    def __init__(self, store: PromptStore, lifetime: float = PROMPT_LIFETIME) -> None:
        self.store = store
        self.lifetime = lifetime

    def begin(
        self, launch: Launch, decision: LinkDecision, content_id: str, now: float
    ) -> tuple[PendingLaunch, PromptSecrets]:
        """Keep ``launch`` (whose decision was PROMPT) for the person's choice; the browser's secrets.
        When a local user is already signed in (``decision.local_user_id``), the prompt starts by
        offering to link that account."""
        browser = PromptSecrets(secrets.token_urlsafe(32), secrets.token_urlsafe(32), secrets.token_urlsafe(24))
        pending = PendingLaunch(
            id=secrets.token_urlsafe(24),
            launch=launch,
            content_id=content_id,
            state=S.CONFIRMING if decision.local_user_id else S.CHOOSING,
            may_create=decision.may_create,
            binding=digest(browser.cookie),
            handover=digest(browser.handover),
            form_token_digest=digest(browser.form_token),
            expires_at=now + self.lifetime,
            local_user_id=decision.local_user_id,
            suggested_username=decision.suggested_username,
        )
        self.store.save_pending_launch(pending)
        return pending, browser

    def load(self, pending_id: str, cookie: str, now: float) -> PendingLaunch:
        """The pending launch, if this browser holds its binding."""
        pending = self.store.get_pending_launch(pending_id, now)
        if pending is None:
            raise PromptExpired(detail="no such pending launch")
        if not _matches(cookie, pending.binding):
            raise PromptNotBound(detail="the browser's binding cookie is missing or wrong")
        return pending

    def holds_handover(self, pending_id: str, handover: str, now: float) -> PendingLaunch:
        """The pending launch, if ``handover`` is its unused handover secret (nothing is used up):
        the prompt's cookie check shows the new-window variant to the launch's own page only."""
        pending = self.store.get_pending_launch(pending_id, now)
        if pending is None:
            raise PromptExpired(detail="no such pending launch")
        if not _matches(handover, pending.handover):
            raise PromptNotBound(detail="the handover secret is missing, wrong or used")
        return pending

    def hand_over(self, pending_id: str, handover: str, now: float) -> tuple[PendingLaunch, str]:
        """Bind the pending launch to this browser (a new window, outside the platform's frame) with
        the one-time handover secret: (the pending launch, the new cookie value). Used once."""
        pending = self.holds_handover(pending_id, handover, now)
        cookie = secrets.token_urlsafe(32)
        rebound = replace(pending, binding=digest(cookie), handover="")
        if not self.store.replace_pending_launch(pending, rebound):
            raise PromptNotBound(detail="the handover was used meanwhile")
        return rebound, cookie

    def _check_account(self, pending: PendingLaunch, local_user_id: str) -> None:
        """One identity per platform and account: a person cannot gather several platform users
        (or someone else's) into one local account by linking."""
        platform = pending.launch.platform
        if any(link.platform == platform for link in self.store.find_user_links(local_user_id)):
            raise AccountAlreadyLinked(detail=f"local user {local_user_id[:40]!r} has a link on this platform")

    def step(
        self, pending_id: str, cookie: str, form_token: str, event: PromptEvent, now: float
    ) -> PendingLaunch | PromptOutcome:
        """Take ``event`` (a form's POST) for this browser: the pending launch's next state, or, when
        the prompt is done, the ``PromptOutcome`` (the pending launch is then gone: single use)."""
        pending = self.load(pending_id, cookie, now)
        if not form_token_matches(pending, form_token):
            raise PromptNotBound(detail="the form token is missing or wrong")
        return self._take(pending, event)

    def signed_in(self, pending_id: str, cookie: str, local_user_id: str, now: float) -> PendingLaunch:
        """Back from the host's sign-in as ``local_user_id``: the confirmation is next. No form token:
        this is the sign-in's redirect back (a GET), and it links nothing; ``Confirm`` does, by POST."""
        following = self._take(self.load(pending_id, cookie, now), SignedIn(local_user_id))
        if not isinstance(following, PendingLaunch):  # pragma: no cover - SignedIn never ends a prompt
            raise PromptRefused(detail="a sign-in ended the prompt")
        return following

    def _take(self, pending: PendingLaunch, event: PromptEvent) -> PendingLaunch | PromptOutcome:
        if isinstance(event, SignedIn | Confirm):
            self._check_account(pending, event.local_user_id)
        following = transition(pending, event)
        if following is None:
            if not self.store.delete_pending_launch(pending.id):  # a replay raced us and won
                raise PromptExpired(detail="the pending launch was used meanwhile")
            action = PromptAction.CREATE if isinstance(event, ChooseNew) else PromptAction.LINK
            return PromptOutcome(action, pending)
        if not self.store.replace_pending_launch(pending, following):
            raise PromptRefused(detail="the pending launch changed meanwhile")
        return following


__all__ = [
    "PROMPT_LIFETIME",
    "AccountAlreadyLinked",
    "PromptStore",
    "CHOICE_CONFIRM",
    "CookieEvidence",
    "cookie_evidence",
    "PromptStart",
    "prompt_start",
    "CHOICE_EXISTING",
    "CHOICE_NEW",
    "form_token_matches",
    "parse_prompt_choice",
    "ChooseExisting",
    "ChooseNew",
    "Confirm",
    "NoNewAccounts",
    "PendingLaunch",
    "PendingLaunchStore",
    "PromptAction",
    "PromptEvent",
    "PromptExpired",
    "PromptFlow",
    "PromptNotBound",
    "PromptOutcome",
    "PromptRefused",
    "PromptSecrets",
    "PromptState",
    "SignedIn",
    "transition",
]
