"""The durable grade outbox: scores waiting to be sent to a platform, as plain data and a state table.

A score a learner earns is first written here (``OutboxStore.enqueue_score``), then sent by a
worker that claims due entries (``claim_due``), and the platform's answer recorded (``complete`` or
``fail``). One row per (platform, platform user, target): ``target`` names where the score goes, an
AGS line item URL (``ags_target``) or an LTI 1.1 outcome service URL and result sourcedid
(``lti11_target``).

The life of an entry (``TRANSITIONS``; anything else is refused with an ``OutboxError``)::

    PENDING --claim--> IN_FLIGHT --delivered--> DELIVERED
                       IN_FLIGHT --retryable failure--> RETRYING (next attempt after a backoff)
                       IN_FLIGHT --permanent failure--> FAILED (the platform's last answer kept)
    RETRYING --claim, once due--> IN_FLIGHT
    IN_FLIGHT --claim, once its lease expired (worker killed mid-batch)--> IN_FLIGHT
    RETRYING, FAILED --retry now (an admin)--> PENDING
    any state --a newer score--> PENDING

The latest score wins: a score older (by ``score_timestamp``) than the entry's is ignored; a newer
one replaces it and bumps ``version``, also while the entry is in flight. The delivery of the older
version then completes without marking the entry delivered (``Delivered.version`` is stale): it
stays PENDING for the newer score. Sending a score twice is harmless: platforms keep the latest by
timestamp.

LTI 1.1 replaceResult carries no timestamp: the platform keeps whatever it processes last. A send the
worker gave up on (no answer: a timeout, a dropped connection, a killed worker) may still be
processed after a newer score's send, and overwrite it. So for a service without timestamps
(``ServiceKind.ordered``) a newer score is never sent while an older send may still land: a score
enqueued while the older one is in flight waits for that send's lease; after a send that got no
answer, the next send of the key waits ``Backoff.unanswered`` (longer than the time a platform
spends on a request: PHP stops a request after 30 s by default).

Pure: no I/O, times are passed in (epoch seconds), randomness too (``rng``).
"""

from __future__ import annotations

import enum
import hashlib
import json
import re
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Protocol

from lti_core.errors import LtiError


class OutboxState(enum.StrEnum):
    PENDING = "pending"
    IN_FLIGHT = "in_flight"
    DELIVERED = "delivered"
    RETRYING = "retrying"
    FAILED = "failed"


class ServiceKind(enum.StrEnum):
    """How the score is sent: LTI Assignment and Grade Services, or LTI 1.1 Basic Outcomes."""

    AGS = "ags"
    #: AGS to the line item of the link in the platform's container, found or created by the tool.
    AGS_LINEITEMS = "ags_lineitems"
    LTI11_OUTCOME = "lti11_outcome"

    @property
    def ordered(self) -> bool:
        """Whether the platform keeps the score it processes last, not the latest by timestamp:
        sends of one key must then never overlap (LTI 1.1 replaceResult has no timestamp)."""
        return self is ServiceKind.LTI11_OUTCOME


class OutboxError(LtiError):
    """A transition the state table does not allow (``reason`` says which guard refused it)."""

    status = 409
    reason = "outbox_illegal_transition"


#: Separates the outcome service URL from the sourcedid in an LTI 1.1 target: a URL never holds a
#: raw line feed (and PostgreSQL text refuses NUL).
_LTI11_SEPARATOR = "\n"


def ags_target(lineitem_url: str, client_id: str = "") -> str:
    """The target of an AGS score: its line item's URL, and the client_id of the registration whose
    token posts it (an issuer may register the tool more than once), after the same separator."""
    return f"{lineitem_url}{_LTI11_SEPARATOR}{client_id}" if client_id else lineitem_url


def split_ags_target(target: str) -> tuple[str, str]:
    """``ags_target``'s (line item URL, client_id; "" when it names none)."""
    url, _, client_id = target.partition(_LTI11_SEPARATOR)
    return url, client_id


