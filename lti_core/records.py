"""Every Store algorithm, written once, over the few row operations a host's database offers.

A host implements ``Tables`` (Django's ORM, SQLAlchemy Core, or the in-memory ``MemoryTables``) and
gets the whole ``lti_core.store.Store`` from ``RecordStore``: the dataclass <-> row mapping, the
single-use nonce (insert, else win back an expired record with one conditional update), the user
link race (the first link wins, the loser reads it back), deployments replaced with their
registration in one transaction, the grade outbox's claims and merges (conditional updates of the row
as it was read), caches of what every launch reads, and the collation that makes
identifiers compare exactly on MySQL and MariaDB. The hosts keep only their schemas and migrations.

``TABLES`` is the schema every host's tables must have: names, columns and unique keys (a contract
test checks both hosts' schemas against it).
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager
from dataclasses import asdict, dataclass
from typing import Any, Generic, Protocol, TypeVar

from lti_core import outbox
from lti_core.outbox import OutboxEntry, OutboxKey, OutboxState, Rng, Score, ServiceKind
from lti_core.prompt import PendingLaunch, PromptState
from lti_core.sealing import Sealer, open_value, seal_value
from lti_core.store import nonce_digest
from lti_core.types import (
    STATE_FIELDS,
    Consumer,
    Deployment,
    Launch,
    LaunchContext,
    LaunchServices,
    OidcState,
    Registration,
    RegistrationStatus,
    Role,
    ToolKey,
    UserLink,
)

Row = dict[str, Any]


@dataclass(frozen=True)
class TableSpec:
    """A table of the store: its columns (besides the row id) and the unique key rows are found by."""

    columns: tuple[str, ...]
    key: tuple[str, ...]


_CONTEXT_COLUMNS = tuple(f for f in LaunchContext.__dataclass_fields__)
TABLES: dict[str, TableSpec] = {
    "registrations": TableSpec(
        ("issuer", "client_id", "name", "auth_login_url", "auth_token_url", "key_set_url", "any_deployment", "status"),
        ("issuer", "client_id"),
    ),
    "deployments": TableSpec(("registration_id", "deployment_id", "label"), ("registration_id", "deployment_id")),
    "consumers": TableSpec(("key", "secret", "name", "enabled", "migrated_to"), ("key",)),
    "nonces": TableSpec(("digest", "expires_at"), ("digest",)),
    "states": TableSpec(STATE_FIELDS, ("state",)),
    "tool_keys": TableSpec(("kid", "private_pem", "public_jwk", "active", "created_at", "retires_at"), ("kid",)),
    "user_links": TableSpec(("platform", "platform_user_id", "local_user_id"), ("platform", "platform_user_id")),
    "launch_contexts": TableSpec(_CONTEXT_COLUMNS, ("platform", "platform_user_id", "resource_link_id")),
    # Keyed by sha256(platform, platform user, target) (OutboxKey.digest): a target URL plus a
    # sourcedid may pass MySQL's index limit. The key's values are kept in full beside it.
    "grade_outbox": TableSpec(
        (
            "key_digest",
            "platform",
            "platform_user_id",
            "target",
            "kind",
            "score_given",
            "score_maximum",
            "activity_progress",
            "grading_progress",
            "comment",
            "score_timestamp",
            "state",
            "version",
            "attempts",
            "next_attempt_at",
            "last_status",
            "last_error",
            "claimed_by",
            "claim_expires_at",
            "delivered_at",
            "updated_at",
        ),
        ("key_digest",),
    ),
    # lti_core.prompt.PendingLaunch; ``launch`` is Launch.as_record() (JSON); ``account`` its
    # local_user_id (a plain text column: the Django host maps local_user_id to its users' foreign key).
    "pending_launches": TableSpec(
        (
            "pending_id",
            "launch",
            "content_id",
            "state",
            "may_create",
            "binding",
            "handover",
            "form_token_digest",
            "expires_at",
            "account",
            "suggested_username",
        ),
        ("pending_id",),
    ),
}


class Rows(Protocol):
    """One table, as plain rows (dicts of column values; JSON columns hold Python lists and dicts).

    ``where`` compares columns for equality. ``live_at`` keeps rows whose ``expires_at`` is later;
    ``expired_at`` keeps rows whose ``expires_at`` is not; ``due_at`` keeps rows whose
    ``next_attempt_at`` is not later. ``select`` returns rows in the order they were inserted, each
    with its ``id`` where the table has one, the first ``limit`` of them when given.
    """

    def insert(self, row: Mapping[str, Any]) -> bool:
        """Add the row; False (and nothing written) when a unique key already holds it."""
        ...

    def upsert(self, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """Insert the row ``key`` identifies, or update ``values`` on it, atomically."""
        ...

    def select(
        self,
        where: Mapping[str, Any],
        *,
        live_at: float | None = None,
        due_at: float | None = None,
        limit: int | None = None,
    ) -> list[Row]: ...
    def update(
        self, where: Mapping[str, Any], values: Mapping[str, Any], *, expired_at: float | None = None
    ) -> int: ...
    def delete(self, where: Mapping[str, Any], *, expired_at: float | None = None) -> int: ...


class Tables(Protocol):
    """A host's database: its tables by name (``TABLES``), and transactions spanning calls."""

    def rows(self, table: str) -> Rows: ...
    def atomic(self) -> AbstractContextManager[None]: ...


