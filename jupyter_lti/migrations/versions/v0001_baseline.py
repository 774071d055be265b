"""Baseline: the tables the store made with create_all before it had migrations.

Revision ID: 0001_baseline
Revises:
Create Date: 2026-12-02

A database made by create_all is stamped with this revision instead of running it (see
``jupyter_lti.migrations.upgrade``).
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

from jupyter_lti.migrations.baseline import BASELINE_METADATA

revision: str = "0001_baseline"
down_revision: str | Sequence[str] | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    BASELINE_METADATA.create_all(op.get_bind(), checkfirst=False)


def downgrade() -> None:
    BASELINE_METADATA.drop_all(op.get_bind(), checkfirst=False)
