"""The hub's SQLAlchemy store beyond the Store contract (tests/test_store_contract.py): where it lives
by default, that it keeps to its own prefixed tables, that it can share a database with JupyterHub
without getting in the way of the hub or of `jupyterhub upgrade-db`, and SQLite under threads."""

from __future__ import annotations

import dataclasses
import os
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory
from jupyterhub import dbutil, orm
from sqlalchemy import create_engine, inspect, text

from jupyter_lti import migrations
from jupyter_lti.migrations import VERSION_TABLE, include_name
from jupyter_lti.store import SqlAlchemyStore, default_store_url, describe_url, metadata
from lti_core.lti13.tool_keys import generate_tool_key
from lti_core.records import TtlLruCache
from lti_core.types import Consumer, Deployment, OidcState, Registration, UserLink

STORE_TABLES = {
    "lti_publish_registrations",
    "lti_publish_deployments",
    "lti_publish_consumers",
    "lti_publish_nonces",
    "lti_publish_login_states",
    "lti_publish_tool_keys",
    "lti_publish_user_links",
    "lti_publish_launch_contexts",
    "lti_publish_grade_outbox",
    "lti_publish_pending_launches",
}
BIN = Path(sys.executable).parent
REGISTRATION = Registration(
    issuer="https://moodle.example",
    client_id="abc",
    auth_login_url="https://moodle.example/mod/lti/auth.php",
    auth_token_url="https://moodle.example/mod/lti/token.php",
    key_set_url="https://moodle.example/mod/lti/certs.php",
    deployments=(Deployment("2"),),
)


@pytest.mark.parametrize(
    ("hub_url", "store_url"),
    [
        ("sqlite:///jupyterhub.sqlite", "sqlite:///lti_publish.sqlite"),
        ("sqlite:///data/jupyterhub.sqlite", "sqlite:///data/lti_publish.sqlite"),
        ("sqlite:////srv/jupyterhub/jupyterhub.sqlite", "sqlite:////srv/jupyterhub/lti_publish.sqlite"),
        ("sqlite:////srv/hub.db?timeout=30", "sqlite:////srv/lti_publish.sqlite?timeout=30"),
        ("sqlite://", "sqlite://"),
        ("sqlite:///:memory:", "sqlite://"),
        ("postgresql://hub:s3cret@db.example/jupyterhub", "postgresql://hub:s3cret@db.example/jupyterhub"),
        (
            "mysql+pymysql://hub:p%40ss@db/jupyterhub?charset=utf8mb4",
            "mysql+pymysql://hub:p%40ss@db/jupyterhub?charset=utf8mb4",
        ),
    ],
)
def test_default_store_url(hub_url: str, store_url: str) -> None:
    assert default_store_url(hub_url) == store_url


def test_describe_url_hides_passwords() -> None:
    assert describe_url("postgresql://hub:s3cret@db.example/jupyterhub") == "postgresql://hub:***@db.example/jupyterhub"
    assert "s3cret" not in describe_url("postgresql://db.example/jupyterhub?user=hub&password=s3cret")
    assert describe_url("sqlite:////srv/lti_publish.sqlite") == "sqlite:////srv/lti_publish.sqlite"
    assert "s3cret" not in describe_url("not a url s3cret")


def test_databases_other_than_the_hubs_are_refused() -> None:
    with pytest.raises(ValueError, match="not mssql"):
        SqlAlchemyStore("mssql+pyodbc://hub:pw@db/jupyterhub")


def test_tables_are_prefixed_and_created_idempotently(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lti_publish.sqlite'}"
    first = SqlAlchemyStore(url)
    first.save_consumer(Consumer("key", "secret"))
    second = SqlAlchemyStore(url)  # the tables exist: nothing to create, nothing lost
    assert second.get_consumer("key") == Consumer("key", "secret")

    inspector = inspect(second.engine)
    assert set(inspector.get_table_names()) == STORE_TABLES | {VERSION_TABLE}
    for table in STORE_TABLES:
        names = [i["name"] for i in inspector.get_indexes(table)]
        names += [u["name"] for u in inspector.get_unique_constraints(table)]
        names += [f["name"] for f in inspector.get_foreign_keys(table)]
        assert all(name and name.startswith("lti_publish_") for name in names), names
    with second.engine.connect() as connection:
        assert connection.execute(text("PRAGMA journal_mode")).scalar() == "wal"
    first.close()
    second.close()


def _hub_head() -> str:
    head = ScriptDirectory(dbutil.ALEMBIC_DIR).get_current_head()
    assert head is not None
    return head


def _store_head() -> str:
    head = ScriptDirectory.from_config(migrations.config()).get_current_head()
    assert head is not None
    return head


def _alembic_versions(url: str, table: str = "alembic_version") -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text(f"SELECT version_num FROM {table}")).scalars())  # noqa: S608
    finally:
        engine.dispose()