def exact_collation(vendor: str, *, mariadb: bool, version: tuple[int, ...]) -> str | None:
    """The collation identifier columns need so that they compare byte for byte, or None.

    SQLite and PostgreSQL (deterministic collations) already compare exactly. MySQL and MariaDB
    default to case-insensitive collations that also ignore trailing spaces (PAD SPACE), so ``ABC``
    or ``abc `` would find, overwrite or log in as ``abc``: there, a binary NO PAD collation, chosen
    from the server actually connected to (a ``mysql://`` URL may reach a MariaDB server).
    """
    if vendor not in ("mysql", "mariadb"):
        return None
    if mariadb:
        return "utf8mb4_nopad_bin"  # MariaDB >= 10.2
    if version >= (8, 0, 17):
        return "utf8mb4_0900_bin"  # NO PAD
    return "utf8mb4_bin"  # PAD SPACE, but case-sensitive: the best older MySQL has


K = TypeVar("K", bound=Hashable)
V = TypeVar("V")


class TtlLruCache(Generic[K, V]):
    """A bounded, expiring, thread-safe map for rows read on every launch.

    At most ``size`` entries (the least recently used go first) and each for at most ``ttl`` seconds
    of ``clock`` after it was read from the database. ``invalidate`` drops a key after a write; it
    also refuses any fill by a read that began before it (``put`` with an older ``generation``),
    since that read may have seen the row as it was before the write.
    """

    def __init__(self, size: int, ttl: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.size, self.ttl = max(size, 0), ttl
        self._clock = clock
        self._entries: OrderedDict[K, tuple[float, V]] = OrderedDict()
        self._lock = threading.Lock()
        self._generation = 0

    def __len__(self) -> int:
        return len(self._entries)

    def generation(self) -> int:
        """Taken before reading the database, handed to ``put`` with what was read."""
        return self._generation

    def get(self, key: K) -> V | None:
        with self._lock:
            found = self._entries.get(key)
            if found is None:
                return None
            if found[0] <= self._clock():
                del self._entries[key]
                return None
            self._entries.move_to_end(key)
            return found[1]

    def put(self, key: K, value: V, generation: int) -> None:
        with self._lock:
            if generation != self._generation or self.size == 0:
                return  # a write came in between: what was read may be older than it
            self._entries[key] = (self._clock() + self.ttl, value)
            self._entries.move_to_end(key)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)

    def invalidate(self, key: K) -> None:
        with self._lock:
            self._generation += 1
            self._entries.pop(key, None)

    def read_through(self, key: K, read: Callable[[], V | None]) -> V | None:
        """The cached value, else ``read()``'s (cached if found: a row made elsewhere is seen at once)."""
        cached = self.get(key)
        if cached is not None:
            return cached
        generation = self.generation()
        found = read()
        if found is not None:
            self.put(key, found, generation)
        return found


