"""The store's tables as ``metadata.create_all`` made them before the store had migrations. Frozen.

Revision ``0001_baseline`` creates them on a new database; ``upgrade`` completes an existing
create_all database with them before stamping it. Never edit this file: a change to the tables is
a new revision (see the package's docstring). The column types are the store's own, whose DDL
(``ExactString``'s binary collation on MySQL and MariaDB) is part of these definitions.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy import (
    Boolean,
    Column,
    Double,
    ForeignKey,
    Index,
    Integer,
    MetaData,
    String,
    Table,
    Text,
    UniqueConstraint,
)

from jupyter_lti.store import ExactString

BASELINE_METADATA = MetaData(
    naming_convention={
        "pk": "%(table_name)s_pkey",
        "uq": "%(table_name)s_%(column_0_N_name)s_key",
        "ix": "%(table_name)s_%(column_0_N_name)s_idx",
        "fk": "%(table_name)s_%(column_0_name)s_fkey",
        "ck": "%(table_name)s_%(constraint_name)s_check",
    }
)

_MYSQL_TABLE_OPTIONS: dict[str, Any] = {
    f"{dialect}_{option}": value
    for dialect in ("mysql", "mariadb")
    for option, value in {"engine": "InnoDB", "charset": "utf8mb4", "row_format": "DYNAMIC"}.items()
}


def _table(name: str, *items: Any) -> Table:
    return Table("lti_publish_" + name, BASELINE_METADATA, *items, **_MYSQL_TABLE_OPTIONS)


_registrations = _table(
    "registrations",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("issuer", ExactString(255), nullable=False),
    Column("client_id", ExactString(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("auth_login_url", String(1024), nullable=False),
    Column("auth_token_url", String(1024), nullable=False),
    Column("key_set_url", String(1024), nullable=False),
    Column("any_deployment", Boolean, nullable=False),
    Column("created", Double, nullable=False),
    UniqueConstraint("issuer", "client_id"),
)

_table(
    "deployments",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("registration_id", Integer, ForeignKey(_registrations.c.id, ondelete="CASCADE"), nullable=False),
    Column("deployment_id", ExactString(255), nullable=False),
    Column("label", String(255), nullable=False),
    UniqueConstraint("registration_id", "deployment_id"),
)

_table(
    "consumers",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", ExactString(255), nullable=False, unique=True),
    Column("secret", String(255), nullable=False),
    Column("name", String(255), nullable=False),
    Column("created", Double, nullable=False),
)

_table(
    "nonces",
    Column("digest", ExactString(64), primary_key=True),
    Column("expires_at", Double, nullable=False),
    Index(None, "expires_at"),
)

_table(
    "login_states",
    Column("state", ExactString(255), primary_key=True),
    Column("nonce", String(255), nullable=False),
    Column("issuer", String(255), nullable=False),
    Column("client_id", String(255), nullable=False),
    Column("target_link_uri", Text, nullable=False),
    Column("expires_at", Double, nullable=False),
    Column("login_hint", Text, nullable=False),
    Column("lti_message_hint", Text, nullable=False),
    Column("deployment_id", String(255), nullable=False),
    Column("storage_target", String(255), nullable=False),
    Index(None, "expires_at"),
)

_table(
    "tool_keys",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("kid", ExactString(255), nullable=False, unique=True),
    Column("private_pem", Text, nullable=False),
    Column("public_jwk", Text, nullable=False),
    Column("active", Boolean, nullable=False),
    Column("created", Double, nullable=False),
)

_table(
    "user_links",
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("platform", ExactString(255), nullable=False),
    Column("platform_user_id", ExactString(255), nullable=False),
    Column("local_user_id", ExactString(255), nullable=False),
    Column("created", Double, nullable=False),
    UniqueConstraint("platform", "platform_user_id"),
    Index(None, "local_user_id"),
)
