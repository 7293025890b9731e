"""Typosquat detection: normalised names, edit distance, look-alikes, python affixes."""

from __future__ import annotations

import pytest
from triloop.domain.typosquat import (
    core,
    damerau_levenshtein,
    known_names,
    normalise,
    skeleton,
    typosquat_of,
)
from triloop.governance.deptrust import popular_names


@pytest.fixture(scope="module")
def popular() -> list[str]:
    return popular_names()


def test_the_shipped_list_is_normalised_and_most_popular_first(popular: list[str]) -> None:
    assert len(popular) > 4000
    assert popular.index("boto3") < popular.index("requests") < popular.index("colorama")
    assert all(name == normalise(name) for name in popular)


@pytest.mark.parametrize(
    ("name", "target", "how"),
    [
        ("reqeusts", "requests", "transposed letters"),
        ("urlib3", "urllib3", "missing letters"),
        ("requestss", "requests", "duplicated letter"),
        ("colourama", "colorama", "extra letters"),
        ("reques7s", "requests", "substituted letters"),
        ("dateutil", "python-dateutil", "python prefix or suffix added or dropped"),
        ("pythondateutil", "python-dateutil", "confusable separators"),
        ("DateUtil_Python", "python-dateutil", "python prefix or suffix added or dropped"),
        ("python-dateuti1", "python-dateutil", "look-alike characters"),
        ("typingextensions", "typing-extensions", "confusable separators"),
        ("beautifulsoup", "beautifulsoup4", "missing letters"),
    ],
)
def test_typosquats_name_what_they_imitate(
    popular: list[str], name: str, target: str, how: str
) -> None:
    squat = typosquat_of(name, popular)
    assert squat is not None and (squat.target, squat.how) == (target, how)


@pytest.mark.parametrize(
    "name",
    # popular themselves though close to another popular name, or far from every one
    ["boto", "boto3", "attrs", "toml", "tomli", "jwt", "pyjwt", "Typing_Extensions", "triloop"],
)
def test_known_or_distinct_names_pass(popular: list[str], name: str) -> None:
    assert typosquat_of(name, popular) is None


def test_short_names_match_only_by_skeleton(popular: list[str]) -> None:
    assert typosquat_of("yaml", popular) is None  # one edit from yarl, but four letters
    squat = typosquat_of("s1x", popular)
    assert squat is not None and squat.target == "six"


def test_already_used_and_allowed_names_count() -> None:
    used = known_names(["acme-billing-client"])
    squat = typosquat_of("acme-biling-client", used)
    assert squat is not None and squat.target == "acme-billing-client"
    assert typosquat_of("acme-biling-client", known_names(["acme-biling-client"], used)) is None


@pytest.mark.parametrize(("limit", "flagged"), [(0, False), (1, False), (2, True)])
def test_max_edit_distance_caps_long_names(limit: int, flagged: bool) -> None:
    squat = typosquat_of("cryptogarphyy", ["cryptography"], max_edit_distance=limit)
    assert (squat is not None) is flagged


@pytest.mark.parametrize(
    ("a", "b", "distance"),
    [("requests", "reqeusts", 1), ("abc", "abc", 0), ("", "abc", 3), ("ca", "abc", 3)],
)
def test_damerau_levenshtein(a: str, b: str, distance: int) -> None:
    assert damerau_levenshtein(a, b) == distance == damerau_levenshtein(b, a)


def test_skeleton_and_core() -> None:
    assert skeleton("Py_Dateutil") == skeleton("py-dateuti1") == "pydateutll"
    assert core("python-dateutil") == core("dateutil-python") == "dateutil"
    assert known_names(["Foo_Bar  # comment", "", "foo-bar", "# only a comment"]) == ["foo-bar"]


@pytest.mark.parametrize(
    ("name", "target", "ranks"),
    [
        ("dydantic", "pydantic", "'pydantic' is #16 by downloads, 'dydantic' #4708"),
        ("pyaml", "pyyaml", "'pyyaml' is #15 by downloads, 'pyaml' #1603"),
        ("docker-py", "docker", "'docker' is #158 by downloads, 'docker-py' #4619"),
    ],
)
def test_a_popular_name_imitating_a_far_more_popular_one_is_flagged(
    popular: list[str], name: str, target: str, ranks: str
) -> None:
    squat = typosquat_of(name, popular, ranked=popular)
    assert squat is not None and squat.target == target and squat.how.endswith(ranks)
    assert typosquat_of(name, popular) is None  # without the ranking: known, so trusted
    assert typosquat_of(name, popular, ranked=popular, trusted=[name.upper()]) is None


@pytest.mark.parametrize(
    "name",
    # close to a more popular name, but not FAR_RATIO (20) times less downloaded
    ["boto", "attrs", "cattrs", "tomli", "pyjwt", "frozendict", "scapy", "cchardet", "dataset"],
)
def test_names_close_in_popularity_pass(popular: list[str], name: str) -> None:
    assert typosquat_of(name, popular, ranked=popular) is None


def test_no_top_1000_name_is_flagged_when_a_pr_adds_it(popular: list[str]) -> None:
    # scripts/measure_typosquat.py prints the figures for the top 1,000 and 5,000 (0 and 12)
    flagged = [n for n in popular[:1000] if typosquat_of(n, popular, ranked=popular)]
    assert flagged == []
