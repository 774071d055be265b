"""Alembic's environment for the store's history (see the package's docstring).

Run by ``jupyter_lti.migrations.upgrade`` on the connection the store hands over, in its
transaction. The version table is the store's own; autogenerate (``alembic revision
--autogenerate``, the schema comparison in the tests) sees only ``lti_publish_*`` tables, so it never
proposes to touch JupyterHub's, even in a shared database. Logging is left to the host: no
``fileConfig`` here, the hub's log settings stay as they are.
"""

from __future__ import annotations

from alembic import context
from sqlalchemy import Connection, create_engine
from sqlalchemy.pool import NullPool

from jupyter_lti.migrations import VERSION_TABLE, include_name
from jupyter_lti.store import metadata


def run_migrations(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        version_table=VERSION_TABLE,
        include_name=include_name,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite alters tables by copying them
    )
    with context.begin_transaction():
        context.run_migrations()


def main() -> None:
    if context.is_offline_mode():
        raise RuntimeError("the store's migrations run on a live database only")
    connection = context.config.attributes.get("connection")
    if connection is not None:
        run_migrations(connection)
        return
    # An `alembic` command line with its own configuration, naming the database in sqlalchemy.url.
    engine = create_engine(context.config.get_main_option("sqlalchemy.url") or "", poolclass=NullPool)
    try:
        with engine.begin() as own_connection:
            run_migrations(own_connection)
    finally:
        engine.dispose()


main()
