"""tickets.attempts_base: attempts stay numbered across an operator's requeue.

A requeued dead letter gets fresh attempts without reusing the numbers of its earlier ones:
``attempts`` keeps counting (claims, effects and harness runs are keyed by it) and
``attempts_base`` marks where the current round began.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29 11:45:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | Sequence[str] | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.add_column(
            sa.Column("attempts_base", sa.Integer(), nullable=False, server_default="0")
        )


def downgrade() -> None:
    with op.batch_alter_table("tickets") as batch:
        batch.drop_column("attempts_base")
