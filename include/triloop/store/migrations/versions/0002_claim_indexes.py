"""Indexes for claims: ready tickets by priority, and the tickets a run holds.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-25 05:50:00
"""

from __future__ import annotations

from collections.abc import Sequence

from alembic import op

revision: str = "0002"
down_revision: str | Sequence[str] | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index("ix_tickets_claim_order", "tickets", ["state", "priority"], unique=False)
    op.create_index(op.f("ix_tickets_lease_owner"), "tickets", ["lease_owner"], unique=False)


def downgrade() -> None:
    op.drop_index(op.f("ix_tickets_lease_owner"), table_name="tickets")
    op.drop_index("ix_tickets_claim_order", table_name="tickets")
