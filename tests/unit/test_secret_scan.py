"""The sandbox's secret scanner (include/sandbox/secret_scan.py) on hostile checkouts.

Every secret is made at run time from a prefix and a seeded body, so this file holds none.
"""

from __future__ import annotations

import json
import logging
import os
import random
import re
import string
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest
import yaml

from tests.bench.bench_secrets import RULES, load_scanner

RNG = random.Random(7)
TOKEN = "ghp_" + "".join(RNG.choice(string.ascii_letters + string.digits) for _ in range(36))
OTHER = "ghp_" + "".join(RNG.choice(string.ascii_letters + string.digits) for _ in range(36))


@pytest.fixture(scope="module")
def scanner() -> ModuleType:
    return load_scanner()


def scan(scanner: ModuleType, root: Path, tmp_path: Path) -> tuple[dict[str, Any], dict[str, Any]]:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    status = scanner.scan_secrets(root, out)
    return status, json.loads((out / "secrets.json").read_text())


def write(root: Path, files: dict[str, str | bytes]) -> Path:
    for rel, content in files.items():
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return root


def places(report: dict[str, Any]) -> set[tuple[str, int, str]]:
    return {(f["path"], f["line"], f["rule"]) for f in report["findings"]}


def test_every_path_counts_and_nothing_switches_it_off(scanner: ModuleType, tmp_path: Path) -> None:
    root = write(
        tmp_path / "repo",
        {
            "src/a.py": f'value = "{TOKEN}"  # pragma: allowlist secret\n',
            "tests/test_a.py": f'def test():\n    auth = "{OTHER}"\n',
            ".env": f"GH={TOKEN}\n",
            "assets/logo.png": f"{OTHER}\n",  # a "non-text" extension detect-secrets skips
            "package-lock.json": json.dumps({"auth": OTHER}),  # a lock file it skips
            ".secrets.baseline": json.dumps({"results": {"src/a.py": [{"hashed_secret": "0"}]}}),
            "nb.ipynb": json.dumps({"cells": [{"source": ['db_password = "Zq8vX2mL4pW7nK3s"\n']}]}),
            ".git/config": f"[remote]\n  url = https://x:{TOKEN}@github.com/a/b\n",
        },
    )
    status, report = scan(scanner, root, tmp_path)
    assert status["exit_code"] == 0 and "error" not in status
    assert places(report) == {
        ("src/a.py", 1, "secrets.github-token"),
        ("tests/test_a.py", 2, "secrets.github-token"),
        (".env", 1, "secrets.github-token"),
        ("assets/logo.png", 1, "secrets.github-token"),
        ("package-lock.json", 1, "secrets.github-token"),
        ("nb.ipynb", 1, "secrets.hardcoded-credential"),
    }
    assert report["unscanned"] == []