@dataclass(frozen=True)
class LineItemWanted:
    """The line item an ``AGS_LINEITEMS`` score goes to: the one of ``resource_link_id`` (and
    ``resource_id``, the tool's content) in the container, made with ``label`` when there is none."""

    lineitems_url: str
    client_id: str
    resource_link_id: str
    resource_id: str = ""
    label: str = ""

    @property
    def target(self) -> str:
        fields = (self.lineitems_url, self.client_id, self.resource_link_id, self.resource_id, self.label)
        return _LTI11_SEPARATOR.join(fields)

    @classmethod
    def from_target(cls, target: str) -> LineItemWanted:
        parts = target.split(_LTI11_SEPARATOR)
        if len(parts) != 5:
            raise OutboxError("outbox_target_malformed", detail="not a line item container target")
        return cls(*parts)


def lti11_target(outcome_service_url: str, sourcedid: str) -> str:
    """The target of an LTI 1.1 outcome: the service URL and the result's sourcedid."""
    return f"{outcome_service_url}{_LTI11_SEPARATOR}{sourcedid}"


def split_lti11_target(target: str) -> tuple[str, str]:
    """``lti11_target``'s (outcome service URL, sourcedid)."""
    url, _, sourcedid = target.partition(_LTI11_SEPARATOR)
    return url, sourcedid


@dataclass(frozen=True)
class OutboxKey:
    """What an entry is found by: one row per learner and target."""

    platform: str
    platform_user_id: str
    target: str

    @cached_property  # read at every store call of a delivery: hashed once per key
    def digest(self) -> str:
        """sha256 of the key: what stores index (a target URL may pass MySQL's index limit)."""
        encoded = json.dumps([self.platform, self.platform_user_id, self.target], ensure_ascii=False)
        return hashlib.sha256(encoded.encode()).hexdigest()


@dataclass(frozen=True)
class Score:
    """A score as the platform is sent it. LTI 1.1 outcomes carry ``given`` as a fraction of 1."""

    given: float | None
    maximum: float | None
    activity_progress: str = "Completed"
    grading_progress: str = "FullyGraded"
    comment: str = ""


@dataclass(frozen=True)
class OutboxEntry:
    """One row of the outbox.

    ``version`` counts the scores merged into the row (a delivery names the version it sent);
    ``attempts`` the deliveries started for this version (claims). ``next_attempt_at`` is when the
    entry may next be claimed: its enqueueing for PENDING, the end of the backoff for RETRYING, the
    end of the lease (``claim_expires_at``) for IN_FLIGHT. ``last_status``/``last_error`` are the
    platform's last answer (HTTP status, 0 if none; an excerpt of the body, ``excerpt``).
    """

    key: OutboxKey
    kind: ServiceKind
    score: Score
    score_timestamp: float
    state: OutboxState = OutboxState.PENDING
    version: int = 1
    attempts: int = 0
    next_attempt_at: float = 0.0
    last_status: int = 0
    last_error: str = ""
    claimed_by: str = ""
    claim_expires_at: float = 0.0
    delivered_at: float = 0.0
    updated_at: float = 0.0

    @classmethod
    def new(cls, key: OutboxKey, kind: ServiceKind, score: Score, score_timestamp: float, now: float) -> OutboxEntry:
        return cls(key, kind, score, score_timestamp, next_attempt_at=now, updated_at=now)


# Events -------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Enqueue:
    """A score for the entry's key: merged if not older than the entry's."""

    kind: ServiceKind
    score: Score
    score_timestamp: float


@dataclass(frozen=True)
class Claim:
    """A worker takes the entry for ``lease`` seconds."""

    worker: str
    lease: float


@dataclass(frozen=True)
class Delivered:
    """The platform accepted ``version`` of the score."""

    version: int
    status: int = 200


@dataclass(frozen=True)
class RetryableFailure:
    """Sending ``version`` failed, for now (a timeout, a 5xx, a 429): try again after a backoff."""

    version: int
    status: int = 0
    error: str = ""


