"""Declared dependencies: requirements files and pyproject, names normalised per PEP 503."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from packaging.version import Version
from triloop.discovery.dependencies import (
    DependencyError,
    declared_dependencies,
    normalise_name,
)
from triloop.domain.manifests import parse_manifest


@pytest.mark.parametrize(
    ("name", "normal"),
    [("Django", "django"), ("zope.interface", "zope-interface"), ("Foo__Bar-.baz", "foo-bar-baz")],
)
def test_pep503_names(name: str, normal: str) -> None:
    assert normalise_name(name) == normal


def test_requirements_lines() -> None:
    source = """\
# comment
-r base.txt
--index-url https://example.invalid/simple
-e ./local
./vendored/pkg
git+https://example.invalid/x.git#egg=x
Django==4.2.1 --hash=sha256:abc  # pinned
requests[socks] >= 2.0 , < 3 ; python_version >= "3.8"
numpy \\
    ==1.26.4
direct @ https://example.invalid/direct-1.0.tar.gz
arrow===1.0
loose==1.*
"""
    deps = [d for d in parse_manifest("requirements.txt", source).dependencies if not d.origin]
    got = [(d.name, str(d.specifier), d.line, d.pinned) for d in deps]
    assert got == [
        ("django", "==4.2.1", 7, Version("4.2.1")),
        ("requests", "<3,>=2.0", 8, None),
        ("numpy", "==1.26.4", 9, Version("1.26.4")),
        ("arrow", "===1.0", 12, Version("1.0")),
        ("loose", "==1.*", 13, None),
    ]
    assert deps[0].text == "Django==4.2.1"


def test_declared_dependencies_reads_every_file(tmp_path: Path) -> None:
    (tmp_path / "requirements").mkdir()
    (tmp_path / "requirements.txt").write_text("a==1\n")
    (tmp_path / "requirements-dev.txt").write_text("b>=2\n")
    (tmp_path / "requirements" / "prod.txt").write_text("c==3\n")
    (tmp_path / "pyproject.toml").write_text(
        '[project]\nname = "x"\ndependencies = [\n  "D_d==4",\n]\n'
        '[project.optional-dependencies]\ntest = ["e<5"]\n'
    )
    os.symlink("/etc/hostname", tmp_path / "requirements-host.txt")  # out of the checkout
    deps = declared_dependencies(tmp_path)
    got = [(d.name, d.path, d.line) for d in deps]
    assert got == [
        ("c", "requirements/prod.txt", 1),
        ("b", "requirements-dev.txt", 1),
        ("a", "requirements.txt", 1),
        ("d-d", "pyproject.toml", 4),
        ("e", "pyproject.toml", 7),
    ]


@pytest.mark.parametrize(
    ("name", "body", "message"),
    [
        ("requirements.txt", "ok==1\nnot a [requirement\n", r"requirements.txt:2: not a valid"),
        ("pyproject.toml", "[project\n", r"pyproject.toml: not valid TOML"),
        ("pyproject.toml", "[project]\ndependencies = [3]\n", r"dependency 3 is not a string"),
    ],
)
def test_bad_declarations(tmp_path: Path, name: str, body: str, message: str) -> None:
    (tmp_path / name).write_text(body)
    with pytest.raises(DependencyError, match=message):
        declared_dependencies(tmp_path)
