"""The hub store's schema history: Alembic migrations of the ``lti_publish_*`` tables, and nothing else.

The store may share its database with JupyterHub, which keeps its own Alembic history in
``alembic_version`` and runs it with ``jupyterhub upgrade-db``. This history is a separate one: its
revisions are recorded in ``lti_publish_alembic_version`` (``VERSION_TABLE``), ``env.py`` only
ever looks at tables named ``lti_publish_*``, and it runs when the store opens
(``SqlAlchemyStore`` calls ``upgrade``), never from JupyterHub's commands. So neither history
reads or writes the other's version table, and upgrading one never touches the other's tables.

Layout: ``env.py`` (Alembic's environment: the connection the store hands over, the version table),
``versions/`` (one file per revision, ids ``NNNN_what``), ``baseline.py`` (the tables as they were
when the store still made them with ``metadata.create_all``, frozen) and ``script.py.mako`` (the
template of new revisions). A new revision, from the repository's root::

    .venv/bin/python -c "from alembic import command; from jupyter_lti.migrations import config; \\
        command.revision(config(), 'add something', rev_id='0003_add_something')"

then write its ``upgrade`` (and ``downgrade``) by hand, and change ``jupyter_lti.store``'s tables
to match: ``tests/test_hub_store.py`` checks that the head revision makes exactly those tables.

Databases made before this history existed (by ``create_all``) have the store's tables but no
version table: ``upgrade`` recognises them, creates whatever baseline table such an old database
lacks (as ``create_all`` would have), stamps the baseline, then upgrades to the head like any other.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import Connection, inspect

__all__ = ["BASELINE", "TABLE_PREFIX", "VERSION_TABLE", "config", "current_revision", "include_name", "upgrade"]

#: Where this history records its revision: never JupyterHub's ``alembic_version``.
VERSION_TABLE = "lti_publish_alembic_version"
#: The first revision: the tables ``create_all`` made before there were migrations.
BASELINE = "0001_baseline"
TABLE_PREFIX = "lti_publish_"
HERE = Path(__file__).resolve().parent


def config(connection: Connection | None = None) -> Config:
    """Alembic's configuration for this history (no alembic.ini: nothing to install beside the code).

    ``env.py`` runs the migrations on ``connection``, in its transaction.
    """
    alembic_config = Config()
    alembic_config.set_main_option("script_location", str(HERE))
    # versions/v0003_add_something.py: a module name mypy and the wheel's package take.
    alembic_config.set_main_option("file_template", "v%%(rev)s")
    alembic_config.attributes["connection"] = connection
    return alembic_config


def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    """Only the store's tables are any of this history's business (autogenerate's ``include_name``)."""
    return type_ != "table" or bool(name and name.startswith(TABLE_PREFIX))


def current_revision(connection: Connection) -> str | None:
    """The revision recorded in the store's version table (None: no history recorded yet)."""
    context = MigrationContext.configure(connection, opts={"version_table": VERSION_TABLE})
    return context.get_current_revision()


def upgrade(connection: Connection) -> None:
    """Bring the store's tables to the newest revision, on ``connection`` and in its transaction."""
    from jupyter_lti.migrations.baseline import BASELINE_METADATA  # imports the store's column types

    alembic_config = config(connection)
    tables = set(inspect(connection).get_table_names())
    if VERSION_TABLE not in tables and tables & set(BASELINE_METADATA.tables):
        # Made by create_all: the baseline's tables, less those created later than the database
        # (login_states). Complete it as create_all did, then record it as the baseline.
        BASELINE_METADATA.create_all(connection, checkfirst=True)
        command.stamp(alembic_config, BASELINE)
    command.upgrade(alembic_config, "head")
