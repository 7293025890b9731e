"""Idempotent side effects: each is recorded under a key derived from stable ids.

A retried or cleared task that finds its key reuses the recorded result instead of acting
again. The actions themselves are also written to be safe to repeat (pushing a commit that is
already there, opening a PR that exists), which covers a crash between acting and recording.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy.orm import Session

from triloop.store.models import Effect


def recorded(session: Session, key: str) -> dict[str, Any] | None:
    effect = session.get(Effect, key)
    return dict(effect.result) if effect else None


def once(
    session: Session, key: str, kind: str, act: Callable[[], dict[str, Any]]
) -> tuple[dict[str, Any], bool]:
    """Return (result, acted). ``act`` runs only when no effect is recorded under ``key``."""
    earlier = recorded(session, key)
    if earlier is not None:
        return earlier, False
    result = act()
    session.add(Effect(key=key, kind=kind, result=result))
    session.flush()
    return result, True
