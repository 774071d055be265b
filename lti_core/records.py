"""Every Store algorithm, written once, over the few row operations a host's database offers.

A host implements ``Tables`` (Django's ORM, SQLAlchemy Core, or the in-memory ``MemoryTables``) and
gets the whole ``lti_core.store.Store`` from ``RecordStore``: the dataclass <-> row mapping, the
single-use nonce (insert, else win back an expired record with one conditional update), the user
link race (the first link wins, the loser reads it back), deployments replaced with their
registration in one transaction, caches of what every launch reads, and the collation that makes
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

from lti_core.sealing import Sealer, open_value, seal_value
from lti_core.store import nonce_digest
from lti_core.types import (
    STATE_FIELDS,
    Consumer,
    Deployment,
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
    "consumers": TableSpec(("key", "secret", "name", "enabled"), ("key",)),
    "nonces": TableSpec(("digest", "expires_at"), ("digest",)),
    "states": TableSpec(STATE_FIELDS, ("state",)),
    "tool_keys": TableSpec(("kid", "private_pem", "public_jwk", "active", "created_at", "retires_at"), ("kid",)),
    "user_links": TableSpec(("platform", "platform_user_id", "local_user_id"), ("platform", "platform_user_id")),
    "launch_contexts": TableSpec(_CONTEXT_COLUMNS, ("platform", "platform_user_id", "resource_link_id")),
}


class Rows(Protocol):
    """One table, as plain rows (dicts of column values; JSON columns hold Python lists and dicts).

    ``where`` compares columns for equality. ``live_at`` keeps rows whose ``expires_at`` is later;
    ``expired_at`` keeps rows whose ``expires_at`` is not. ``select`` returns rows in the order they
    were inserted, each with its ``id`` where the table has one.
    """

    def insert(self, row: Mapping[str, Any]) -> bool:
        """Add the row; False (and nothing written) when a unique key already holds it."""
        ...

    def upsert(self, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """Insert the row ``key`` identifies, or update ``values`` on it, atomically."""
        ...

    def select(self, where: Mapping[str, Any], *, live_at: float | None = None) -> list[Row]: ...
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
        return Consumer(row["key"], open_value(self.sealer, row["secret"]), row["name"], bool(row["enabled"]))

    def list_consumers(self) -> list[Consumer]:
        return sorted((self._consumer(row) for row in self._rows("consumers").select({})), key=lambda c: c.key)

    def save_consumer(self, consumer: Consumer) -> None:
        values = {
            "secret": seal_value(self.sealer, consumer.secret),
            "name": consumer.name,
            "enabled": consumer.enabled,
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
            return sum(self._rows(table).delete({}, expired_at=now) for table in ("states", "nonces"))

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

    def find_launch_contexts(self, local_user_id: str) -> list[LaunchContext]:
        # Newest first; among equal times, the row inserted last first.
        rows = list(reversed(self._rows("launch_contexts").select({"local_user_id": local_user_id})))
        return sorted((self._launch_context(r) for r in rows), key=lambda c: -c.updated_at)


class _MemoryRows:
    """A table in a dict by unique key (insertion ordered, as row ids), under the tables' lock."""

    def __init__(self, spec: TableSpec, lock: threading.RLock) -> None:
        self._key, self._lock = spec.key, lock
        self._key_set = frozenset(spec.key)
        self._rows: dict[tuple[Any, ...], Row] = {}
        self._next_id = 1

    def _find(
        self, where: Mapping[str, Any], live_at: float | None = None, expired_at: float | None = None
    ) -> list[Row]:
        if where.keys() == self._key_set:  # the unique key: no scan (every launch asks by key)
            found = self._rows.get(tuple([where[k] for k in self._key]))
            candidates = [found] if found is not None else []
        else:
            candidates = [r for r in self._rows.values() if all(r.get(c) == v for c, v in where.items())]
        if live_at is not None:
            candidates = [r for r in candidates if r["expires_at"] > live_at]
        if expired_at is not None:
            candidates = [r for r in candidates if r["expires_at"] <= expired_at]
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

    def select(self, where: Mapping[str, Any], *, live_at: float | None = None) -> list[Row]:
        with self._lock:
            return [dict(row) for row in self._find(where, live_at)]

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