def _run(*command: str | Path, cwd: Path) -> None:
    # dbutil.upgrade runs `alembic` from PATH.
    env = {**os.environ, "PATH": f"{BIN}{os.pathsep}{os.environ.get('PATH', '')}"}
    done = subprocess.run(command, cwd=cwd, env=env, capture_output=True, text=True, timeout=100)
    assert done.returncode == 0, f"{command} exited {done.returncode}:\n{done.stdout}\n{done.stderr}"


def _hub_users(url: str) -> list[str]:
    """Opens the database the way the hub does at startup (which checks its schema revision)."""
    session = orm.new_session_factory(url)()
    try:
        return [user.name for user in session.query(orm.User).order_by(orm.User.name)]
    finally:
        session.close()
        session.get_bind().dispose()


def test_store_beside_jupyterhub_survives_upgrade_db(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    assert _hub_users(url) == []  # JupyterHub creates its tables and stamps its revision
    session = orm.new_session_factory(url)()
    session.add(orm.User(name="alice"))
    session.commit()
    session.close()
    session.get_bind().dispose()

    store = SqlAlchemyStore(url)
    store.save_registration(REGISTRATION)
    store.save_consumer(Consumer("moodle-key", "moodle-secret", "Moodle"))
    store.save_user_link(UserLink("https://moodle.example", "2", "alice"))
    key = generate_tool_key()
    store.save_tool_key(key)
    now = time.time()
    assert store.consume_nonce("lti11:moodle-key", "n1", now + 3600, now)
    store.close()  # the hub is stopped while its database is upgraded
    assert _alembic_versions(url) == [_hub_head()]  # ours in a table of its own
    assert _alembic_versions(url, VERSION_TABLE) == [_store_head()]

    # One revision back, so that upgrade-db has a real migration to run with our tables present.
    ini = tmp_path / "alembic.ini"
    dbutil.write_alembic_ini(str(ini), url)
    _run(BIN / "alembic", "-c", ini, "downgrade", "-1", cwd=tmp_path)
    assert _alembic_versions(url) != [_hub_head()]
    workdir = tmp_path / "hub"
    workdir.mkdir()
    _run(BIN / "jupyterhub", "upgrade-db", f"--db={url}", cwd=workdir)

    assert _alembic_versions(url) == [_hub_head()]  # JupyterHub's revision, and nothing of ours
    assert _alembic_versions(url, VERSION_TABLE) == [_store_head()]  # and ours as it was
    engine = create_engine(url)
    assert STORE_TABLES <= set(inspect(engine).get_table_names())
    engine.dispose()
    assert _hub_users(url) == ["alice"]
    store = SqlAlchemyStore(url)
    assert store.get_registration(REGISTRATION.issuer, REGISTRATION.client_id) == REGISTRATION
    assert store.get_consumer("moodle-key") == Consumer("moodle-key", "moodle-secret", "Moodle")
    assert store.get_user_link("https://moodle.example", "2") == UserLink("https://moodle.example", "2", "alice")
    assert store.list_tool_keys() == [key]
    assert not store.consume_nonce("lti11:moodle-key", "n1", now + 3600, now)
    store.close()


def test_hub_starts_on_a_database_the_store_created_first(tmp_path: Path) -> None:
    """JupyterHub stamps a database holding none of its tables as new: ours must not look like its."""
    url = f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    store = SqlAlchemyStore(url)
    store.save_consumer(Consumer("moodle-key", "moodle-secret"))
    assert _hub_users(url) == []
    assert _alembic_versions(url) == [_hub_head()]
    assert _alembic_versions(url, VERSION_TABLE) == [_store_head()]
    assert store.get_consumer("moodle-key") == Consumer("moodle-key", "moodle-secret")
    store.close()


@pytest.mark.parametrize("database", ["file", "memory"])
def test_threads_racing_for_nonces_on_sqlite_have_one_winner_each(tmp_path: Path, database: str) -> None:
    """The hub's threads and SQLite's single writer: no "database is locked", no nonce used twice.

    Half of the nonces were used before and have expired, so the racers also meet on the
    conditional UPDATE that reclaims them, not only on the INSERT.
    """
    store = SqlAlchemyStore(f"sqlite:///{tmp_path / 'lti_publish.sqlite'}" if database == "file" else "sqlite://")
    now = time.time()
    nonces = [f"nonce-{i}" for i in range(40)]
    for nonce in nonces[::2]:
        assert store.consume_nonce("race", nonce, now - 1, now - 100)
    workers = 8
    barrier = threading.Barrier(workers)
    wins: list[str] = []
    errors: list[BaseException] = []

    def hammer(worker: int) -> None:
        barrier.wait()
        try:
            for nonce in nonces:
                if store.consume_nonce("race", nonce, now + 60, now):
                    wins.append(nonce)
                # Other writers in between, as launches interleave with logins.
                store.save_state(OidcState(f"{worker}-{nonce}", nonce, "https://moodle.example", "abc", "x", now + 60))
        except BaseException as error:  # noqa: BLE001 - reported below, from the test's thread
            errors.append(error)

    threads = [threading.Thread(target=hammer, args=(worker,)) for worker in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert errors == []
    assert sorted(wins) == sorted(nonces)
    assert store.purge_expired(now + 60) == len(nonces) + workers * len(nonces)
    store.close()


# -- the caches of registrations and user links ------------------------------------------------


class Clock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_changed_registration_is_seen_after_save() -> None:
    store = SqlAlchemyStore("sqlite://")
    store.save_registration(REGISTRATION)
    assert store.get_registration(REGISTRATION.issuer, REGISTRATION.client_id) == REGISTRATION  # now cached
    changed = dataclasses.replace(
        REGISTRATION, key_set_url="https://moodle.example/keys", deployments=(Deployment("3"),), any_deployment=True
    )
    store.save_registration(changed)
    assert store.get_registration(REGISTRATION.issuer, REGISTRATION.client_id) == changed
    store.close()


def test_the_caches_stay_bounded() -> None:
    store = SqlAlchemyStore("sqlite://", cache_size=10)
    for user in range(50):
        store.save_user_link(UserLink("https://moodle.example", str(user), f"user{user}"))
        assert store.get_user_link("https://moodle.example", str(user)) is not None
        store.save_registration(dataclasses.replace(REGISTRATION, client_id=str(user)))
        assert store.get_registration(REGISTRATION.issuer, str(user)) is not None
    assert len(store._link_cache) == len(store._registration_cache) == 10
    # Evicted entries are read again from the database.
    assert store.get_user_link("https://moodle.example", "0") == UserLink("https://moodle.example", "0", "user0")
    store.close()


def test_the_least_recently_used_entry_goes_first() -> None:
    cache: TtlLruCache[str, int] = TtlLruCache(2, 60.0, Clock())
    for key, value in (("a", 1), ("b", 2)):
        cache.put(key, value, cache.generation())
    assert cache.get("a") == 1  # b is now the least recently used
    cache.put("c", 3, cache.generation())
    assert (cache.get("a"), cache.get("b"), cache.get("c")) == (1, None, 3)


def test_a_read_that_began_before_a_write_does_not_fill_the_cache() -> None:
    cache: TtlLruCache[str, str] = TtlLruCache(10, 60.0, Clock())
    generation = cache.generation()  # a reader starts, and reads the row as it was
    cache.invalidate("key")  # a write commits meanwhile
    cache.put("key", "as it was", generation)
    assert cache.get("key") is None
    cache.put("key", "as it is", cache.generation())
    assert cache.get("key") == "as it is"


def test_another_stores_writes_are_seen_once_the_entries_expire(tmp_path: Path) -> None:
    """Two stores on one database (two processes, say): each invalidates only its own entries."""
    url = f"sqlite:///{tmp_path / 'lti_publish.sqlite'}"
    clock = Clock()
    reader, writer = SqlAlchemyStore(url, cache_ttl=60, clock=clock), SqlAlchemyStore(url)
    writer.save_registration(REGISTRATION)
    link = writer.save_user_link(UserLink("https://moodle.example", "2", "sam"))
    assert reader.get_registration(REGISTRATION.issuer, REGISTRATION.client_id) == REGISTRATION
    assert reader.get_user_link("https://moodle.example", "2") == link

    changed = dataclasses.replace(REGISTRATION, auth_login_url="https://moodle.example/login")
    writer.save_registration(changed)
    with writer.engine.begin() as connection:  # an admin removes the link by hand
        connection.execute(text("DELETE FROM lti_publish_user_links"))
    clock.now += 59
    assert reader.get_registration(REGISTRATION.issuer, REGISTRATION.client_id) == REGISTRATION  # still cached
    assert reader.get_user_link("https://moodle.example", "2") == link
    clock.now += 1
    assert reader.get_registration(REGISTRATION.issuer, REGISTRATION.client_id) == changed
    assert reader.get_user_link("https://moodle.example", "2") is None
    reader.close()
    writer.close()


# -- migrations ------------------------------------------------------------------------------------

#: ``lti_publish_oidc_states`` as the store's create_all made it before login_states replaced it.
LEGACY_OIDC_STATES = (
    "CREATE TABLE lti_publish_oidc_states (state VARCHAR(255) NOT NULL, nonce VARCHAR(255) NOT NULL, "
    "issuer VARCHAR(255) NOT NULL, client_id VARCHAR(255) NOT NULL, target_link_uri TEXT NOT NULL, "
    "expires_at FLOAT NOT NULL, CONSTRAINT lti_publish_oidc_states_pkey PRIMARY KEY (state))",
    "CREATE INDEX lti_publish_oidc_states_expires_at_idx ON lti_publish_oidc_states (expires_at)",
)


def _schema_differences(url: str) -> list[Any]:
    """What tells the database's tables from the store's ``metadata`` (alembic's autogenerate)."""
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(
                connection, opts={"include_name": include_name, "version_table": VERSION_TABLE}
            )
            return list(compare_metadata(context, metadata))
    finally:
        engine.dispose()


def test_a_new_database_is_created_at_the_head_revision(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'lti_publish.sqlite'}"
    SqlAlchemyStore(url).close()
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) == STORE_TABLES | {VERSION_TABLE}  # no alembic_version
    with engine.connect() as connection:
        assert migrations.current_revision(connection) == _store_head()
    engine.dispose()
    assert _schema_differences(url) == []
    SqlAlchemyStore(url).close()  # at the head: nothing to do
    assert _alembic_versions(url, VERSION_TABLE) == [_store_head()]


@pytest.mark.parametrize("made_by", ["create_all", "create_all before login_states"])
def test_a_database_made_by_create_all_is_stamped_and_upgraded(tmp_path: Path, made_by: str) -> None:
    """The store's tables without a version table: the previous code's create_all made them."""
    url = f"sqlite:///{tmp_path / 'lti_publish.sqlite'}"
    engine = create_engine(url)
    if made_by == "create_all":
        metadata.create_all(engine)  # what SqlAlchemyStore did before it had migrations
    else:  # a database of the oldest releases: oidc_states, not yet login_states
        # (nor launch_contexts, of revision 0003_launch_contexts: the upgrade creates it)
        later = {"lti_publish_login_states", "lti_publish_launch_contexts"}
        metadata.create_all(engine, tables=[t for t in metadata.sorted_tables if t.name not in later])
        with engine.begin() as connection:
            for statement in LEGACY_OIDC_STATES:
                connection.execute(text(statement))
    with engine.begin() as connection:
        connection.execute(
            text(
                "INSERT INTO lti_publish_consumers (key, secret, name, created)"
                " VALUES ('moodle-key', 'moodle-secret', 'Moodle', 1)"
            )
        )
    engine.dispose()

    store = SqlAlchemyStore(url)
    assert store.get_consumer("moodle-key") == Consumer("moodle-key", "moodle-secret", "Moodle")  # kept
    now = time.time()
    store.save_state(OidcState("s1", "n1", "https://moodle.example", "abc", "https://hub.example/", now + 60))
    assert store.get_state("s1", now) is not None
    store.close()
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) == STORE_TABLES | {VERSION_TABLE}  # oidc_states gone
    engine.dispose()
    assert _alembic_versions(url, VERSION_TABLE) == [_store_head()]
    assert _schema_differences(url) == []


