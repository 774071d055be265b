"""lti_core's Store on SQLAlchemy Core, for the JupyterHub host.

The store may live in the hub's own database (PostgreSQL, MySQL/MariaDB), beside JupyterHub's
tables: it only ever creates, reads and writes its own ``lti_publish_*`` tables (on a MetaData of
its own, never JupyterHub's). Its schema has an Alembic history of its own
(``jupyter_lti.migrations``), recorded in ``lti_publish_alembic_version`` and run when the store
opens: ``jupyterhub upgrade-db`` and the hub's ``alembic_version`` are none of its business, nor is
its version table JupyterHub's. On SQLite it gets a file of its own next to the hub's
(``default_store_url``): SQLite has one writer at a time per file, and the hub's long-lived session
should not be the one our launches wait on (nor ours the one it waits on).

Every call runs in its own short transaction on a pooled connection (``engine.begin()``), so the
store can be shared by threads (the hub calls it from a small thread pool, never from its event
loop). Only registrations and user links are cached between calls (``TtlLruCache``). A change to the
tables is a new migration revision, and ``metadata`` below must match the head revision.
"""

from __future__ import annotations

import dataclasses
import json
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any, Generic, TypeVar

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    Row,
    String,
    Table,
    Text,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    insert,
    select,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import URL, Dialect, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.schema import SchemaItem
from sqlalchemy.sql.compiler import TypeCompiler

from jupyter_lti import migrations
from lti_core.store import nonce_digest
from lti_core.types import (
    STATE_FIELDS,
    Consumer,
    Deployment,
    LaunchContext,
    LaunchServices,
    OidcState,
    Registration,
    Role,
    ToolKey,
    UserLink,
)

__all__ = ["SqlAlchemyStore", "TtlLruCache", "default_store_url", "describe_url", "metadata"]

# Beside the hub's SQLite file (see default_store_url).
SQLITE_FILE_NAME = "lti_publish.sqlite"
TABLE_PREFIX = "lti_publish_"
# The databases whose exact comparison of identifiers this module has made sure of (see ExactString).
SUPPORTED_BACKENDS = ("sqlite", "postgresql", "mysql", "mariadb")


class ExactString(String):
    """VARCHAR for identifiers (issuers, client and deployment ids, consumer keys, nonce digests, OIDC
    states, key ids, platform and local user ids): equal only if identical, on every database.

    SQLite (BINARY) and PostgreSQL (deterministic collations) already compare exactly. MySQL and
    MariaDB default to case-insensitive collations that also ignore trailing spaces (PAD SPACE), so
    ``ABC`` or ``abc `` would find, overwrite or log in as ``abc``: there the column gets a binary NO
    PAD collation, chosen when the table is created, from the server actually connected to (a
    ``mysql://`` URL may well reach a MariaDB server, so the URL's dialect name cannot decide).
    Comparisons follow the column's collation whatever the connection's, so queries need nothing
    special.
    """


def exact_collation(dialect: Dialect) -> str:
    """The binary collation a MySQL or MariaDB server compares ``ExactString`` columns with.

    The same choice as lti_xblock.models.exact_collation, for the same reasons.
    """
    if getattr(dialect, "is_mariadb", False):
        return "utf8mb4_nopad_bin"  # MariaDB >= 10.2
    version = dialect.server_version_info or ()
    if tuple(v for v in version if isinstance(v, int)) >= (8, 0, 17):
        return "utf8mb4_0900_bin"  # NO PAD
    return "utf8mb4_bin"  # PAD SPACE, but case-sensitive: the best older MySQL has


@compiles(ExactString, "mysql", "mariadb")
def _compile_exact_string_mysql(type_: ExactString, compiler: TypeCompiler, **kw: Any) -> str:
    return f"VARCHAR({type_.length}) CHARACTER SET utf8mb4 COLLATE {exact_collation(compiler.dialect)}"


