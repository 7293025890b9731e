"""tickets: the value function's figures and the grouping strategy that made the ticket.

``priority`` (the claim order's column) holds ``expected_value``; the other figures show why.
Tickets made before this revision keep 0 until their next scan updates them.

Revision ID: 0005
Revises: 0004
Create Date: 2026-11-29 12:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | Sequence[str] | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

FIGURES = (
    ("confidence", sa.Float()),
    ("impact", sa.Float()),
    ("blast_files", sa.Integer()),
    ("blast_modules", sa.Integer()),
    ("effort", sa.Float()),
    ("expected_value", sa.Float()),
)


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        for name, type_ in FIGURES:
            batch.add_column(sa.Column(name, type_, nullable=False, server_default="0"))
        batch.add_column(
            sa.Column("grouping", sa.String(32), nullable=False, server_default="rule_path")
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("grouping")
        for name, _ in reversed(FIGURES):
            batch.drop_column(name)
