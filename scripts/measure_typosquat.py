"""How many honest popular names dependency trust would flag as typosquats if a PR added them.

Runs triloop.domain.typosquat.typosquat_of on every name of the shipped popular list (as a PR
adding it to a repository that does not use it yet, with no policy allowances) and prints, for
the top 1,000 and the top 5,000, how many are flagged (by the relative-popularity rule: the
name is on the list but imitates one ranked FAR_RATIO times higher) and which.

Usage: ``python scripts/measure_typosquat.py [--ratio R ...] [--top N]``.
"""

from __future__ import annotations

import argparse
import time

from triloop.domain import typosquat
from triloop.governance.deptrust import popular_names


def flagged(names: list[str], top: int, ratio: float) -> list[tuple[int, str, str, str]]:
    """(rank, name, target, how) for each of the ``top`` names the rule flags at ``ratio``."""
    typosquat.FAR_RATIO = ratio
    out = []
    for rank, name in enumerate(names[:top], start=1):
        squat = typosquat.typosquat_of(name, names, ranked=names)
        if squat is not None:
            out.append((rank, name, squat.target, squat.how))
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument("--ratio", type=float, nargs="*", default=[typosquat.FAR_RATIO])
    parser.add_argument("--top", type=int, nargs="*", default=[1000, 5000])
    args = parser.parse_args()
    names = popular_names()
    for ratio in args.ratio:
        start = time.monotonic()
        found = flagged(names, max(args.top), ratio)
        counts = ", ".join(f"top {top}: {sum(1 for f in found if f[0] <= top)}" for top in args.top)
        print(f"rank ratio {ratio:g}: {counts} ({time.monotonic() - start:.1f} s)")
        for rank, name, target, how in found:
            print(f"  #{rank} {name} -> {target}: {how}")


if __name__ == "__main__":
    main()