class RecordStore:
    """Every Protocol of lti_core.store over a host's ``Tables``.

    Registrations and user links, read at every launch and written almost never, are cached
    (``TtlLruCache``: ``cache_size`` entries, ``cache_ttl`` seconds; 0 entries turns caching off).
    This process's writes invalidate their entries at once; another process's (a second worker, an
    admin's script) are seen when the entry expires. Only rows found are cached.

    With a ``sealer`` (``lti_core.sealing``), the secrets a row holds (a tool key's ``private_pem``, a
    consumer's ``secret``) are sealed when saved and opened when read.
    """

    #: Entries per cache: a host's active platform users, roughly; ~1 MB at most.
    CACHE_SIZE = 4096
    #: Seconds an entry is served before the database is asked again.
    CACHE_TTL = 60.0

    def __init__(
        self,
        tables: Tables,
        *,
        cache_size: int = CACHE_SIZE,
        cache_ttl: float = CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
        sealer: Sealer | None = None,
    ) -> None:
        self.tables = tables
        self.sealer = sealer
        self._registration_cache: TtlLruCache[tuple[str, str], Registration] = TtlLruCache(cache_size, cache_ttl, clock)
        self._link_cache: TtlLruCache[tuple[str, str], UserLink] = TtlLruCache(cache_size, cache_ttl, clock)

    def _rows(self, table: str) -> Rows:
        return self.tables.rows(table)

    @contextmanager
    def _invalidating(self, cache: TtlLruCache[K, Any], key: K) -> Iterator[None]:
        # After the write, whatever its outcome: a read that began before it cannot fill the cache.
        try:
            yield
        finally:
            cache.invalidate(key)

    # registrations ---------------------------------------------------------------------------
    def _registration(self, row: Row) -> Registration:
        deployed = self._rows("deployments").select({"registration_id": row["id"]})
        return Registration(
            issuer=row["issuer"],
            client_id=row["client_id"],
            auth_login_url=row["auth_login_url"],
            auth_token_url=row["auth_token_url"],
            key_set_url=row["key_set_url"],
            deployments=tuple(Deployment(d["deployment_id"], d["label"]) for d in deployed),
            name=row["name"],
            any_deployment=bool(row["any_deployment"]),
            status=RegistrationStatus(row["status"]),
        )

    def _select_registrations(self, where: Mapping[str, str]) -> list[Registration]:
        with self.tables.atomic():  # a registration and its deployments from one transaction
            return [self._registration(row) for row in self._rows("registrations").select(where)]

    def get_registration(self, issuer: str, client_id: str) -> Registration | None:
        def read() -> Registration | None:
            found = self._select_registrations({"issuer": issuer, "client_id": client_id})
            return found[0] if found else None

        return self._registration_cache.read_through((issuer, client_id), read)

    def find_registrations(self, issuer: str) -> list[Registration]:
        return sorted(self._select_registrations({"issuer": issuer}), key=lambda r: r.client_id)

    def list_registrations(self) -> list[Registration]:
        return sorted(self._select_registrations({}), key=lambda r: (r.issuer, r.client_id))

    def save_registration(self, registration: Registration) -> None:
        key = {"issuer": registration.issuer, "client_id": registration.client_id}
        values = {c: getattr(registration, c) for c in TABLES["registrations"].columns if c not in key}
        values["status"] = registration.status.value
        with self._invalidating(self._registration_cache, (registration.issuer, registration.client_id)):
            with self.tables.atomic():
                self._rows("registrations").upsert(key, values)
                registration_id = self._rows("registrations").select(key)[0]["id"]
                deployments = self._rows("deployments")
                wanted = {d.deployment_id for d in registration.deployments}
                for row in deployments.select({"registration_id": registration_id}):
                    if row["deployment_id"] not in wanted:
                        deployments.delete({"id": row["id"]})
                # Kept deployments keep their rows, so their place: deployments read back in row order.
                for deployment in registration.deployments:
                    deployments.upsert(
                        {"registration_id": registration_id, "deployment_id": deployment.deployment_id},
                        {"label": deployment.label},
                    )

    def delete_registration(self, issuer: str, client_id: str) -> bool:
        key = {"issuer": issuer, "client_id": client_id}
        with self._invalidating(self._registration_cache, (issuer, client_id)):
            with self.tables.atomic():
                found = self._rows("registrations").select(key)
                if not found:
                    return False
                self._rows("deployments").delete({"registration_id": found[0]["id"]})
                return self._rows("registrations").delete(key) > 0

    # LTI 1.1 consumers -----------------------------------------------------------------------
    def get_consumer(self, key: str) -> Consumer | None:
        found = self._rows("consumers").select({"key": key})
        return self._consumer(found[0]) if found else None

    def _consumer(self, row: Row) -> Consumer:
        secret = open_value(self.sealer, row["secret"])
        return Consumer(row["key"], secret, row["name"], bool(row["enabled"]), row["migrated_to"])

    def list_consumers(self) -> list[Consumer]:
        return sorted((self._consumer(row) for row in self._rows("consumers").select({})), key=lambda c: c.key)

    def save_consumer(self, consumer: Consumer) -> None:
        values = {
            "secret": seal_value(self.sealer, consumer.secret),
            "name": consumer.name,
            "enabled": consumer.enabled,
            "migrated_to": consumer.migrated_to,
        }
        self._rows("consumers").upsert({"key": consumer.key}, values)

    def delete_consumer(self, key: str) -> bool:
        return self._rows("consumers").delete({"key": key}) > 0

    # nonces and OIDC state -------------------------------------------------------------------
    def consume_nonce(self, scope: str, nonce: str, expires_at: float, now: float) -> bool:
        digest = nonce_digest(scope, nonce)
        nonces = self._rows("nonces")
        if nonces.insert({"digest": digest, "expires_at": expires_at}):
            return True
        # Seen before. Only an expired record may be reused, and the conditional UPDATE lets exactly
        # one of two racing requests win it: the second one's WHERE no longer matches the row the
        # first one rewrote (PostgreSQL re-checks it after the first commits; InnoDB and SQLite
        # update the latest row version).
        return nonces.update({"digest": digest}, {"expires_at": expires_at}, expired_at=now) == 1

    def save_state(self, state: OidcState) -> None:
        self._rows("states").insert(asdict(state))

    def get_state(self, state: str, now: float) -> OidcState | None:
        found = self._rows("states").select({"state": state}, live_at=now)
        return OidcState(**{name: found[0][name] for name in STATE_FIELDS}) if found else None

    def delete_state(self, state: str) -> None:
        self._rows("states").delete({"state": state})

    def purge_expired(self, now: float) -> int:
        with self.tables.atomic():
            expiring = ("states", "nonces", "pending_launches")
            return sum(self._rows(table).delete({}, expired_at=now) for table in expiring)

    # pending launches (the linking prompt) ---------------------------------------------------
    _PENDING_RENAMED = ("pending_id", "account")

    @classmethod
    def _pending(cls, row: Row) -> PendingLaunch:
        values = {name: row[name] for name in TABLES["pending_launches"].columns if name not in cls._PENDING_RENAMED}
        values.update(
            launch=Launch.from_record(row["launch"]),
            state=PromptState(row["state"]),
            may_create=bool(row["may_create"]),
        )
        return PendingLaunch(id=row["pending_id"], local_user_id=str(row["account"]), **values)

    @classmethod
    def _pending_row(cls, pending: PendingLaunch) -> Row:
        columns = TABLES["pending_launches"].columns
        row = {name: getattr(pending, name) for name in columns if name not in cls._PENDING_RENAMED}
        row.update(
            pending_id=pending.id,
            account=pending.local_user_id,
            launch=pending.launch.as_record(),
            state=pending.state.value,
        )
        return row

    def save_pending_launch(self, pending: PendingLaunch) -> None:
        self._rows("pending_launches").insert(self._pending_row(pending))

    def get_pending_launch(self, pending_id: str, now: float) -> PendingLaunch | None:
        found = self._rows("pending_launches").select({"pending_id": pending_id}, live_at=now)
        return self._pending(found[0]) if found else None

    def replace_pending_launch(self, read: PendingLaunch, written: PendingLaunch) -> bool:
        # Conditional on what a step decides by: a replay that read the same row loses the race.
        decisive = ("state", "account", "binding", "handover")
        before, after = self._pending_row(read), self._pending_row(written)
        where = {"pending_id": read.id, **{name: before[name] for name in decisive}}
        changed = {name: after[name] for name in decisive}
        return self._rows("pending_launches").update(where, changed) == 1

    def delete_pending_launch(self, pending_id: str) -> bool:
        return self._rows("pending_launches").delete({"pending_id": pending_id}) == 1

    # tool keys -------------------------------------------------------------------------------
    def list_tool_keys(self) -> list[ToolKey]:
        rows = reversed(self._rows("tool_keys").select({}))  # newest first
        return [
            ToolKey(
                r["kid"],
                open_value(self.sealer, r["private_pem"]),
                dict(r["public_jwk"]),
                bool(r["active"]),
                float(r["created_at"]),
                float(r["retires_at"]),
            )
            for r in rows
        ]

    def save_tool_key(self, key: ToolKey) -> None:
        values = {
            "private_pem": seal_value(self.sealer, key.private_pem),
            "public_jwk": dict(key.public_jwk),
            "active": key.active,
            "created_at": key.created_at,
            "retires_at": key.retires_at,
        }
        self._rows("tool_keys").upsert({"kid": key.kid}, values)

    def set_tool_key_active(self, kid: str, active: bool) -> None:
        self._rows("tool_keys").update({"kid": kid}, {"active": active})

    # user links ------------------------------------------------------------------------------
    def _read_link(self, platform: str, platform_user_id: str) -> UserLink | None:
        found = self._rows("user_links").select({"platform": platform, "platform_user_id": platform_user_id})
        return UserLink(platform, platform_user_id, str(found[0]["local_user_id"])) if found else None

    def get_user_link(self, platform: str, platform_user_id: str) -> UserLink | None:
        key = (platform, platform_user_id)
        return self._link_cache.read_through(key, lambda: self._read_link(*key))

    def save_user_link(self, link: UserLink) -> UserLink:
        """The first link of an identity wins for good: a racing second one gets the first back."""
        with self._invalidating(self._link_cache, (link.platform, link.platform_user_id)):
            if self._rows("user_links").insert(asdict(link)):
                return link
            existing = self._read_link(link.platform, link.platform_user_id)
            if existing is None:  # the row that refused us was deleted in between: nothing to keep
                raise LookupError(f"the link of {link.platform_user_id!r} on {link.platform!r} vanished; retry")
            return existing

    def delete_user_link(self, platform: str, platform_user_id: str) -> bool:
        with self._invalidating(self._link_cache, (platform, platform_user_id)):
            where = {"platform": platform, "platform_user_id": platform_user_id}
            return self._rows("user_links").delete(where) > 0

    def find_user_links(self, local_user_id: str) -> list[UserLink]:
        rows = self._rows("user_links").select({"local_user_id": local_user_id})
        found = [UserLink(r["platform"], r["platform_user_id"], local_user_id) for r in rows]
        return sorted(found, key=lambda link: (link.platform, link.platform_user_id))

    def list_user_links(self, platform: str = "") -> list[UserLink]:
        rows = self._rows("user_links").select({"platform": platform} if platform else {})
        found = [UserLink(r["platform"], r["platform_user_id"], str(r["local_user_id"])) for r in rows]
        return sorted(found, key=lambda link: (link.platform, link.platform_user_id))

    # launch contexts -------------------------------------------------------------------------
    @staticmethod
    def _launch_context(row: Row) -> LaunchContext:
        values = {name: row[name] for name in _CONTEXT_COLUMNS}
        values.update(
            local_user_id=str(row["local_user_id"]),
            role=Role(row["role"]),
            roles=tuple(row["roles"]),
            services=LaunchServices.from_dict(row["services"]),
        )
        return LaunchContext(**values)

    def save_launch_context(self, context: LaunchContext) -> None:
        row = {name: getattr(context, name) for name in _CONTEXT_COLUMNS}
        row.update(role=context.role.value, roles=list(context.roles), services=context.services.as_dict())
        key = {name: row.pop(name) for name in TABLES["launch_contexts"].key}
        self._rows("launch_contexts").upsert(key, row)

    def get_launch_context(self, platform: str, platform_user_id: str, resource_link_id: str) -> LaunchContext | None:
        key = {"platform": platform, "platform_user_id": platform_user_id, "resource_link_id": resource_link_id}
        found = self._rows("launch_contexts").select(key)
        return self._launch_context(found[0]) if found else None

    def find_launch_contexts(self, local_user_id: str = "", *, content_id: str = "") -> list[LaunchContext]:
        where = {name: value for name, value in (("local_user_id", local_user_id), ("content_id", content_id)) if value}
        if not where:
            raise ValueError("find_launch_contexts needs a local user, a content or both")
        # Newest first; among equal times, the row inserted last first.
        rows = list(reversed(self._rows("launch_contexts").select(where)))
        return sorted((self._launch_context(r) for r in rows), key=lambda c: -c.updated_at)

    # grade outbox ----------------------------------------------------------------------------
    #: Conditional updates lost to other writers before a write gives up (each loss means the row
    #: changed in between: a handful of concurrent writers of one row at most).
    OUTBOX_WRITE_TRIES = 20

    def get_outbox_entry(self, key: OutboxKey) -> OutboxEntry | None:
        found = self._rows("grade_outbox").select({"key_digest": key.digest})
        return _outbox_entry(found[0]) if found else None

    def _write_outbox(self, read: OutboxEntry, written: OutboxEntry) -> bool:
        """Write ``written`` over the row if it is still as ``read``: False if someone changed it since."""
        values = {c: v for c, v in _outbox_row(written).items() if c != "key_digest"}
        return self._rows("grade_outbox").update(_as_read(read), values) == 1

    def _change_outbox(
        self, key: OutboxKey, change: Callable[[OutboxEntry], OutboxEntry]
    ) -> tuple[OutboxEntry, OutboxEntry] | None:
        """Apply ``change`` to the key's row with conditional updates, re-reading it after each
        lost race: (the row as read, as written), or None if there is no row. ``change`` raises
        ``OutboxError`` to leave the row alone."""
        for _ in range(self.OUTBOX_WRITE_TRIES):
            current = self.get_outbox_entry(key)
            if current is None:
                return None
            changed = change(current)
            if changed is current or self._write_outbox(current, changed):
                return current, changed
        raise RuntimeError(
            f"the outbox entry {key.digest} kept changing: gave up after {self.OUTBOX_WRITE_TRIES} tries"
        )

    def enqueue_score(
        self, key: OutboxKey, kind: ServiceKind, score: Score, score_timestamp: float, now: float
    ) -> OutboxEntry:
        incoming = OutboxEntry.new(key, kind, score, score_timestamp, now)
        for _ in range(self.OUTBOX_WRITE_TRIES):
            if self._rows("grade_outbox").insert(_outbox_row(incoming)):
                return incoming
            changed = self._change_outbox(key, lambda current: outbox.enqueue(current, incoming, now))
            if changed is not None:
                return changed[1]
            # The row that refused the insert was deleted in between: insert again.
        raise RuntimeError(
            f"the outbox entry {key.digest} kept changing: gave up after {self.OUTBOX_WRITE_TRIES} tries"
        )

    def claim_due(self, now: float, limit: int, worker: str, lease: float) -> list[OutboxEntry]:
        if limit <= 0:
            return []
        table = self._rows("grade_outbox")
        claimed: list[OutboxEntry] = []
        claim = outbox.Claim(worker, lease)
        for state in (OutboxState.IN_FLIGHT, OutboxState.RETRYING, OutboxState.PENDING):
            # More candidates than wanted: a racing worker may win some of them first.
            candidates = table.select({"state": state.value}, due_at=now, limit=2 * (limit - len(claimed)) + 4)
            for row in candidates:
                entry = _outbox_entry(row)
                try:
                    taken = outbox.transition(entry, claim, now, outbox.NO_DRAW)
                except outbox.OutboxError:
                    continue
                if self._write_outbox(entry, taken):  # else another worker, or a new score, came first
                    claimed.append(taken)
                    if len(claimed) == limit:
                        return claimed
        return claimed

    def _settle(self, key: OutboxKey, event: outbox.Event, now: float, rng: Rng) -> OutboxEntry | None:
        def change(current: OutboxEntry) -> OutboxEntry:
            return outbox.transition(current, event, now, rng)

        try:
            changed = self._change_outbox(key, change)
        except outbox.OutboxError:
            return None
        return None if changed is None else changed[1]

    def complete(self, key: OutboxKey, version: int, now: float, status: int = 200) -> bool:
        return self._settle(key, outbox.Delivered(version, status), now, outbox.NO_DRAW) is not None

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
        event: outbox.Event = (
            outbox.RetryableFailure(version, status, error)
            if retryable
            else outbox.PermanentFailure(version, status, error)
        )
        return self._settle(key, event, now, rng)

    def retry_now(self, key: OutboxKey, now: float) -> bool:
        return self._settle(key, outbox.RetryNow(), now, outbox.NO_DRAW) is not None

    def list_outbox(self, state: OutboxState | None = None) -> list[OutboxEntry]:
        rows = self._rows("grade_outbox").select({"state": state.value} if state is not None else {})
        return [_outbox_entry(row) for row in rows]

    def outbox_counts(self) -> dict[OutboxState, int]:
        counts = dict.fromkeys(OutboxState, 0)
        for entry in self.list_outbox():
            counts[entry.state] += 1
        return counts


