"""Typosquats: a package name that imitates a popular or already-used one. Pure functions.

Names are compared after PEP 503 normalisation (``Typing_Extensions`` is ``typing-extensions``).
A name that is itself known (popular, used by the repository or allowed by the policy) is not a
typosquat, however close it is to another known name (``boto`` and ``boto3`` are both real),
with one exception, relative popularity: a name on the popular list that imitates a name ranked
at least :data:`FAR_RATIO` (20) times higher is one (``dydantic``, #4708, for ``pydantic``,
#16), unless the repository already uses it or the policy allows it. Otherwise a name imitates
a known name when, against that name, it has:

- the same *skeleton*: separators dropped and look-alike characters folded (``0``/``o``,
  ``1``/``l``/``i``, ``rn``/``m``, ``vv``/``w``), e.g. ``pythondateutil``, ``reques7s``;
- the same *core* once a ``python-``/``py-``/``python3-``/``py3-`` prefix or a ``-python``/
  ``-py``/``-python3``/``-py3`` suffix is dropped, e.g. ``dateutil`` for ``python-dateutil``;
- a Damerau-Levenshtein distance (optimal string alignment: a transposition is one edit) of at
  most 1 for names of 5 to 8 characters and at most 2 from 9 characters up, capped by the policy's
  ``max_edit_distance``; shorter names (``yaml``, ``tqdm``) are matched by skeleton or core only:
  one edit away from a four-letter name is too often another real package.

The first known name that matches wins; callers pass popular names most popular first.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from functools import lru_cache

_SEPARATORS = re.compile(r"[-_.]+")
_LOOKALIKES = (("rn", "m"), ("vv", "w"), ("0", "o"), ("1", "l"), ("i", "l"), ("5", "s"))
_PREFIXES = ("python3-", "python-", "py3-", "py-")
_SUFFIXES = ("-python3", "-python", "-py3", "-py")
MIN_DISTANCE_LENGTH = 5
LONG_NAME = 9
FAR_RATIO: float = 20
"""A popular name is a typosquat of one it imitates ranked at least this many times higher
(#16 pydantic, #4708 dydantic); measured by scripts/measure_typosquat.py."""


@dataclass(frozen=True)
class Squat:
    """``name`` imitates the known name ``target``; ``how`` says in what way."""

    name: str
    target: str
    how: str
    distance: int


@lru_cache(maxsize=65536)
def normalise(name: str) -> str:
    """PEP 503: lower case, each run of ``-``, ``_`` and ``.`` becomes one ``-``."""
    return _SEPARATORS.sub("-", name).lower()


@lru_cache(maxsize=65536)
def skeleton(name: str) -> str:
    """The name with separators dropped and look-alike characters folded together."""
    out = normalise(name).replace("-", "")
    for look, like in _LOOKALIKES:
        out = out.replace(look, like)
    return out


@lru_cache(maxsize=65536)
def core(name: str) -> str:
    """The name without one python prefix or suffix (``python-dateutil`` -> ``dateutil``)."""
    name = normalise(name)
    for prefix in _PREFIXES:
        if name.startswith(prefix) and len(name) > len(prefix):
            return name[len(prefix) :]
    for suffix in _SUFFIXES:
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return name


def damerau_levenshtein(a: str, b: str) -> int:
    """Edits (insert, delete, substitute, swap two adjacent letters) turning ``a`` into ``b``."""
    previous2: list[int] = []
    previous = list(range(len(b) + 1))
    for i, ca in enumerate(a, start=1):
        row = [i] + [0] * len(b)
        for j, cb in enumerate(b, start=1):
            cost = 0 if ca == cb else 1
            row[j] = min(previous[j] + 1, row[j - 1] + 1, previous[j - 1] + cost)
            if i > 1 and j > 1 and ca == b[j - 2] and a[i - 2] == cb:
                row[j] = min(row[j], previous2[j - 2] + 1)
        previous2, previous = previous, row
    return previous[-1]


def distance_limit(name: str, max_edit_distance: int) -> int:
    """How many edits away from a known name ``name`` may be and still count as imitating it."""
    if len(name) < MIN_DISTANCE_LENGTH:
        return 0
    return min(max_edit_distance, 1 if len(name) < LONG_NAME else 2)


def describe(name: str, target: str) -> str:
    """A short human reason why ``name`` looks like ``target``."""
    if skeleton(name) == skeleton(target):
        same_letters = normalise(name).replace("-", "") == normalise(target).replace("-", "")
        return "confusable separators" if same_letters else "look-alike characters"
    if core(name) == core(target):
        return "python prefix or suffix added or dropped"
    if len(name) == len(target):
        if sorted(name) == sorted(target):
            return "transposed letters"
        return "substituted letters"
    if len(name) > len(target):
        doubled = any(name[k] == name[k - 1] for k in range(1, len(name)))
        return "duplicated letter" if doubled and len(name) == len(target) + 1 else "extra letters"
    return "missing letters"


def typosquat_of(
    name: str,
    known: Sequence[str],
    max_edit_distance: int = 2,
    *,
    ranked: Sequence[str] = (),
    trusted: Collection[str] = (),
) -> Squat | None:
    """The known name ``name`` imitates, or None.

    A known name is not a typosquat, except (relative popularity) one on ``ranked`` (popular
    names, most popular first) that imitates a name ranked at least :data:`FAR_RATIO` times
    higher; ``trusted`` names (already used, allowed by the policy) are never typosquats.
    """
    name = normalise(name)
    if name in {normalise(t) for t in trusted}:
        return None
    names = [normalise(k) for k in known]
    if name in set(names):
        return far_more_popular(name, ranked, max_edit_distance)
    target = first_imitated(name, names, max_edit_distance)
    return None if target is None else _squat(name, target)


def far_more_popular(name: str, ranked: Sequence[str], max_edit_distance: int) -> Squat | None:
    """A name of ``ranked`` that ``name`` (also on it) imitates and that is far more popular."""
    try:
        rank = list(ranked).index(name) + 1
    except ValueError:
        return None
    higher = list(ranked[: int(rank / FAR_RATIO)])
    target = first_imitated(name, higher, max_edit_distance)
    if target is None:
        return None
    squat = _squat(name, target)
    how = f"{squat.how}; {target!r} is #{higher.index(target) + 1} by downloads, {name!r} #{rank}"
    return Squat(name, target, how, squat.distance)


def first_imitated(name: str, names: Sequence[str], max_edit_distance: int) -> str | None:
    """The first of ``names`` with ``name``'s skeleton or core, else the first close enough."""
    its_skeleton, its_core = skeleton(name), core(name)
    for target in names:
        if skeleton(target) == its_skeleton or core(target) == its_core:
            return target
    limit = distance_limit(name, max_edit_distance)
    for target in names if limit else []:
        if abs(len(target) - len(name)) <= limit:
            distance = damerau_levenshtein(name, target)
            if distance <= min(limit, distance_limit(target, max_edit_distance)):
                return target
    return None


def _squat(name: str, target: str) -> Squat:
    return Squat(name, target, describe(name, target), damerau_levenshtein(name, target))


def known_names(*sources: Iterable[str]) -> list[str]:
    """Normalised names from each source in order, each once (the first occurrence wins)."""
    seen: dict[str, None] = {}
    for source in sources:
        for raw in source:
            text = raw.split("#", 1)[0].strip()
            if text:
                seen.setdefault(normalise(text), None)
    return list(seen)
