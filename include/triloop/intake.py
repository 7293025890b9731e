"""Payloads entering a task: validated against their contract before anything is written.

A payload that does not fit (an unknown ``schema_version``, a missing or extra field, a wrong
type) is refused with an error naming where it came from, the contract and each problem, and
one ledger row; nothing else is written.
"""

from __future__ import annotations

import json
from typing import Any, TypeVar

from pydantic import ValidationError

from triloop.bootstrap import App
from triloop.domain.contracts import Contract
from triloop.errors import PermanentError
from triloop.store.ledger import Actor, record

C = TypeVar("C", bound=Contract)
PAYLOAD_EXCERPT_CHARS = 2000


class ContractViolation(PermanentError):
    """A payload that does not match its contract; retrying the same payload cannot help."""

    def __init__(self, contract: str, source: str, problems: list[str]) -> None:
        self.contract, self.source, self.problems = contract, source, problems
        super().__init__(f"{source}: not a valid {contract} payload: {'; '.join(problems)}")


def problems_of(exc: ValidationError) -> list[str]:
    """One line per validation error: the field path, then what is wrong with it."""
    return [
        f"{'.'.join(str(part) for part in error['loc']) or '(payload)'}: {error['msg']}"
        for error in exc.errors()
    ]


def parse(app: App, actor: Actor, model: type[C], payload: Any, *, source: str) -> C:
    """``payload`` as a ``model``, or ContractViolation after one ``contract.refused`` row."""
    try:
        return model.model_validate(payload)
    except ValidationError as exc:
        violation = ContractViolation(model.__name__, source, problems_of(exc))
    excerpt = json.dumps(payload, default=str, sort_keys=True)[:PAYLOAD_EXCERPT_CHARS]
    with app.uow() as session:
        record(
            session,
            actor,
            "contract.refused",
            outcome="refused",
            error=str(violation),
            payload={"contract": model.__name__, "source": source, "excerpt": excerpt},
        )
    raise violation
