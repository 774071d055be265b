"""Storage the protocol code needs, as small Protocols each host implements on its own database.

Every implementation must pass ``tests/store_contract.py``. Methods that consume something
(``consume_nonce``) must be atomic under concurrency: two launches racing with the same nonce must
not both win.
"""

from __future__ import annotations

import hashlib
from typing import Protocol

from lti_core.outbox import OutboxEntry, OutboxKey, OutboxState, Rng, Score, ServiceKind
from lti_core.types import Consumer, LaunchContext, OidcState, Registration, ToolKey, UserLink


class RegistrationStore(Protocol):
    def get_registration(self, issuer: str, client_id: str) -> Registration | None: ...
    def find_registrations(self, issuer: str) -> list[Registration]: ...
    def list_registrations(self) -> list[Registration]:
        """Every registration, by issuer then client_id (for the admins' lists)."""
        ...

    def save_registration(self, registration: Registration) -> None:
        """Create or replace the registration (issuer, client_id), deployments included."""
        ...

    def delete_registration(self, issuer: str, client_id: str) -> bool:
        """Delete the registration and its deployments; False if there was none."""
        ...


class ConsumerStore(Protocol):
    def get_consumer(self, key: str) -> Consumer | None: ...
    def list_consumers(self) -> list[Consumer]:
        """Every consumer, by key."""
        ...

    def save_consumer(self, consumer: Consumer) -> None: ...
    def delete_consumer(self, key: str) -> bool:
        """Delete the consumer; False if there was none."""
        ...


def nonce_digest(scope: str, nonce: str) -> str:
    """How stores key a used nonce: sha256 of (scope, nonce). LTI 1.1 nonces have no length limit;
    a digest always fits a unique index, on every database."""
    return hashlib.sha256(f"{scope}\x00{nonce}".encode()).hexdigest()


class NonceStore(Protocol):
    def consume_nonce(self, scope: str, nonce: str, expires_at: float, now: float) -> bool:
        """Record ``nonce`` in ``scope``; False if it was already recorded and has not expired."""
        ...


class StateStore(Protocol):
    def save_state(self, state: OidcState) -> None: ...
    def get_state(self, state: str, now: float) -> OidcState | None:
        """The unexpired state, or None."""
        ...

    def delete_state(self, state: str) -> None: ...
    def purge_expired(self, now: float) -> int:
        """Drop expired states and nonces; returns how many rows went."""
        ...


class ToolKeyStore(Protocol):
    def list_tool_keys(self) -> list[ToolKey]:
        """All keys, newest first."""
        ...

    def save_tool_key(self, key: ToolKey) -> None: ...
    def set_tool_key_active(self, kid: str, active: bool) -> None: ...


class UserLinkStore(Protocol):
    def get_user_link(self, platform: str, platform_user_id: str) -> UserLink | None: ...
    def save_user_link(self, link: UserLink) -> UserLink:
        """Create the link; if one already exists for the identity, keep it and return it (links are permanent)."""
        ...

    def delete_user_link(self, platform: str, platform_user_id: str) -> bool:
        """Remove the link (the user unlinks, or an admin does); False if there was none. The next
        launch of the identity is a first launch again."""
        ...

    def find_user_links(self, local_user_id: str) -> list[UserLink]:
        """The platform identities linked to a local user (hosts that name users check a name is free)."""
        ...

    def list_user_links(self, platform: str = "") -> list[UserLink]:
        """Every link (of ``platform`` only, when given), by platform then platform user id (for the admins' lists)."""
        ...


class LaunchContextStore(Protocol):
    """The latest launch context per (platform, platform user, resource link), for grade and roster
    jobs that run without a browser (and, on the hub, without auth_state)."""

    def save_launch_context(self, context: LaunchContext) -> None:
        """Create or replace the context of (platform, platform_user_id, resource_link_id): the
        latest launch wins, one row per key."""
        ...

    def get_launch_context(
        self, platform: str, platform_user_id: str, resource_link_id: str
    ) -> LaunchContext | None: ...

    def find_launch_contexts(self, local_user_id: str = "", *, content_id: str = "") -> list[LaunchContext]:
        """The contexts of a local user's launches, or of the launches into a content, or both
        (the non-empty filters hold together), the most recently updated first."""
        ...


class OutboxStore(Protocol):
    """The durable grade outbox (``lti_core.outbox``): one row per (platform, platform user, target).

    Every write is a conditional update of the row as it was read, so concurrent workers and
    enqueuers never overwrite each other's changes; ``claim_due`` never gives a row to two workers.
    """

    def enqueue_score(
        self, key: OutboxKey, kind: ServiceKind, score: Score, score_timestamp: float, now: float
    ) -> OutboxEntry:
        """Merge the score into the key's row (``lti_core.outbox.enqueue``: the latest score wins, an
        older one is ignored); the row as it now stands."""
        ...

    def claim_due(self, now: float, limit: int, worker: str, lease: float) -> list[OutboxEntry]:
        """Claim up to ``limit`` due entries (pending; retrying past their backoff; in flight past
        their lease) for ``worker``, for ``lease`` seconds: the claimed entries, IN_FLIGHT."""
        ...

    def complete(self, key: OutboxKey, version: int, now: float, status: int = 200) -> bool:
        """Record the delivery of ``version``: True if the entry is now DELIVERED; False (the entry
        unchanged) if a newer score replaced that version meanwhile, or the entry is not in flight."""
        ...

    def fail(
        self,
        key: OutboxKey,
        version: int,
        now: float,
        *,
        retryable: bool,
        status: int = 0,
        error: str = "",
        rng: Rng,
    ) -> OutboxEntry | None:
        """Record a failed delivery of ``version``: RETRYING after a backoff, or FAILED when not
        ``retryable``. The entry as it now stands; None if there is none or the failure is stale (a
        newer score replaced that version, or the entry is not in flight)."""
        ...

    def retry_now(self, key: OutboxKey, now: float) -> bool:
        """An admin's "retry now": a FAILED or RETRYING entry back to PENDING. False if none was."""
        ...

    def get_outbox_entry(self, key: OutboxKey) -> OutboxEntry | None: ...
    def list_outbox(self, state: OutboxState | None = None) -> list[OutboxEntry]:
        """Every entry (in ``state`` only, when given), oldest row first (for the admins' lists)."""
        ...

    def outbox_counts(self) -> dict[OutboxState, int]:
        """How many entries are in each state (every state, 0 included)."""
        ...


class Lti11Store(ConsumerStore, NonceStore, Protocol):
    """What LTI 1.1 verification needs."""


class LaunchStore(RegistrationStore, NonceStore, StateStore, Protocol):
    """What login initiation and launch validation need."""


class Store(
    RegistrationStore,
    ConsumerStore,
    NonceStore,
    StateStore,
    ToolKeyStore,
    UserLinkStore,
    LaunchContextStore,
    OutboxStore,
    Protocol,
):
    """Everything a host's store provides."""