@dataclass(frozen=True)
class PermanentFailure:
    """The platform refused ``version`` for good (a 4xx): kept FAILED until an admin retries it."""

    version: int
    status: int = 0
    error: str = ""


@dataclass(frozen=True)
class RetryNow:
    """An admin's "retry now": a failed or backing-off entry becomes due at once."""


Event = Enqueue | Claim | Delivered | RetryableFailure | PermanentFailure | RetryNow

S = OutboxState
#: The state table: (state, event type) -> the next state. Guards (a due time, a lease, a version)
#: are checked by ``transition`` on top of it.
TRANSITIONS: dict[tuple[OutboxState, type[Event]], OutboxState] = {
    (S.PENDING, Enqueue): S.PENDING,
    (S.PENDING, Claim): S.IN_FLIGHT,
    (S.IN_FLIGHT, Enqueue): S.PENDING,
    (S.IN_FLIGHT, Claim): S.IN_FLIGHT,  # only once the lease expired
    (S.IN_FLIGHT, Delivered): S.DELIVERED,
    (S.IN_FLIGHT, RetryableFailure): S.RETRYING,
    (S.IN_FLIGHT, PermanentFailure): S.FAILED,
    (S.RETRYING, Enqueue): S.PENDING,
    (S.RETRYING, Claim): S.IN_FLIGHT,  # only once due
    (S.RETRYING, RetryNow): S.PENDING,
    (S.FAILED, Enqueue): S.PENDING,
    (S.FAILED, RetryNow): S.PENDING,
    (S.DELIVERED, Enqueue): S.PENDING,
}


class Rng(Protocol):
    """What backoff draws from (``random.Random`` is one)."""

    def random(self) -> float: ...


@dataclass(frozen=True)
class Backoff:
    """Exponential backoff with full jitter: the n-th retry waits uniformly in [0, min(cap, base * 2**(n-1)))."""

    base: float = 30.0
    cap: float = 3600.0
    #: Seconds after a send that got no answer before an ordered service's key is sent again.
    unanswered: float = 90.0

    def ceiling(self, attempts: int) -> float:
        return min(self.cap, self.base * 2.0 ** min(max(attempts - 1, 0), 64))

    def delay(self, attempts: int, rng: Rng) -> float:
        return rng.random() * self.ceiling(attempts)


BACKOFF = Backoff()

#: Characters of the platform's answer kept in ``last_error``.
EXCERPT_LENGTH = 500
_SECRETS = re.compile(
    r"(?i)\b(bearer|basic)\s+[\w.~+/=-]+"  # an Authorization header's credentials
    r"|eyJ[\w-]*\.[\w-]+\.[\w-]*"  # a JWT (an access token, a client assertion)
    r"|(access_token|client_assertion|refresh_token)[\"']?\s*[:=]\s*[\"']?[\w.~+/=-]+"
)


def excerpt(text: str, limit: int = EXCERPT_LENGTH) -> str:
    """What is kept of a platform's answer: tokens and credentials redacted, at most ``limit`` characters."""
    redacted = _SECRETS.sub("[redacted]", text)
    return redacted if len(redacted) <= limit else redacted[: limit - 1] + "…"


def _refuse(entry: OutboxEntry, event: Event, reason: str) -> OutboxError:
    detail = f"{type(event).__name__} refused in state {entry.state.value} (version {entry.version}): {reason}"
    return OutboxError(f"outbox_{reason}", detail=detail)