# Every constraint and index is named after its table, so all of the store's objects share the
# prefix, and none can clash with JupyterHub's (PostgreSQL index names are per schema, not per table).
metadata = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "uq": "%(table_name)s_%(column_0_N_name)s_key",
        "ix": "%(table_name)s_%(column_0_N_name)s_idx",
        "fk": "%(table_name)s_%(column_0_name)s_fkey",
        "ck": "%(table_name)s_%(constraint_name)s_check",
    }
)

# InnoDB for transactions and unique keys (consume_nonce's atomicity rests on them); utf8mb4 for any
# name a platform sends; DYNAMIC rows so 255-character utf8mb4 keys fit the index (the default
# since MySQL 5.7 and MariaDB 10.2, spelt out for older servers). Both prefixes: SQLAlchemy reads
# ``mariadb_*`` options for ``mariadb://`` URLs and ``mysql_*`` ones for ``mysql://``.
_MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in {"engine": "InnoDB", "charset": "utf8mb4", "row_format": "DYNAMIC"}.items()
}


def _table(name: str, *items: SchemaItem) -> Table:
    return Table(TABLE_PREFIX + name, metadata, *items, **_MYSQL_TABLE_OPTIONS)


# Lengths: 255 characters per indexed column keeps every key within MySQL's utf8mb4 limit (the
# largest composite key, launch_contexts' three 255-character columns, is 3060 bytes of 3072). Times are epoch
# seconds in DOUBLE (never FLOAT: single precision would round today's timestamps to minutes).
registrations = _table(
    "registrations",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("issuer", ExactString(255), nullable=False),
    Column("client_id", ExactString(255), nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("auth_login_url", String(1024), nullable=False),
    Column("auth_token_url", String(1024), nullable=False),
    Column("key_set_url", String(1024), nullable=False),
    Column("any_deployment", Boolean, nullable=False, default=False),
    Column("created", Double, nullable=False),
    UniqueConstraint("issuer", "client_id"),
)

deployments = _table(
    "deployments",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column(
        "registration_id",
        Integer,
        ForeignKey(registrations.c.id, ondelete="CASCADE"),
        nullable=False,
    ),
    Column("deployment_id", ExactString(255), nullable=False),
    Column("label", String(255), nullable=False, default=""),
    UniqueConstraint("registration_id", "deployment_id"),
)

consumers = _table(
    "consumers",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", ExactString(255), nullable=False, unique=True),
    Column("secret", String(255), nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("created", Double, nullable=False),
)

# A used nonce, keyed by sha256(scope, nonce): LTI 1.1 nonces have no length limit, a digest always
# fits the key, and the primary key is what makes consume_nonce single-use.
nonces = _table(
    "nonces",
    Column("digest", ExactString(64), primary_key=True),
    Column("expires_at", Double, nullable=False),
    Index(None, "expires_at"),
)

# "login_states" replaced "oidc_states" (which lacked the relaunch columns); migration
# 0002_drop_oidc_states dropped the old table.
oidc_states = _table(
    "login_states",
    Column("state", ExactString(255), primary_key=True),
    Column("nonce", String(255), nullable=False),
    Column("issuer", String(255), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("target_link_uri", Text, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("login_hint", Text, nullable=False, default=""),
    Column("lti_message_hint", Text, nullable=False, default=""),
    Column("deployment_id", String(255), nullable=False, default=""),
    Column("storage_target", String(255), nullable=False, default=""),
    Index(None, "expires_at"),
)

# Newest first is (created, id) descending: the autoincrement id orders keys saved within the
# clock's resolution.
tool_keys = _table(
    "tool_keys",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kid", ExactString(255), nullable=False, unique=True),
    Column("private_pem", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),  # JSON
    Column("active", Boolean, nullable=False, default=True),
    Column("created", Double, nullable=False),
)

# Permanent: (platform, platform user id) -> JupyterHub username. No foreign key: the hub's users
# table is JupyterHub's (and may be in another database); a link outlives a deleted hub user, so
# the same person comes back as the same name. Indexed by username too: find_user_links runs on
# logins.
user_links = _table(
    "user_links",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("platform", ExactString(255), nullable=False),
    Column("platform_user_id", ExactString(255), nullable=False),
    Column("local_user_id", ExactString(255), nullable=False),
    Column("created", Double, nullable=False),
    UniqueConstraint("platform", "platform_user_id"),
    Index(None, "local_user_id"),
)


# The latest launch of (platform, platform user id, resource link), for grade and roster jobs run
# without a browser (and without JupyterHub's auth_state). ``local_user_id`` is the hub username (no
# foreign key, as user_links); ``roles`` a JSON list, ``services`` LaunchServices.as_dict() in JSON.
# The key's name is spelt out: the naming convention's would pass PostgreSQL's 63 characters.
launch_contexts = _table(
    "launch_contexts",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("platform", ExactString(255), nullable=False),
    Column("platform_user_id", ExactString(255), nullable=False),
    Column("resource_link_id", ExactString(255), nullable=False),
    Column("local_user_id", ExactString(255), nullable=False),
    Column("context_id", ExactString(255), nullable=False, default=""),
    Column("deployment_id", ExactString(255), nullable=False, default=""),
    Column("client_id", ExactString(255), nullable=False, default=""),
    Column("lti_version", String(16), nullable=False),
    Column("role", String(16), nullable=False),
    Column("roles", Text, nullable=False),  # JSON
    Column("message_type", String(255), nullable=False),
    Column("services", Text, nullable=False),  # JSON
    Column("updated_at", Double, nullable=False),
    UniqueConstraint("platform", "platform_user_id", "resource_link_id", name="lti_publish_launch_contexts_launch_key"),
    Index(None, "local_user_id"),
)


def _is_memory_sqlite(url: URL) -> bool:
    return url.get_backend_name() == "sqlite" and (url.database or "") in ("", ":memory:")


def default_store_url(hub_db_url: str) -> str:
    """Where the store lives when the hub's configuration does not say: given JupyterHub's ``db_url``.

    SQLite: ``lti_publish.sqlite`` in the hub database's directory (relative URLs stay relative,
    to the same working directory), not the hub's file itself: SQLite writers queue on one lock per
    file, and the store turns its file to WAL mode, whose latest writes a copy of the main file alone
    (upgrade-db's backup) can miss while connections are open. An in-memory hub gets an in-memory
    store. Any other database: the hub's own, where the store's prefixed tables sit beside
    JupyterHub's.
    """
    url = make_url(hub_db_url)
    if url.get_backend_name() != "sqlite":
        return hub_db_url
    if _is_memory_sqlite(url):
        return "sqlite://"
    database = os.path.join(os.path.dirname(url.database or ""), SQLITE_FILE_NAME)
    return url.set(database=database).render_as_string(hide_password=False)


def describe_url(url: str) -> str:
    """``url`` for logs: the password (in the URL or its query) masked."""
    try:
        parsed = make_url(url)
    except ArgumentError:
        return "<unparsable database URL>"
    query = {k: "***" if "password" in k.lower() else v for k, v in parsed.query.items()}
    return parsed.set(query=query).render_as_string(hide_password=True)


def _sqlite_pragmas(file_database: bool) -> Callable[[Any, ConnectionPoolEntry], None]:
    def on_connect(dbapi_connection: Any, connection_record: ConnectionPoolEntry) -> None:
        cursor = dbapi_connection.cursor()
        try:
            if file_database:
                # The hub calls the store from its event loop: WAL lets readers run beside the
                # writer, and synchronous=NORMAL spares an fsync per launch (a crash may lose the
                # last transactions, never corrupt the file).
                cursor.execute("PRAGMA journal_mode=WAL")
                cursor.execute("PRAGMA synchronous=NORMAL")
            cursor.execute("PRAGMA foreign_keys=ON")
        finally:
            cursor.close()

    return on_connect


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


class SqlAlchemyStore:
    """Implements every Protocol of lti_core.store on SQLite, PostgreSQL, MySQL or MariaDB.

    ``url`` is an SQLAlchemy URL; ``engine_kwargs`` go to ``create_engine`` (``connect_args`` are
    merged with the store's own). Opening a store is enough: it creates its tables, or upgrades them,
    to the newest migration revision. ``cache_size``, ``cache_ttl`` and ``clock`` set the caches of
    registrations and user links (``TtlLruCache``; a ``cache_size`` of 0 turns them off).
    """

    #: Entries per cache: a hub's active platform users, roughly; ~1 MB at most.
    CACHE_SIZE = 4096
    #: Seconds an entry is served before the database is asked again.
    CACHE_TTL = 60.0

    def __init__(
        self,
        url: str,
        *,
        cache_size: int = CACHE_SIZE,
        cache_ttl: float = CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
        **engine_kwargs: Any,
    ) -> None:
        parsed = make_url(url)
        backend = parsed.get_backend_name()
        if backend not in SUPPORTED_BACKENDS:
            raise ValueError(f"lti-publish's store runs on {', '.join(SUPPORTED_BACKENDS)}, not {backend}")
        self.url = parsed
        connect_args: dict[str, Any] = {}
        kwargs = dict(engine_kwargs)
        memory = _is_memory_sqlite(parsed)
        # One in-memory SQLite database exists per connection: every thread must use the same one
        # (StaticPool), and take turns on it (a connection holds one transaction at a time).
        self._serial: AbstractContextManager[Any] = threading.Lock() if memory else nullcontext()
        if memory:
            connect_args["check_same_thread"] = False
            kwargs.setdefault("poolclass", StaticPool)
        elif backend == "sqlite":
            # Wait for the writer ahead (up to 20 s) rather than fail with "database is locked".
            connect_args["timeout"] = 20
        else:
            # Servers drop idle connections (MySQL's wait_timeout); the hub runs for months.
            kwargs.setdefault("pool_pre_ping", True)
            if backend in ("mysql", "mariadb") and parsed.get_driver_name() in ("mysqldb", "pymysql"):
                if "charset" not in parsed.query:
                    parsed = parsed.update_query_dict({"charset": "utf8mb4"})
        connect_args.update(kwargs.pop("connect_args", {}))
        self.engine = create_engine(parsed, connect_args=connect_args, **kwargs)
        # Read on every login and launch, written almost never: kept in memory, they save two
        # database round trips per launch. Bounded (a hub serves any number of platform users over
        # its months of uptime) and expiring: this process's writes invalidate their entries at
        # once, but another process writing the same database (a second hub on it, an admin's
        # script, a link deleted by hand) is only seen when the entry expires. Only rows found are
        # cached, so a registration or link made elsewhere is seen at its first use.
        self._registration_cache: TtlLruCache[tuple[str, str], Registration] = TtlLruCache(
            cache_size, cache_ttl, clock
        )
        self._link_cache: TtlLruCache[tuple[str, str], UserLink] = TtlLruCache(cache_size, cache_ttl, clock)
        if backend == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas(file_database=not memory))
        with self._serial, self.engine.begin() as connection:
            migrations.upgrade(connection)

    def __repr__(self) -> str:
        return f"SqlAlchemyStore({describe_url(self.url.render_as_string(hide_password=False))!r})"

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        self.engine.dispose()

    @contextmanager
    def _begin(self) -> Iterator[Connection]:
        """One short transaction: committed on success, rolled back on any exception."""
        with self._serial, self.engine.begin() as connection:
            yield connection

    def _upsert(
        self,
        connection: Connection,
        table: Table,
        keys: Mapping[str, Any],
        values: Mapping[str, Any],
        on_insert: Mapping[str, Any] | None = None,
    ) -> None:
        """Insert the row ``keys`` identify, or update ``values`` on it: one atomic statement.

        The database's own upsert rather than UPDATE-then-INSERT: two first saves racing would make
        one fail on the unique key (and on MySQL, deadlock on the gap locks the UPDATEs took).
        ``on_insert`` columns (creation times) are only written to a new row.
        """
        row = {**keys, **values, **(on_insert or {})}
        name = connection.dialect.name
        if name == "postgresql":
            pg = postgresql.insert(table).values(row)
            connection.execute(pg.on_conflict_do_update(index_elements=list(keys), set_=dict(values)))
        elif name == "sqlite":
            lite = sqlite.insert(table).values(row)
            connection.execute(lite.on_conflict_do_update(index_elements=list(keys), set_=dict(values)))
        else:  # mysql, mariadb
            my = mysql.insert(table).values(row)
            connection.execute(my.on_duplicate_key_update({k: my.inserted[k] for k in values}))

    # registrations ---------------------------------------------------------------------------
    @staticmethod
    def _registrations(rows: Sequence[Row[Any]]) -> list[Registration]:
        """Registrations from rows of registration columns joined to each of its deployments."""
        found: dict[int, tuple[Row[Any], list[Deployment]]] = {}
        for row in rows:
            _, deployed = found.setdefault(row.id, (row, []))
            if row.deployment_id is not None:
                deployed.append(Deployment(row.deployment_id, row.label))
        return [
            Registration(
                issuer=row.issuer,
                client_id=row.client_id,
                auth_login_url=row.auth_login_url,
                auth_token_url=row.auth_token_url,
                key_set_url=row.key_set_url,
                deployments=tuple(deployed),
                name=row.name,
                any_deployment=bool(row.any_deployment),
            )
            for row, deployed in found.values()
        ]

    def _select_registrations(self, *where: Any) -> list[Registration]:
        # One statement, so a registration and its deployments are read from the same snapshot
        # (SQLite's driver runs reads outside transactions).
        query = (
            select(registrations, deployments.c.deployment_id, deployments.c.label)
            .select_from(registrations.outerjoin(deployments))
            .where(*where)
            .order_by(registrations.c.client_id, registrations.c.id, deployments.c.id)
        )
        with self._begin() as connection:
            return self._registrations(connection.execute(query).all())

    def get_registration(self, issuer: str, client_id: str) -> Registration | None:
        cached = self._registration_cache.get((issuer, client_id))
        if cached is not None:
            return cached
        generation = self._registration_cache.generation()
        found = self._select_registrations(registrations.c.issuer == issuer, registrations.c.client_id == client_id)
        if found:
            self._registration_cache.put((issuer, client_id), found[0], generation)
        return found[0] if found else None

    def find_registrations(self, issuer: str) -> list[Registration]:
        return self._select_registrations(registrations.c.issuer == issuer)

    def save_registration(self, registration: Registration) -> None:
        try:
            self._save_registration(registration)
        finally:
            # After the commit: a read that began before it cannot fill the cache any more.
            self._registration_cache.invalidate((registration.issuer, registration.client_id))

    def _save_registration(self, registration: Registration) -> None:
        key = {"issuer": registration.issuer, "client_id": registration.client_id}
        with self._begin() as connection:
            self._upsert(
                connection,
                registrations,
                key,
                {
                    "name": registration.name,
                    "auth_login_url": registration.auth_login_url,
                    "auth_token_url": registration.auth_token_url,
                    "key_set_url": registration.key_set_url,
                    "any_deployment": registration.any_deployment,
                },
                on_insert={"created": time.time()},
            )
            registration_id = connection.execute(
                select(registrations.c.id).where(*(registrations.c[k] == v for k, v in key.items()))
            ).scalar_one()
            wanted = [d.deployment_id for d in registration.deployments]
            connection.execute(
                delete(deployments).where(
                    deployments.c.registration_id == registration_id, deployments.c.deployment_id.not_in(wanted)
                )
            )
            # Kept deployments keep their rows (and place: deployments read back in row order).
            for deployment in registration.deployments:
                self._upsert(
                    connection,
                    deployments,
                    {"registration_id": registration_id, "deployment_id": deployment.deployment_id},
                    {"label": deployment.label},
                )

    # LTI 1.1 consumers -----------------------------------------------------------------------
    def get_consumer(self, key: str) -> Consumer | None:
        with self._begin() as connection:
            row = connection.execute(
                select(consumers.c.key, consumers.c.secret, consumers.c.name).where(consumers.c.key == key)
            ).first()
        return Consumer(row.key, row.secret, row.name) if row else None

    def save_consumer(self, consumer: Consumer) -> None:
        with self._begin() as connection:
            self._upsert(
                connection,
                consumers,
                {"key": consumer.key},
                {"secret": consumer.secret, "name": consumer.name},
                on_insert={"created": time.time()},
            )

    # nonces and OIDC state -------------------------------------------------------------------
    def consume_nonce(self, scope: str, nonce: str, expires_at: float, now: float) -> bool:
        digest = nonce_digest(scope, nonce)
        try:
            with self._begin() as connection:
                connection.execute(insert(nonces).values(digest=digest, expires_at=expires_at))
            return True
        except IntegrityError:
            pass
        # Seen before. Only an expired record may be reused, and the conditional UPDATE lets exactly
        # one of two racing requests win it: the second one's WHERE no longer matches the row the
        # first one rewrote (PostgreSQL re-checks it after the first commits; InnoDB and SQLite
        # update the latest row version).
        with self._begin() as connection:
            result = connection.execute(
                update(nonces)
                .where(nonces.c.digest == digest, nonces.c.expires_at <= now)
                .values(expires_at=expires_at)
            )
            return result.rowcount == 1

    def save_state(self, state: OidcState) -> None:
        with self._begin() as connection:
            connection.execute(
                insert(oidc_states).values(**dataclasses.asdict(state))
            )

    def get_state(self, state: str, now: float) -> OidcState | None:
        with self._begin() as connection:
            row = connection.execute(
                select(oidc_states).where(oidc_states.c.state == state, oidc_states.c.expires_at > now)
            ).first()
        if row is None:
            return None
        return OidcState(**{name: getattr(row, name) for name in STATE_FIELDS})

    def delete_state(self, state: str) -> None:
        with self._begin() as connection:
            connection.execute(delete(oidc_states).where(oidc_states.c.state == state))

    def purge_expired(self, now: float) -> int:
        with self._begin() as connection:
            states = connection.execute(delete(oidc_states).where(oidc_states.c.expires_at <= now)).rowcount
            used = connection.execute(delete(nonces).where(nonces.c.expires_at <= now)).rowcount
        return states + used

    # tool keys -------------------------------------------------------------------------------
    def list_tool_keys(self) -> list[ToolKey]:
        query = select(tool_keys).order_by(tool_keys.c.created.desc(), tool_keys.c.id.desc())
        with self._begin() as connection:
            rows = connection.execute(query).all()
        return [ToolKey(r.kid, r.private_pem, dict(json.loads(r.public_jwk)), bool(r.active)) for r in rows]

    def save_tool_key(self, key: ToolKey) -> None:
        with self._begin() as connection:
            self._upsert(
                connection,
                tool_keys,
                {"kid": key.kid},
                {"private_pem": key.private_pem, "public_jwk": json.dumps(key.public_jwk), "active": key.active},
                on_insert={"created": time.time()},
            )

    def set_tool_key_active(self, kid: str, active: bool) -> None:
        with self._begin() as connection:
            connection.execute(update(tool_keys).where(tool_keys.c.kid == kid).values(active=active))

    # user links ------------------------------------------------------------------------------
    def get_user_link(self, platform: str, platform_user_id: str) -> UserLink | None:
        cached = self._link_cache.get((platform, platform_user_id))
        if cached is not None:
            return cached
        generation = self._link_cache.generation()
        with self._begin() as connection:
            local_user_id = connection.execute(
                select(user_links.c.local_user_id).where(
                    user_links.c.platform == platform, user_links.c.platform_user_id == platform_user_id
                )
            ).scalar_one_or_none()
        if local_user_id is None:
            return None
        link = UserLink(platform, platform_user_id, local_user_id)
        self._link_cache.put((platform, platform_user_id), link, generation)
        return link

    def save_user_link(self, link: UserLink) -> UserLink:
        # Links never change once made, but one can be deleted by hand: like a registration, the
        # entry is dropped after the write, whatever its outcome, and the next read sees the database.
        try:
            return self._save_user_link(link)
        finally:
            self._link_cache.invalidate((link.platform, link.platform_user_id))

    def _save_user_link(self, link: UserLink) -> UserLink:
        try:
            with self._begin() as connection:
                connection.execute(
                    insert(user_links).values(
                        platform=link.platform,
                        platform_user_id=link.platform_user_id,
                        local_user_id=link.local_user_id,
                        created=time.time(),
                    )
                )
            return link
        except IntegrityError:
            existing = self.get_user_link(link.platform, link.platform_user_id)
            if existing is None:  # the row that refused us was deleted in between: nothing to keep
                raise
            return existing

    def find_user_links(self, local_user_id: str) -> list[UserLink]:
        with self._begin() as connection:
            rows = connection.execute(
                select(user_links.c.platform, user_links.c.platform_user_id)
                .where(user_links.c.local_user_id == local_user_id)
                .order_by(user_links.c.platform, user_links.c.platform_user_id)
            ).all()
        return [UserLink(platform, platform_user_id, local_user_id) for platform, platform_user_id in rows]

    # launch contexts -------------------------------------------------------------------------
    @staticmethod
    def _launch_context(row: Row[Any]) -> LaunchContext:
        return LaunchContext(
            platform=row.platform,
            platform_user_id=row.platform_user_id,
            local_user_id=row.local_user_id,
            resource_link_id=row.resource_link_id,
            context_id=row.context_id,
            deployment_id=row.deployment_id,
            client_id=row.client_id,
            lti_version=row.lti_version,
            role=Role(row.role),
            roles=tuple(json.loads(row.roles)),
            message_type=row.message_type,
            services=LaunchServices.from_dict(json.loads(row.services)),
            updated_at=row.updated_at,
        )

    def save_launch_context(self, context: LaunchContext) -> None:
        with self._begin() as connection:
            self._upsert(
                connection,
                launch_contexts,
                {
                    "platform": context.platform,
                    "platform_user_id": context.platform_user_id,
                    "resource_link_id": context.resource_link_id,
                },
                {
                    "local_user_id": context.local_user_id,
                    "context_id": context.context_id,
                    "deployment_id": context.deployment_id,
                    "client_id": context.client_id,
                    "lti_version": context.lti_version,
                    "role": context.role.value,
                    "roles": json.dumps(list(context.roles)),
                    "message_type": context.message_type,
                    "services": json.dumps(context.services.as_dict()),
                    "updated_at": context.updated_at,
                },
            )

    def get_launch_context(self, platform: str, platform_user_id: str, resource_link_id: str) -> LaunchContext | None:
        with self._begin() as connection:
            row = connection.execute(
                select(launch_contexts).where(
                    launch_contexts.c.platform == platform,
                    launch_contexts.c.platform_user_id == platform_user_id,
                    launch_contexts.c.resource_link_id == resource_link_id,
                )
            ).first()
        return self._launch_context(row) if row else None

    def find_launch_contexts(self, local_user_id: str) -> list[LaunchContext]:
        with self._begin() as connection:
            rows = connection.execute(
                select(launch_contexts)
                .where(launch_contexts.c.local_user_id == local_user_id)
                .order_by(launch_contexts.c.updated_at.desc(), launch_contexts.c.id.desc())
            ).all()
        return [self._launch_context(r) for r in rows]