def test_the_value_is_nowhere_and_fingerprints_follow_the_secret(
    scanner: ModuleType, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    root = write(
        tmp_path / "repo",
        {"a.py": f'x = "{TOKEN}"\n', "b/c.yaml": f"\n\nkey: {TOKEN}\n", "d.py": f'y = "{OTHER}"'},
    )
    with caplog.at_level(logging.DEBUG):
        status, report = scan(scanner, root, tmp_path)
    text = (tmp_path / "out" / "secrets.json").read_text()
    for value in (TOKEN, OTHER, TOKEN[4:20], OTHER[-16:]):
        assert value not in text and value not in json.dumps(status) and value not in caplog.text
    assert all(set(f) == {"path", "line", "rule", "fingerprint"} for f in report["findings"])
    prints = {f["path"]: f["fingerprint"] for f in report["findings"]}
    assert all(re.fullmatch(r"[0-9a-f]{64}", p) for p in prints.values())
    assert prints["a.py"] == prints["b/c.yaml"] != prints["d.py"]  # same secret, anywhere


def test_private_keys_need_material_and_differ_by_it(scanner: ModuleType, tmp_path: Path) -> None:
    def pem(seed: int) -> str:
        rng = random.Random(seed)
        body = ["".join(rng.choice(string.ascii_letters) for _ in range(64)) for _ in range(4)]
        return "\n".join(
            ["-----BEGIN RSA PRIVATE KEY-----", *body, "-----END RSA PRIVATE KEY-----"]
        )

    header = 'if text.startswith("-----BEGIN RSA PRIVATE KEY-----"):\n    pass\n'
    root = write(tmp_path / "repo", {"a.key": pem(1), "b.key": pem(2), "parse.py": header})
    _, report = scan(scanner, root, tmp_path)
    assert places(report) == {
        ("a.key", 1, "secrets.private-key"),
        ("b.key", 1, "secrets.private-key"),
    }
    assert len({f["fingerprint"] for f in report["findings"]}) == 2


def test_symlinks_are_never_followed(scanner: ModuleType, tmp_path: Path) -> None:
    outside = write(tmp_path / "outside", {"creds.txt": f"{TOKEN}\n"})
    root = tmp_path / "repo"
    root.mkdir()
    (root / "file-link").symlink_to(outside / "creds.txt")
    (root / "dir-link").symlink_to(outside)
    (root / "token-link").symlink_to(OTHER)  # git stores a link as its target text
    _, report = scan(scanner, root, tmp_path)
    assert places(report) == {("token-link", 1, "secrets.github-token")}


def test_binary_and_utf16_files_are_scanned_by_their_strings(
    scanner: ModuleType, tmp_path: Path
) -> None:
    root = write(
        tmp_path / "repo",
        {
            "blob.bin": b"\x00\x01\x02" * 100 + TOKEN.encode() + b"\x00" * 50,
            "wide.bin": b"\x00\xff" + OTHER.encode("utf-16-le") + b"\x00\x00",
            "bom.txt": ("x = 1\n" + f'y = "{TOKEN}"\n').encode("utf-16"),
        },
    )
    _, report = scan(scanner, root, tmp_path)
    assert places(report) == {
        ("blob.bin", 0, "secrets.github-token"),
        ("wide.bin", 0, "secrets.github-token"),
        ("bom.txt", 2, "secrets.github-token"),
    }


def test_a_secret_deep_in_a_very_long_line_is_found(scanner: ModuleType, tmp_path: Path) -> None:
    filler = ";".join(f"f{i}(x)" for i in range(20_000))
    root = write(tmp_path / "repo", {"app.min.js": f'{filler};k="{TOKEN}";{filler}\n'})
    _, report = scan(scanner, root, tmp_path)
    assert places(report) == {("app.min.js", 1, "secrets.github-token")}


def test_too_large_and_special_files_are_reported_unscanned(
    scanner: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(scanner, "MAX_FILE_BYTES", 1000)
    root = write(tmp_path / "repo", {"big.txt": "a" * 2000, "ok.py": "x = 1\n"})
    os.mkfifo(root / "pipe")  # opening it would block the scan forever
    _, first = scan(scanner, root, tmp_path)
    reasons = {u["path"]: u["reason"] for u in first["unscanned"]}
    assert reasons == {"big.txt": "too large: 2000 bytes > 1000", "pipe": "not a regular file"}
    _, again = scan(scanner, root, tmp_path)
    big = {u["path"]: u["fingerprint"] for u in again["unscanned"]}["big.txt"]
    assert big == {u["path"]: u["fingerprint"] for u in first["unscanned"]}["big.txt"]
    (root / "big.txt").write_text("b" * 2000)  # changed content: a new unscanned entry
    _, changed = scan(scanner, root, tmp_path)
    assert big != {u["path"]: u["fingerprint"] for u in changed["unscanned"]}["big.txt"]


@pytest.mark.parametrize(
    ("setting", "value", "reason"),
    [
        ("BUDGET_S", 0.0, r"budget: 3 files not scanned \(time budget 0s\)"),
        ("MAX_FILES", 1, r"budget: 2 files not scanned \(limits: 1 files"),
    ],
)
def test_budgets_end_the_scan_with_an_unscanned_entry(
    scanner: ModuleType,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    setting: str,
    value: float,
    reason: str,
) -> None:
    monkeypatch.setattr(scanner, setting, value)
    root = write(tmp_path / "repo", {"a.py": "x = 1\n", "b.py": "y = 2\n", "c.py": "z = 3\n"})
    status, report = scan(scanner, root, tmp_path)
    assert "error" not in status and len(report["unscanned"]) == 1
    assert re.match(reason, report["unscanned"][0]["reason"])
    _, again = scan(scanner, root, tmp_path)  # never matches the base's: it fails, always
    assert again["unscanned"][0]["fingerprint"] != report["unscanned"][0]["fingerprint"]


def test_a_broken_scanner_is_an_error_that_quotes_nothing(
    scanner: ModuleType, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def broken(*args: object) -> list[object]:
        raise ValueError(f"could not parse {TOKEN}")

    monkeypatch.setattr(scanner, "scan_lines", broken)
    root = write(tmp_path / "repo", {"a.py": "x = 1\n"})
    status, report = scan(scanner, root, tmp_path)
    assert status["exit_code"] == 1
    assert re.fullmatch(
        r"secret scan broke: ValueError at test_secret_scan\.py:\d+", status["error"]
    )
    assert report["error"] == status["error"] and report["findings"] == []
    assert TOKEN not in json.dumps(status)


def test_no_semgrep_secret_rule_message_quotes_the_match() -> None:
    rules = yaml.safe_load(RULES.read_text())["rules"]
    assert rules and all("$" not in rule["message"] for rule in rules)