def _outbox_row(entry: OutboxEntry) -> Row:
    return {
        "key_digest": entry.key.digest,
        "platform": entry.key.platform,
        "platform_user_id": entry.key.platform_user_id,
        "target": entry.key.target,
        "kind": entry.kind.value,
        "score_given": entry.score.given,
        "score_maximum": entry.score.maximum,
        "activity_progress": entry.score.activity_progress,
        "grading_progress": entry.score.grading_progress,
        "comment": entry.score.comment,
        "score_timestamp": entry.score_timestamp,
        "state": entry.state.value,
        "version": entry.version,
        "attempts": entry.attempts,
        "next_attempt_at": entry.next_attempt_at,
        "last_status": entry.last_status,
        "last_error": entry.last_error,
        "claimed_by": entry.claimed_by,
        "claim_expires_at": entry.claim_expires_at,
        "delivered_at": entry.delivered_at,
        "updated_at": entry.updated_at,
    }


def _optional_float(value: Any) -> float | None:
    return None if value is None else float(value)


def _outbox_entry(row: Row) -> OutboxEntry:
    return OutboxEntry(
        key=OutboxKey(row["platform"], row["platform_user_id"], row["target"]),
        kind=ServiceKind(row["kind"]),
        score=Score(
            _optional_float(row["score_given"]),
            _optional_float(row["score_maximum"]),
            row["activity_progress"],
            row["grading_progress"],
            row["comment"],
        ),
        score_timestamp=float(row["score_timestamp"]),
        state=OutboxState(row["state"]),
        version=int(row["version"]),
        attempts=int(row["attempts"]),
        next_attempt_at=float(row["next_attempt_at"]),
        last_status=int(row["last_status"]),
        last_error=row["last_error"],
        claimed_by=row["claimed_by"],
        claim_expires_at=float(row["claim_expires_at"]),
        delivered_at=float(row["delivered_at"]),
        updated_at=float(row["updated_at"]),
    )


