"""OSV advisories: range evaluation, severity, and the osv scanner on a fixture repository."""

from __future__ import annotations

import shutil
import zipfile
from pathlib import Path

import pytest
from packaging.specifiers import SpecifierSet
from packaging.version import Version
from triloop.discovery.advisories import AdvisoryError, in_range, parse_advisory
from triloop.discovery.cvss import cvss3_base_score, severity_for_score
from triloop.discovery.scanners import ScannerError
from triloop.discovery.scanners.base import ScanContext
from triloop.discovery.scanners.osv import OSV, load_database, range_floor
from triloop.domain.policy import HostScannerPolicy, Policy

from tests.support.rows import git_repo

FIXTURES = Path(__file__).parents[1] / "fixtures" / "osv"


def _advisory(events: list[dict[str, str]], versions: list[str] | None = None) -> dict[str, object]:
    affected: dict[str, object] = {
        "package": {"ecosystem": "PyPI", "name": "pkg"},
        "ranges": [{"type": "ECOSYSTEM", "events": events}],
    }
    if versions is not None:
        affected["versions"] = versions
    return {"id": "X-1", "affected": [affected]}


@pytest.mark.parametrize(
    ("events", "versions", "version", "affected"),
    [
        ([{"introduced": "0"}, {"fixed": "1.2"}], None, "0.0.1", True),
        ([{"introduced": "0"}, {"fixed": "1.2"}], None, "1.1.9", True),
        ([{"introduced": "0"}, {"fixed": "1.2"}], None, "1.2", False),
        ([{"introduced": "0"}, {"fixed": "1.2"}], None, "1.2.0", False),  # PEP 440 equal
        ([{"introduced": "0"}, {"fixed": "1.2"}], None, "1.2rc1", True),  # pre-release < 1.2
        ([{"introduced": "1.0"}, {"fixed": "1.2"}], None, "0.9", False),
        ([{"introduced": "1.0"}, {"fixed": "1.2"}], None, "1.0", True),
        ([{"introduced": "1.0"}, {"fixed": "1.2"}], None, "1.0a1", False),
        ([{"introduced": "1.0"}, {"last_affected": "1.4.2"}], None, "1.4.2", True),
        ([{"introduced": "1.0"}, {"last_affected": "1.4.2"}], None, "1.4.2.post1", False),
        ([{"introduced": "1.0"}, {"last_affected": "1.4.2"}], None, "1.4.3", False),
        ([{"introduced": "1.0"}], None, "99", True),  # never fixed
        # two ranges in one event list, listed out of order: 1.0-1.2 and 2.0-2.1
        (
            [{"fixed": "2.1"}, {"introduced": "2.0"}, {"introduced": "1.0"}, {"fixed": "1.2"}],
            None,
            "1.5",
            False,
        ),
        (
            [{"fixed": "2.1"}, {"introduced": "2.0"}, {"introduced": "1.0"}, {"fixed": "1.2"}],
            None,
            "2.0.5",
            True,
        ),
        ([{"introduced": "5.0"}, {"fixed": "6.0"}], ["0.9.1", "not-pep440"], "0.9.1", True),
        ([{"introduced": "5.0"}, {"fixed": "6.0"}], ["0.9.1"], "0.9.2", False),
        ([{"introduced": "5.0"}, {"fixed": "6.0"}], ["1.0"], "1.0.0", True),
    ],
)
def test_version_ranges(
    events: list[dict[str, str]], versions: list[str] | None, version: str, affected: bool
) -> None:
    advisory = parse_advisory(_advisory(events, versions), "inline")
    assert advisory.affects("pkg", Version(version)) is affected
    assert advisory.affects("other", Version(version)) is False


def test_separate_ranges_and_fixed_versions() -> None:
    urllib3 = load_database(FIXTURES)["urllib3"][0]
    assert urllib3.affects("urllib3", Version("1.26.16")) and urllib3.affects(
        "urllib3", Version("2.0.0b2")
    )
    assert not urllib3.affects("urllib3", Version("1.26.17"))
    assert not urllib3.affects("urllib3", Version("2.0.6"))
    assert urllib3.fixed_in("urllib3", Version("2.0.1")) == [Version("2.0.6")]
    assert in_range(Version("3"), ()) is False


@pytest.mark.parametrize(
    ("spec", "floor"),
    [
        (">=1.2,<2", "1.2"),
        ("~=3.0.1", "3.0.1"),
        ("==2.1.*", "2.1"),
        (">1.4", "1.4.1"),
        (">=1.0,!=1.0", None),
        ("<2", None),
        ("", None),
        ("==1.0", "1.0"),
    ],
)
def test_range_floor(spec: str, floor: str | None) -> None:
    expected = Version(floor) if floor else None
    assert range_floor(SpecifierSet(spec)) == expected


@pytest.mark.parametrize(
    ("vector", "score", "severity"),
    [
        ("CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8, "critical"),
        ("CVSS:3.1/AV:N/AC:H/PR:N/UI:R/S:C/C:H/I:N/A:N", 6.1, "medium"),
        ("CVSS:3.1/AV:L/AC:L/PR:L/UI:N/S:U/C:H/I:H/A:H", 7.8, "high"),
        ("CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:C/C:H/I:H/A:H", 10.0, "critical"),
        ("CVSS:3.1/AV:P/AC:H/PR:H/UI:R/S:U/C:L/I:N/A:N", 1.6, "low"),
    ],
)
def test_cvss_scores(vector: str, score: float, severity: str) -> None:
    base = cvss3_base_score(vector)
    assert base == score and severity_for_score(score) == severity


def test_cvss_rejects_other_vectors() -> None:
    assert (
        cvss3_base_score("CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N") is None
    )
    assert cvss3_base_score("CVSS:3.1/AV:N") is None


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        ([], r"advisory inline: not an OSV record"),
        ({"id": "A-1", "affected": {}}, r"advisory inline \(A-1\): 'affected' is not a list"),
        ({"id": "A-1", "affected": [{"ranges": []}]}, r"A-1\): malformed 'affected' entry"),
        (
            {
                "id": "A-1",
                "affected": [
                    {"package": {"ecosystem": "PyPI", "name": "p"}, "ranges": [{"events": []}]}
                ],
            },
            r"malformed 'affected'",
        ),
    ],
)
def test_malformed_advisories(raw: object, message: str) -> None:
    with pytest.raises(AdvisoryError, match=message):
        parse_advisory(raw, "inline")