def test_the_migrations_never_touch_jupyterhubs_version_table(tmp_path: Path) -> None:
    """A shared database: JupyterHub's tables and alembic_version are left exactly as they were."""
    url = f"sqlite:///{tmp_path / 'jupyterhub.sqlite'}"
    assert _hub_users(url) == []
    engine = create_engine(url)
    hub_tables = set(inspect(engine).get_table_names())
    engine.dispose()
    SqlAlchemyStore(url).close()
    engine = create_engine(url)
    assert set(inspect(engine).get_table_names()) == hub_tables | STORE_TABLES | {VERSION_TABLE}
    engine.dispose()
    assert _alembic_versions(url) == [_hub_head()]
    assert _alembic_versions(url, VERSION_TABLE) == [_store_head()]
    assert _schema_differences(url) == []  # JupyterHub's tables are none of the comparison's business


@pytest.mark.parametrize(
    "server",
    [pytest.param("postgresql", marks=pytest.mark.postgres), pytest.param("mariadb", marks=pytest.mark.mysql)],
)
@pytest.mark.parametrize("made_by", ["migrations", "create_all"])
def test_migrations_on_database_servers(server: str, made_by: str) -> None:
    from tests.test_store_contract import scratch_database

    with scratch_database(server) as url:
        if made_by == "create_all":
            engine = create_engine(url)
            metadata.create_all(engine)
            engine.dispose()
        SqlAlchemyStore(url).close()
        SqlAlchemyStore(url).close()
        assert _alembic_versions(url, VERSION_TABLE) == [_store_head()]
        assert _schema_differences(url) == []
