"""Escaped defects: merges whose tests failed on the default branch after they landed.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-02 10:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | Sequence[str] | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "escaped_defects",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("repo_id", sa.String(length=64), nullable=False),
        sa.Column("pull_request_id", sa.Integer(), nullable=False),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("ticket_id", sa.String(length=32), nullable=False),
        sa.Column("merge_sha", sa.String(length=64), nullable=False),
        sa.Column("verification_run", sa.String(length=500), nullable=False),
        sa.Column("failing_tests", sa.JSON(), nullable=False),
        sa.Column("revert_number", sa.Integer(), nullable=True),
        sa.Column("revert_ticket_id", sa.String(length=32), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(["pull_request_id"], ["pull_requests.id"]),
        sa.ForeignKeyConstraint(["repo_id"], ["repos.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("pull_request_id", "merge_sha"),
    )
    op.create_index(
        op.f("ix_escaped_defects_repo_id"), "escaped_defects", ["repo_id"], unique=False
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_escaped_defects_repo_id"), table_name="escaped_defects")
    op.drop_table("escaped_defects")
