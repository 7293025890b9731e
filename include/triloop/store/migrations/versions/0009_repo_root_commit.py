"""repos: the root commit of the default branch, the identity onboarding recognises.

A repository onboarded again from another clone, path or name has the same root commit; rows
onboarded before this revision have none (they are recognised by their origin only).

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-04 19:00:00
"""

from __future__ import annotations

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | Sequence[str] | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("repos") as batch:
        batch.add_column(sa.Column("root_commit", sa.String(length=64), nullable=True))
        batch.create_index(batch.f("ix_repos_root_commit"), ["root_commit"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("repos") as batch:
        batch.drop_index(batch.f("ix_repos_root_commit"))
        batch.drop_column("root_commit")
