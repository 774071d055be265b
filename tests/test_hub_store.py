"""The hub's SQLAlchemy store beyond the Store contract (tests/test_store_contract.py): where it lives
by default, that it keeps to its own prefixed tables, that it can share a database with JupyterHub
without getting in the way of the hub or of `jupyterhub upgrade-db`, and SQLite under threads."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
from alembic.script import ScriptDirectory
from jupyterhub import dbutil, orm
from sqlalchemy import create_engine, inspect, text

from jupyter_lti.store import SqlAlchemyStore, default_store_url, describe_url
from lti_core.lti13.tool_keys import generate_tool_key
from lti_core.types import Consumer, Deployment, OidcState, Registration, UserLink

STORE_TABLES = {
    "lti_publish_registrations",
    "lti_publish_deployments",
    "lti_publish_consumers",
    "lti_publish_nonces",
    "lti_publish_login_states",
    "lti_publish_tool_keys",
    "lti_publish_user_links",
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
    assert set(inspector.get_table_names()) == STORE_TABLES
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


def _alembic_versions(url: str) -> list[str]:
    engine = create_engine(url)
    try:
        with engine.connect() as connection:
            return list(connection.execute(text("SELECT version_num FROM alembic_version")).scalars())
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
    assert _alembic_versions(url) == [_hub_head()]

    # One revision back, so that upgrade-db has a real migration to run with our tables present.
    ini = tmp_path / "alembic.ini"
    dbutil.write_alembic_ini(str(ini), url)
    _run(BIN / "alembic", "-c", ini, "downgrade", "-1", cwd=tmp_path)
    assert _alembic_versions(url) != [_hub_head()]
    workdir = tmp_path / "hub"
    workdir.mkdir()
    _run(BIN / "jupyterhub", "upgrade-db", f"--db={url}", cwd=workdir)

    assert _alembic_versions(url) == [_hub_head()]  # JupyterHub's revision, and nothing of ours
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
