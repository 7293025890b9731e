"""PEP 503 index pages and the outdated scanner against a local file index (no network)."""

from __future__ import annotations

from pathlib import Path

import pytest
from packaging.version import Version
from triloop.discovery.scanners import ScannerError
from triloop.discovery.scanners.base import ScanContext
from triloop.discovery.scanners.outdated import OUTDATED
from triloop.discovery.simple_index import (
    IndexPageError,
    newest_release,
    parse_project_page,
    version_gap,
)
from triloop.domain.policy import HostScannerPolicy, Policy

from tests.support.rows import git_repo

REQUESTS_PAGE = """<!DOCTYPE html>
<html><head><meta name="pypi:repository-version" content="1.1"><title>Links for requests</title>
</head><body><h1>Links for requests</h1>
<a href="../../files/requests-2.30.0-py3-none-any.whl#sha256=aa">2.30.0 wheel</a>
<a href="../../files/requests-2.30.0.tar.gz#sha256=bb" data-core-metadata="sha256=cc">sdist</a>
<a href="https://x.invalid/requests-2.31.0-py3-none-any.whl" data-requires-python="&gt;=3.7">x</a>
<a href="/f/requests-2.32.0-py3-none-any.whl" data-requires-python="&gt;=3.8" data-yanked="">y</a>
<a href="/f/requests-2.32.0.tar.gz" data-yanked="broken sdist">requests-2.32.0.tar.gz</a>
<a href="/f/requests-2.33.0-py3-none-any.whl" data-requires-python="&gt;=3.12">z</a>
<a href="/f/requests-3.0.0rc1-py3-none-any.whl">requests-3.0.0rc1-py3-none-any.whl</a>
<a href="/f/requests_toolbelt-9.0.tar.gz">another project on a bad page</a>
<a href="/f/requests-2.40.0.exe">installer, not a wheel or sdist</a>
<a>no href</a>
</body></html>
"""


def test_parse_project_page() -> None:
    files = parse_project_page(REQUESTS_PAGE.encode(), "Requests", "requests/")
    got = [(f.filename, str(f.version), f.yanked, f.has_metadata) for f in files]
    assert got == [
        ("requests-2.30.0-py3-none-any.whl", "2.30.0", False, False),
        ("requests-2.30.0.tar.gz", "2.30.0", False, True),
        ("requests-2.31.0-py3-none-any.whl", "2.31.0", False, False),
        ("requests-2.32.0-py3-none-any.whl", "2.32.0", True, False),
        ("requests-2.32.0.tar.gz", "2.32.0", True, False),
        ("requests-2.33.0-py3-none-any.whl", "2.33.0", False, False),
        ("requests-3.0.0rc1-py3-none-any.whl", "3.0.0rc1", False, False),
    ]
    assert str(files[2].requires_python) == ">=3.7"
    # yanked 2.32.0 and pre-release 3.0.0rc1 never count; 2.33.0 only where Python allows it
    assert newest_release(files) == Version("2.33.0")
    assert newest_release(files, Version("3.11")) == Version("2.31.0")


@pytest.mark.parametrize(
    ("pinned", "newest", "gap"),
    [
        ("1.2.3", "2.0.0", "major"),
        ("1.2.3", "1.3.0", "minor"),
        ("1.2.3", "1.2.4", "patch"),
        ("1.2", "1.2.0.post1", "patch"),
        ("1.2.3", "1.2.3", None),
        ("2.0", "1.9", None),
        ("1", "1.1", "minor"),
    ],
)
def test_version_gap(pinned: str, newest: str, gap: str | None) -> None:
    assert version_gap(Version(pinned), Version(newest)) == gap


