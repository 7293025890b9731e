"""The won't-fix list written by `triloop suppress`, and quarantined scan batches.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-01 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | Sequence[str] | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "suppressions",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repo_id", sa.String(length=64), nullable=True),
        sa.Column("ticket_key", sa.String(length=64), nullable=True),
        sa.Column("ticket_id", sa.String(length=32), nullable=True),
        sa.Column("rule", sa.String(length=200), nullable=False),
        sa.Column("path", sa.Text(), nullable=False),
        sa.Column("reason", sa.Text(), nullable=False),
        sa.Column("actor", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index(op.f("ix_suppressions_repo_id"), "suppressions", ["repo_id"], unique=False)
    op.create_index(
        op.f("ix_suppressions_ticket_key"), "suppressions", ["ticket_key"], unique=False
    )
    op.create_table(
        "quarantines",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repo_id", sa.String(length=64), nullable=False),
        sa.Column("scan_key", sa.String(length=300), nullable=False),
        sa.Column("head_sha", sa.String(length=64), nullable=False),
        sa.Column("finding_count", sa.Integer(), nullable=False),
        sa.Column("failed", sa.JSON(), nullable=False),
        sa.Column("findings", sa.JSON(), nullable=False),
        sa.Column("state", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("released_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("released_by", sa.String(length=500), nullable=True),
        sa.Column("released_ticket_ids", sa.JSON(), nullable=False),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("repo_id", "scan_key"),
    )
    op.create_index(op.f("ix_quarantines_repo_id"), "quarantines", ["repo_id"], unique=False)
    op.create_index(op.f("ix_quarantines_state"), "quarantines", ["state"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_quarantines_state"), table_name="quarantines")
    op.drop_index(op.f("ix_quarantines_repo_id"), table_name="quarantines")
    op.drop_table("quarantines")
    op.drop_index(op.f("ix_suppressions_ticket_key"), table_name="suppressions")
    op.drop_index(op.f("ix_suppressions_repo_id"), table_name="suppressions")
    op.drop_table("suppressions")
