"""The two kinds of failure retry policies tell apart."""

from __future__ import annotations


class PermanentError(Exception):
    """Retrying cannot help (bad input, policy refusal); fail fast with this message."""