def _as_read(entry: OutboxEntry) -> dict[str, Any]:
    """The columns a conditional update matches: the row as it was read, if no one changed it since.

    (state, version, attempts) never repeats in a row's life: ``version`` only grows, ``attempts``
    grows with each claim of a version, and a state is only ever left for another (or, in flight,
    for a new claim, which counts an attempt).
    """
    return {
        "key_digest": entry.key.digest,
        "state": entry.state.value,
        "version": entry.version,
        "attempts": entry.attempts,
    }


class _MemoryRows:
    """A table in a dict by unique key (insertion ordered, as row ids), under the tables' lock."""

    def __init__(self, spec: TableSpec, lock: threading.RLock) -> None:
        self._key, self._lock = spec.key, lock
        self._key_set = frozenset(spec.key)
        self._rows: dict[tuple[Any, ...], Row] = {}
        self._next_id = 1

    def _find(
        self,
        where: Mapping[str, Any],
        live_at: float | None = None,
        expired_at: float | None = None,
        due_at: float | None = None,
    ) -> list[Row]:
        if self._key_set <= where.keys():  # the unique key, maybe with conditions: no scan
            found = self._rows.get(tuple([where[k] for k in self._key]))
            candidates = [found] if found is not None and all(found.get(c) == v for c, v in where.items()) else []
        else:
            candidates = [r for r in self._rows.values() if all(r.get(c) == v for c, v in where.items())]
        if live_at is not None:
            candidates = [r for r in candidates if r["expires_at"] > live_at]
        if expired_at is not None:
            candidates = [r for r in candidates if r["expires_at"] <= expired_at]
        if due_at is not None:
            candidates = [r for r in candidates if r["next_attempt_at"] <= due_at]
        return candidates

    def insert(self, row: Mapping[str, Any]) -> bool:
        with self._lock:
            key = tuple(row[k] for k in self._key)
            if key in self._rows:
                return False
            self._rows[key] = {**row, "id": self._next_id}
            self._next_id += 1
            return True

    def upsert(self, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        with self._lock:
            if not self.update(key, values):
                self.insert({**key, **values})

    def select(
        self,
        where: Mapping[str, Any],
        *,
        live_at: float | None = None,
        due_at: float | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        with self._lock:
            found = self._find(where, live_at, due_at=due_at)
            return [dict(row) for row in (found if limit is None else found[:limit])]

    def update(self, where: Mapping[str, Any], values: Mapping[str, Any], *, expired_at: float | None = None) -> int:
        with self._lock:
            found = self._find(where, expired_at=expired_at)
            for row in found:
                row.update(values)
            return len(found)

    def delete(self, where: Mapping[str, Any], *, expired_at: float | None = None) -> int:
        with self._lock:
            found = self._find(where, expired_at=expired_at)
            for row in found:
                del self._rows[tuple(row[k] for k in self._key)]
            return len(found)


class MemoryTables:
    """``Tables`` in memory, for tests and benchmarks: one lock makes every call atomic."""

    def __init__(self) -> None:
        self._lock = threading.RLock()
        self._tables = {name: _MemoryRows(spec, self._lock) for name, spec in TABLES.items()}

    def rows(self, table: str) -> Rows:
        return self._tables[table]

    def atomic(self) -> AbstractContextManager[None]:
        return _held(self._lock)


@contextmanager
def _held(lock: threading.RLock) -> Iterator[None]:
    with lock:
        yield