@pytest.mark.parametrize(
    ("page", "message"),
    [
        (b'{"meta": {"api-version": "1.1"}, "files": []}', r"index page p/ is not HTML: no tags"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\xff\xfe", r"index page p/ is not UTF-8 text"),
        (b"<html>\x00\x00</html>", r"index page p/ holds binary data"),
    ],
)
def test_pages_that_are_not_html(page: bytes, message: str) -> None:
    with pytest.raises(IndexPageError, match=message):
        parse_project_page(page, "p", "p/")


def make_index(root: Path, pages: dict[str, str | bytes]) -> str:
    """A PEP 503 file index: ``<root>/<project>/index.html``; returns its file:// URL."""
    for project, page in pages.items():
        (root / project).mkdir(parents=True)
        body = page.encode() if isinstance(page, str) else page
        (root / project / "index.html").write_bytes(body)
    return root.as_uri() + "/"


def _page(project: str, *versions: str) -> str:
    links = "".join(
        f'<a href="/f/{project}-{v}.tar.gz">{project}-{v}.tar.gz</a>\n' for v in versions
    )
    return f"<!DOCTYPE html><html><body>\n{links}</body></html>\n"


REQUIREMENTS = """\
requests==2.30.0
click==7.1.2
Jinja2==3.1.4
attrs==23.1.0
private-lib==0.1
pyyaml>=5
"""


def _ctx(tmp_path: Path, index: str, **rules: object) -> ScanContext:
    checkout = git_repo(tmp_path / "repo", {"requirements.txt": REQUIREMENTS})
    policy = Policy(host_scanners=HostScannerPolicy(package_index=index, **rules))
    return ScanContext(repo_id="r", checkout=checkout, output_dir=tmp_path, policy=policy)


def _index(tmp_path: Path, **extra: str | bytes) -> str:
    return make_index(
        tmp_path / "index",
        {
            "requests": REQUESTS_PAGE,
            "click": _page("click", "7.1.2", "8.1.7", "8.2.0.dev1"),
            "jinja2": _page("Jinja2", "3.1.3", "3.1.4", "3.1.6"),
            "attrs": _page("attrs", "23.1.0"),
            "pyyaml": _page("PyYAML", "5.4", "6.0.2"),
            **extra,
        },
    )


def test_outdated_scanner_on_a_fixture_repository(tmp_path: Path) -> None:
    found = OUTDATED.scan(_ctx(tmp_path, _index(tmp_path), python_version="3.11"))
    got = {(f.rule, f.line, f.severity, f.group_key, f.data["latest"]) for f in found}
    assert got == {
        ("outdated-minor", 1, "low", "pypi:requests", "2.31.0"),
        ("outdated-major", 2, "medium", "pypi:click", "8.1.7"),
        ("outdated-patch", 3, "info", "pypi:jinja2", "3.1.6"),
    }
    click = next(f for f in found if f.group_key == "pypi:click")
    assert click.data == {
        "package": "click",
        "installed": "7.1.2",
        "latest": "8.1.7",
        "gap": "major",
    }
    assert click.path == "requirements.txt" and click.tool == "outdated"


def test_policy_picks_the_gaps(tmp_path: Path) -> None:
    found = OUTDATED.scan(_ctx(tmp_path, _index(tmp_path), outdated_gaps=["major"]))
    assert [(f.rule, f.data["latest"]) for f in found] == [("outdated-major", "8.1.7")]


@pytest.mark.parametrize(
    ("page", "message"),
    [
        (b'{"files": []}', r"scanner outdated: index page file://.*/attrs/ is not HTML"),
        (b"\x00\x01\x02\xff", r"scanner outdated: index page file://.*/attrs/ is not UTF-8"),
    ],
)
def test_a_page_that_is_not_html_is_an_error(tmp_path: Path, page: bytes, message: str) -> None:
    index = _index(tmp_path, attrs=page)
    with pytest.raises(ScannerError, match=message):
        OUTDATED.scan(_ctx(tmp_path, index))


def test_off_until_the_policy_names_an_index(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, _index(tmp_path))
    assert OUTDATED.applies(ctx)
    assert not OUTDATED.applies(ScanContext("r", ctx.checkout, tmp_path, Policy()))