def transition(entry: OutboxEntry, event: Event, now: float, rng: Rng, backoff: Backoff = BACKOFF) -> OutboxEntry:
    """The entry after ``event`` at ``now``; ``OutboxError`` if the state table or a guard refuses it.

    Reasons: ``illegal_transition`` (not in ``TRANSITIONS``), ``stale_score`` (an older score),
    ``not_due`` (claimed before its backoff ended), ``lease_held`` (claimed while another worker's
    lease runs), ``stale_version`` (the outcome of a delivery of a score since replaced).
    """
    target = TRANSITIONS.get((entry.state, type(event)))
    if target is None:
        raise _refuse(entry, event, "illegal_transition")
    if isinstance(event, Enqueue):
        if event.score_timestamp < entry.score_timestamp:
            raise _refuse(entry, event, "stale_score")
        merged = replace(
            entry,
            kind=event.kind,
            score=event.score,
            score_timestamp=event.score_timestamp,
            state=target,
            version=entry.version + 1,
            attempts=0,
            next_attempt_at=now,
            claimed_by="",
            claim_expires_at=0.0,
            updated_at=now,
        )
        return _after_older_send(entry, merged, now, backoff)
    if isinstance(event, Claim):
        if entry.state is S.RETRYING and entry.next_attempt_at > now:
            raise _refuse(entry, event, "not_due")
        if entry.state is S.IN_FLIGHT and entry.claim_expires_at > now:
            raise _refuse(entry, event, "lease_held")
        expires = now + event.lease
        return replace(
            entry,
            state=target,
            attempts=entry.attempts + 1,
            claimed_by=event.worker,
            claim_expires_at=expires,
            next_attempt_at=expires,
            updated_at=now,
        )
    if isinstance(event, RetryNow):
        return replace(entry, state=target, next_attempt_at=now, updated_at=now)
    # Delivered, RetryableFailure, PermanentFailure: the outcome of one delivery.
    if event.version != entry.version:
        raise _refuse(entry, event, "stale_version")
    settled = replace(
        entry, state=target, last_status=event.status, claimed_by="", claim_expires_at=0.0, updated_at=now
    )
    if isinstance(event, Delivered):
        return replace(settled, last_error="", delivered_at=now)
    settled = replace(settled, last_error=excerpt(event.error))
    if isinstance(event, RetryableFailure):
        wait = backoff.delay(entry.attempts, rng)
        if entry.kind.ordered and event.status == 0:  # no answer: the send may still land
            wait = max(wait, backoff.unanswered)
        return replace(settled, next_attempt_at=now + wait)
    return settled


def _after_older_send(entry: OutboxEntry, merged: OutboxEntry, now: float, backoff: Backoff) -> OutboxEntry:
    """``merged`` (a newer score for ``entry``), not due while ``entry``'s send may still land, for
    a service that keeps the score it processes last (see the module's docstring)."""
    if not entry.kind.ordered:
        return merged
    if entry.state is S.IN_FLIGHT:  # the older send runs on: keep its lease, wait for it
        return replace(
            merged,
            claimed_by=entry.claimed_by,
            claim_expires_at=entry.claim_expires_at,
            next_attempt_at=max(now, entry.claim_expires_at),
        )
    if entry.state is S.RETRYING and entry.last_status == 0:  # its last send got no answer
        return replace(merged, next_attempt_at=max(now, entry.updated_at + backoff.unanswered))
    return merged


def enqueue(existing: OutboxEntry | None, incoming: OutboxEntry, now: float) -> OutboxEntry:
    """The row after ``incoming``'s score is merged into ``existing`` (the row of the same key, if any).

    ``existing`` itself (unchanged) when the incoming score is older, or the same score at the same
    time (nothing new to send); else the newer score, PENDING, its version bumped.
    """
    if existing is None:
        return replace(incoming, state=S.PENDING, next_attempt_at=now, updated_at=now)
    if incoming.score_timestamp < existing.score_timestamp:
        return existing
    if (incoming.score, incoming.score_timestamp, incoming.kind) == (
        existing.score,
        existing.score_timestamp,
        existing.kind,
    ):
        return existing
    return transition(existing, Enqueue(incoming.kind, incoming.score, incoming.score_timestamp), now, NO_DRAW)


def claimable(entry: OutboxEntry, now: float) -> bool:
    """Whether a worker may claim the entry at ``now``."""
    return (entry.state, Claim) in TRANSITIONS and entry.next_attempt_at <= now


class _NoDraw:
    """The rng of the transitions that draw no backoff (all but a retryable failure)."""

    def random(self) -> float:
        raise AssertionError("this transition draws no backoff")


NO_DRAW: Rng = _NoDraw()
