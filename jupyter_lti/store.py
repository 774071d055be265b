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
loop). Every algorithm on these tables is lti_core's (``lti_core.records.RecordStore``); this module
holds the schema, the engine and the row operations. A change to the tables is a new migration
revision, and ``metadata`` below must match the head revision.
"""

from __future__ import annotations

import json
import os
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Connection,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    create_engine,
    delete,
    event,
    insert,
    select,
    true,
    update,
)
from sqlalchemy.dialects import mysql, postgresql, sqlite
from sqlalchemy.engine import URL, Dialect, Engine, make_url
from sqlalchemy.exc import ArgumentError, IntegrityError
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.pool import ConnectionPoolEntry, StaticPool
from sqlalchemy.schema import SchemaItem
from sqlalchemy.sql.compiler import TypeCompiler
from sqlalchemy.sql.elements import ColumnElement

from jupyter_lti import migrations
from lti_core.records import RecordStore, Row, Rows, exact_collation
from lti_core.sealing import Sealer

__all__ = ["SqlAlchemyStore", "default_store_url", "describe_url", "metadata"]

# Beside the hub's SQLite file (see default_store_url).
SQLITE_FILE_NAME = "lti_publish.sqlite"
TABLE_PREFIX = "lti_publish_"
# The databases whose exact comparison of identifiers this module has made sure of (see ExactString).
SUPPORTED_BACKENDS = ("sqlite", "postgresql", "mysql", "mariadb")


class ExactString(String):
    """VARCHAR for identifiers (issuers, client and deployment ids, consumer keys, nonce digests, OIDC
    states, key ids, platform and local user ids): equal only if identical, on every database.

    On MySQL and MariaDB the column gets lti_core's binary collation (``exact_collation``), chosen
    when the table is created from the server actually connected to. Comparisons follow the column's
    collation whatever the connection's, so queries need nothing special.
    """


class JsonText(TypeDecorator[Any]):
    """A list or dict kept as JSON text (TEXT on every database, as the migrations made it)."""

    impl = Text
    cache_ok = True

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else json.dumps(value)

    def process_result_value(self, value: str | None, dialect: Dialect) -> Any:
        return None if value is None else json.loads(value)


def _mysql_collation(dialect: Dialect) -> str:
    version = tuple(v for v in dialect.server_version_info or () if isinstance(v, int))
    return exact_collation("mysql", mariadb=bool(getattr(dialect, "is_mariadb", False)), version=version) or ""


@compiles(ExactString, "mysql", "mariadb")
def _compile_exact_string_mysql(type_: ExactString, compiler: TypeCompiler, **kw: Any) -> str:
    return f"VARCHAR({type_.length}) CHARACTER SET utf8mb4 COLLATE {_mysql_collation(compiler.dialect)}"


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
    Column("created", Double, nullable=False, default=time.time),
    # lti_core.types.RegistrationStatus; added by migration 0004_registration_status.
    Column("status", String(16), nullable=False, default="active", server_default="active"),
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
    # Text since 0006_consumer_secret_text: sealed at rest (lti_core.sealing), a secret grows.
    Column("secret", Text, nullable=False),
    Column("name", String(255), nullable=False, default=""),
    Column("created", Double, nullable=False, default=time.time),
    # Added by migration 0005_consumer_enabled_key_times.
    Column("enabled", Boolean, nullable=False, default=True, server_default=true()),
    # The LTI 1.3 issuer its platform moved to (lti_core.lti13.migration); added by 0009.
    Column("migrated_to", String(255), nullable=False, default="", server_default=""),
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
    Column("public_jwk", JsonText, nullable=False),
    Column("active", Boolean, nullable=False, default=True),
    Column("created", Double, nullable=False, default=time.time),
    # lti_core.types.ToolKey's times; added by migration 0005_consumer_enabled_key_times.
    Column("created_at", Double, nullable=False, default=0.0, server_default="0"),
    Column("retires_at", Double, nullable=False, default=0.0, server_default="0"),
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
    Column("created", Double, nullable=False, default=time.time),
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
    Column("roles", JsonText, nullable=False),
    Column("message_type", String(255), nullable=False),
    Column("services", JsonText, nullable=False),
    Column("updated_at", Double, nullable=False),
    # The launch's target_link_uri (the notebook or assignment it opens); added by 0008.
    Column("content_id", ExactString(255), nullable=False, default="", server_default=""),
    Column("resource_link_title", String(255), nullable=False, default="", server_default=""),
    UniqueConstraint("platform", "platform_user_id", "resource_link_id", name="lti_publish_launch_contexts_launch_key"),
    Index(None, "local_user_id"),
    Index(None, "content_id"),
)

# The durable grade outbox (lti_core.outbox): one row per (platform, platform user, target), keyed by
# sha256 of the three (``key_digest``): a target (a line item URL, or an outcome service URL and a
# sourcedid) has no length limit, and would pass MySQL's index limit. Workers claim due rows by
# (state, next_attempt_at). Added by migration 0007_grade_outbox.
grade_outbox = _table(
    "grade_outbox",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key_digest", ExactString(64), nullable=False, unique=True),
    Column("platform", ExactString(255), nullable=False),
    Column("platform_user_id", ExactString(255), nullable=False),
    Column("target", Text, nullable=False),
    Column("kind", String(16), nullable=False),
    Column("score_given", Double, nullable=True),
    Column("score_maximum", Double, nullable=True),
    Column("activity_progress", String(32), nullable=False),
    Column("grading_progress", String(32), nullable=False),
    Column("comment", Text, nullable=False),
    Column("score_timestamp", Double, nullable=False),
    Column("state", String(16), nullable=False),
    Column("version", Integer, nullable=False),
    Column("attempts", Integer, nullable=False),
    Column("next_attempt_at", Double, nullable=False),
    Column("last_status", Integer, nullable=False),
    Column("last_error", Text, nullable=False),
    Column("claimed_by", String(255), nullable=False),
    Column("claim_expires_at", Double, nullable=False),
    Column("delivered_at", Double, nullable=False),
    Column("updated_at", Double, nullable=False),
    Index(None, "state", "next_attempt_at"),
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


class SqlRows:
    """lti_core's ``Rows`` on one table: each call in the transaction of ``SqlTables.atomic`` if one
    is open on this thread, else in a short one of its own."""

    def __init__(self, table: Table, tables: SqlTables) -> None:
        self._table, self._tables = table, tables

    def _where(
        self, where: Mapping[str, Any], live_at: float | None, expired_at: float | None, due_at: float | None = None
    ) -> list[ColumnElement[bool]]:
        columns = self._table.c
        clauses = [columns[name] == value for name, value in where.items()]
        if live_at is not None:
            clauses.append(columns.expires_at > live_at)
        if expired_at is not None:
            clauses.append(columns.expires_at <= expired_at)
        if due_at is not None:
            clauses.append(columns.next_attempt_at <= due_at)
        return clauses

    def insert(self, row: Mapping[str, Any]) -> bool:
        try:
            with self._tables.connection(savepoint=True) as connection:
                connection.execute(insert(self._table).values(dict(row)))
            return True
        except IntegrityError:
            return False

    def upsert(self, key: Mapping[str, Any], values: Mapping[str, Any]) -> None:
        """The database's own upsert, one statement: two first saves racing with UPDATE-then-INSERT
        would make one fail on the unique key (and, on MySQL, deadlock on the gap locks taken)."""
        row = {**key, **values}
        with self._tables.connection() as connection:
            name = connection.dialect.name
            if name in ("postgresql", "sqlite"):
                upsert = (postgresql if name == "postgresql" else sqlite).insert(self._table).values(row)
                connection.execute(upsert.on_conflict_do_update(index_elements=list(key), set_=dict(values)))
            else:  # mysql, mariadb
                my = mysql.insert(self._table).values(row)
                connection.execute(my.on_duplicate_key_update({k: my.inserted[k] for k in values}))

    def select(
        self,
        where: Mapping[str, Any],
        *,
        live_at: float | None = None,
        due_at: float | None = None,
        limit: int | None = None,
    ) -> list[Row]:
        query = select(self._table).where(*self._where(where, live_at, None, due_at))
        query = query.order_by(*self._table.primary_key.columns)
        if limit is not None:
            query = query.limit(limit)
        with self._tables.connection() as connection:
            rows = connection.execute(query).mappings().all()
        return [dict(row) for row in rows]

    def update(self, where: Mapping[str, Any], values: Mapping[str, Any], *, expired_at: float | None = None) -> int:
        statement = update(self._table).where(*self._where(where, None, expired_at)).values(dict(values))
        with self._tables.connection() as connection:
            return int(connection.execute(statement).rowcount)

    def delete(self, where: Mapping[str, Any], *, expired_at: float | None = None) -> int:
        statement = delete(self._table).where(*self._where(where, None, expired_at))
        with self._tables.connection() as connection:
            return int(connection.execute(statement).rowcount)


# A first launch waiting for the person's choice (lti_core.prompt); ``launch`` is Launch.as_record().
# Digests of the browser's secrets only, never the secrets. Added by migration 0009.
pending_launches = _table(
    "pending_launches",
    Column("pending_id", ExactString(64), primary_key=True),
    Column("launch", JsonText, nullable=False),
    Column("content_id", Text, nullable=False),
    Column("state", String(16), nullable=False),
    Column("may_create", Boolean, nullable=False),
    Column("binding", ExactString(64), nullable=False),
    Column("handover", ExactString(64), nullable=False),
    Column("form_token_digest", ExactString(64), nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("account", ExactString(255), nullable=False, default=""),
    Column("suggested_username", String(255), nullable=False, default=""),
    Index(None, "expires_at"),
)

TABLES = {
    "registrations": registrations,
    "deployments": deployments,
    "consumers": consumers,
    "nonces": nonces,
    "states": oidc_states,
    "tool_keys": tool_keys,
    "user_links": user_links,
    "launch_contexts": launch_contexts,
    "grade_outbox": grade_outbox,
    "pending_launches": pending_launches,
}


class SqlTables:
    """lti_core's ``Tables`` on an engine; ``serial`` is held around each transaction (an in-memory
    SQLite database is one connection, which threads must take turns on)."""

    def __init__(self, engine: Engine, serial: AbstractContextManager[Any]) -> None:
        self.engine, self._serial = engine, serial
        self._local = threading.local()
        self._rows = {name: SqlRows(table, self) for name, table in TABLES.items()}

    def rows(self, table: str) -> Rows:
        return self._rows[table]

    @contextmanager
    def connection(self, *, savepoint: bool = False) -> Iterator[Connection]:
        """This thread's open transaction (in a savepoint, for a write that may fail alone), else a
        new transaction: committed on success, rolled back on any exception."""
        current: Connection | None = getattr(self._local, "connection", None)
        if current is None:
            with self._serial, self.engine.begin() as connection:
                yield connection
        elif savepoint:
            with current.begin_nested():
                yield current
        else:
            yield current

    @contextmanager
    def atomic(self) -> Iterator[None]:
        if getattr(self._local, "connection", None) is not None:
            yield  # already in this thread's transaction
            return
        with self.connection() as connection:
            self._local.connection = connection
            try:
                yield
            finally:
                self._local.connection = None


class SqlAlchemyStore(RecordStore):
    """Every Protocol of lti_core.store on SQLite, PostgreSQL, MySQL or MariaDB.

    ``url`` is an SQLAlchemy URL; ``engine_kwargs`` go to ``create_engine`` (``connect_args`` are
    merged with the store's own). Opening a store is enough: it creates its tables, or upgrades them,
    to the newest migration revision. ``cache_size``, ``cache_ttl`` and ``clock`` set the caches of
    registrations and user links (lti_core's ``TtlLruCache``; a ``cache_size`` of 0 turns them off):
    on the hub, one process, they save two database round trips per launch.
    ``sealer`` (``lti_core.sealing``) encrypts private keys and consumer secrets at rest.
    """

    def __init__(
        self,
        url: str,
        *,
        cache_size: int = RecordStore.CACHE_SIZE,
        cache_ttl: float = RecordStore.CACHE_TTL,
        clock: Callable[[], float] = time.monotonic,
        sealer: Sealer | None = None,
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
        serial: AbstractContextManager[Any] = threading.RLock() if memory else nullcontext()
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
        if backend == "sqlite":
            event.listen(self.engine, "connect", _sqlite_pragmas(file_database=not memory))
        with serial, self.engine.begin() as connection:
            migrations.upgrade(connection)
        super().__init__(
            SqlTables(self.engine, serial), cache_size=cache_size, cache_ttl=cache_ttl, clock=clock, sealer=sealer
        )

    def __repr__(self) -> str:
        return f"SqlAlchemyStore({describe_url(self.url.render_as_string(hide_password=False))!r})"

    def close(self) -> None:
        """Close the pooled connections (a later call opens new ones)."""
        self.engine.dispose()