REQUIREMENTS = """\
# the vulnerable pins and ranges of the fixture database
requests==2.30.0            # GHSA-j8r2-6x86-q33q and PYSEC-2023-74
Jinja2>=3.0,<4              # unpinned: checked at its floor 3.0
urllib3==2.0.7              # fixed in 2.0.6
flask==2.0.0                # only a withdrawn advisory
Legacy_Widget==1.4.2        # last_affected 1.4.2
--index-url https://example.invalid/simple
"""
PYPROJECT = """\
[project]
name = "app"
dependencies = ["legacy.widget==1.4.3", "click"]
"""


def _ctx(tmp_path: Path, database: Path, files: dict[str, str] | None = None) -> ScanContext:
    checkout = git_repo(
        tmp_path / "repo",
        files or {"requirements.txt": REQUIREMENTS, "pyproject.toml": PYPROJECT},
    )
    policy = Policy(host_scanners=HostScannerPolicy(osv_database=str(database)))
    return ScanContext(repo_id="r", checkout=checkout, output_dir=tmp_path, policy=policy)


@pytest.mark.parametrize("packed", [False, True], ids=["directory", "zip"])
def test_osv_scanner_on_a_fixture_repository(tmp_path: Path, packed: bool) -> None:
    database = FIXTURES
    if packed:
        database = tmp_path / "all.zip"
        with zipfile.ZipFile(database, "w") as archive:
            for file in FIXTURES.glob("*.json"):
                archive.write(file, file.name)
    found = OSV.scan(_ctx(tmp_path, database))
    got = {(f.rule, f.path, f.line, f.group_key, f.severity) for f in found}
    assert got == {
        ("GHSA-j8r2-6x86-q33q", "requirements.txt", 2, "pypi:requests", "medium"),
        ("PYSEC-2023-74", "requirements.txt", 2, "pypi:requests", "medium"),
        ("GHSA-h5c8-rqwp-cp95", "requirements.txt", 3, "pypi:jinja2", "medium"),
        ("TRILOOP-TEST-0001", "requirements.txt", 6, "pypi:legacy-widget", "critical"),
    }
    by_rule = {f.rule: f for f in found}
    ghsa = by_rule["GHSA-j8r2-6x86-q33q"]
    assert ghsa.data == {
        "package": "requests",
        "installed": "2.30.0",
        "pinned": True,
        "requirement": "requests==2.30.0",
        "fixed": "2.31.0",
        "aliases": "CVE-2023-32681",
    }
    assert "CVE-2023-32681" in ghsa.message and ghsa.fixable and ghsa.fingerprint
    jinja = by_rule["GHSA-h5c8-rqwp-cp95"]
    assert jinja.data["pinned"] is False and jinja.data["installed"] == "3.0"
    assert "unpinned; allows 3.0" in jinja.message
    widget = by_rule["TRILOOP-TEST-0001"]
    assert widget.data["fixed"] == "" and not widget.fixable


def test_fingerprints_survive_line_shifts(tmp_path: Path) -> None:
    first = OSV.scan(_ctx(tmp_path / "a", FIXTURES))
    shifted = OSV.scan(_ctx(tmp_path / "b", FIXTURES, {"requirements.txt": "\n\n" + REQUIREMENTS}))
    assert {f.fingerprint for f in first} == {f.fingerprint for f in shifted}
    assert {f.line for f in first} != {f.line for f in shifted}


@pytest.mark.parametrize(
    ("broken", "message"),
    [
        ("{not json", r"scanner osv: advisory file .*BROKEN.json is not valid JSON"),
        ('{"id": "B-1", "affected": "x"}', r"scanner osv: advisory .*BROKEN.json \(B-1\)"),
        ('{"summary": "no id"}', r"scanner osv: advisory .*BROKEN.json: not an OSV record"),
    ],
)
def test_a_broken_database_is_an_error(tmp_path: Path, broken: str, message: str) -> None:
    database = tmp_path / "db"
    shutil.copytree(FIXTURES, database)
    (database / "BROKEN.json").write_text(broken)
    with pytest.raises(ScannerError, match=message):
        OSV.scan(_ctx(tmp_path, database))


@pytest.mark.parametrize(
    ("where", "message"),
    [
        ("missing", r"scanner osv: advisory database .*missing is not readable"),
        ("file.txt", r"scanner osv: advisory database .*file.txt is not a directory or zip"),
    ],
)
def test_a_missing_or_wrong_database_is_an_error(tmp_path: Path, where: str, message: str) -> None:
    if where == "file.txt":
        (tmp_path / where).write_text("hello")
    with pytest.raises(ScannerError, match=message):
        OSV.scan(_ctx(tmp_path, tmp_path / where))


def test_off_until_the_policy_names_a_database(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, FIXTURES)
    assert OSV.applies(ctx)
    assert not OSV.applies(ScanContext("r", ctx.checkout, tmp_path, Policy()))
