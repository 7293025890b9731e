"""Wiring: the one place that turns configuration into the objects services use."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy.orm import Session

from triloop.config import Settings, load_settings
from triloop.domain.policy import Policy, load_policy
from triloop.store.db import unit_of_work
from triloop.store.schema import upgrade


@dataclass(frozen=True)
class App:
    settings: Settings
    policy: Policy

    @contextmanager
    def uow(self) -> Iterator[Session]:
        with unit_of_work(self.settings.db_url) as session:
            yield session


def bootstrap(db_url: str | None = None, home: Path | None = None) -> App:
    """Load settings and policy and migrate the schema to head (idempotent, cheap when done)."""
    settings = load_settings(db_url=db_url, home=home)
    policy = load_policy(settings.policy_path)
    upgrade(settings.db_url)
    return App(settings=settings, policy=policy)
