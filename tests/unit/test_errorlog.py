"""Error logs: stack normalisation, grouping across services and releases, rates, bad logs."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from triloop.discovery.scanners import ScannerError
from triloop.discovery.scanners.base import ScanContext
from triloop.discovery.scanners.errorlog import ERRORLOG, read_events, repo_resolver
from triloop.discovery.stacks import normalise, parse_event, parse_traceback, signature
from triloop.domain.policy import Policy, RepoPolicy

from tests.support.rows import git_repo

APP = {
    "app/__init__.py": "",
    "app/views.py": "from app import db\n\n\ndef get_user(uid):\n    return db.load(uid)\n",
    "app/db.py": "ROWS = {}\n\n\ndef load(uid):\n    return ROWS[uid]\n",
}


def _traceback(root: str, view_line: int, db_line: int, value: str, lib: bool = False) -> str:
    celery = '  File "/usr/lib/python3.11/site-packages/celery/app/trace.py", line 451, in run\n'
    return (
        "Traceback (most recent call last):\n"
        + (celery if lib else "")
        + f'  File "{root}/app/views.py", line {view_line}, in get_user\n'
        + "    return db.load(uid)\n"
        + "           ^^^^^^^^^^^^\n"
        + f'  File "{root}/app/db.py", line {db_line}, in load\n'
        + "    return ROWS[uid]\n"
        + f"KeyError: {value}\n"
    )


SENTRY_EVENT = {
    "event_id": "9f1c2a7e0b5d4c3a8e6f1b2d3c4a5e6f",
    "timestamp": 1767267000.0,  # 2026-01-01T11:30:00Z
    "release": "1.1",
    "tags": [["service", "api"], ["environment", "prod"]],
    "exception": {
        "values": [
            {
                "type": "KeyError",
                "module": "builtins",
                "value": "9",
                "stacktrace": {
                    "frames": [
                        {
                            "abs_path": "/venv/site-packages/celery/app/trace.py",
                            "function": "run",
                            "lineno": 450,
                            "in_app": False,
                        },
                        {
                            "filename": "app/views.py",
                            "module": "app.views",
                            "function": "get_user",
                            "lineno": 11,
                            "in_app": True,
                        },
                        {
                            "abs_path": "/srv/api/app/db.py",
                            "function": "load",
                            "lineno": 21,
                            "in_app": True,
                        },
                    ]
                },
            }
        ]
    },
}


def _log_lines() -> list[dict[str, object]]:
    value_error = (
        "Traceback (most recent call last):\n"
        '  File "/srv/api/app/views.py", line 5, in get_user\n'
        "ValueError: bad uid 0x7f3a2b1c\n"
    )
    return [
        {
            "timestamp": "2026-01-01T10:00:00Z",
            "service": "api",
            "release": "1.0",
            "level": "error",
            "exc_info": _traceback("/srv/api", 10, 20, "42"),
        },
        {
            "timestamp": "2026-01-01T11:00:00+00:00",
            "service": "worker",
            "release": "1.1",
            "exc_info": _traceback("/opt/worker/lib", 14, 27, "7", lib=True),
        },
        {"timestamp": "2026-01-01T11:10:00Z", "level": "info", "msg": "request served"},
        SENTRY_EVENT,
        {"timestamp": "2025-12-30T09:00:00Z", "service": "api", "traceback": value_error},
        {"timestamp": "2026-01-01T09:00:00Z", "service": "api", "traceback": value_error},
    ]


def _ctx(tmp_path: Path, log: Path, window: float = 24.0) -> ScanContext:
    checkout = git_repo(tmp_path / "repo", APP)
    policy = Policy.model_validate(
        {
            "repos": {"r": RepoPolicy(error_logs=str(log))},
            "host_scanners": {"errorlog_window_hours": window},
        }
    )
    return ScanContext(repo_id="r", checkout=checkout, output_dir=tmp_path, policy=policy)


@pytest.mark.parametrize(
    ("text", "normal"),
    [
        ("<lambda at 0x7f3a2b1c>", "<lambda at <addr>>"),
        ("tmp_9f1c2a7e0b5d4c3a", "tmp_<id>"),
        ("job_123456", "job_<id>"),
        ("get_user", "get_user"),
        ("x-2f1c2a7e-0b5d-4c3a-8e6f-1b2d3c4a5e6f", "x-<addr>"),
    ],
)
def test_normalise_strips_addresses_and_ids(text: str, normal: str) -> None:
    assert normalise(text) == normal


def test_parse_traceback_with_a_chained_exception() -> None:
    text = (
        _traceback("/a", 1, 2, "1")
        + "\nDuring handling of the above exception, another exception occurred:\n\n"
        + 'Traceback (most recent call last):\n  File "/a/app/views.py", line 9, in get_user\n'
        + "app.errors.NotFound: user 1\n"
    )
    blocks = parse_traceback(text)
    assert [(t, m, [f.function for f in fr]) for t, m, fr in blocks] == [
        ("KeyError", "1", ["get_user", "load"]),
        ("app.errors.NotFound", "user 1", ["get_user"]),
    ]


def test_one_signature_across_services_releases_and_line_shifts(tmp_path: Path) -> None:
    resolve = repo_resolver(git_repo(tmp_path / "repo", APP))
    events = [parse_event(obj) for obj in _log_lines()[:4]]
    sigs = {signature(e, resolve) for e in events if e is not None}
    assert sigs == {"KeyError\n  app/views.py in get_user\n  app/db.py in load"}
    assert events[2] is None  # an ordinary log line


def test_errorlog_scanner_on_a_fixture_repository(tmp_path: Path) -> None:
    log = tmp_path / "errors.jsonl"
    log.write_text("".join(json.dumps(line) + "\n" for line in _log_lines()))
    found = {f.rule: f for f in ERRORLOG.scan(_ctx(tmp_path, log))}
    assert set(found) == {"KeyError", "ValueError"}
    key_error = found["KeyError"]
    assert (key_error.tool, key_error.path, key_error.line, key_error.symbol) == (
        "errorlog",
        "app/db.py",
        21,
        "load",
    )
    assert key_error.data == {
        "count": 3,
        "rate_per_hour": 0.125,
        "window_hours": 24.0,
        "first_seen": "2026-01-01T10:00:00+00:00",
        "last_seen": "2026-01-01T11:30:00+00:00",
        "releases": "1.0,1.1",
        "services": "api,worker",
    }
    assert key_error.group_key.startswith("stack:") and key_error.severity == "low"
    value_error = found["ValueError"]
    assert value_error.data["count"] == 1  # the 2025-12-30 event is outside the 24 h window
    assert value_error.data["first_seen"] == "2025-12-30T09:00:00+00:00"
    assert value_error.path == "app/views.py" and value_error.group_key != key_error.group_key
    # a one-hour window: only the KeyError events from 10:30 on count; ValueError drops out
    short = {f.rule: f for f in ERRORLOG.scan(_ctx(tmp_path / "short", log, window=1.0))}
    assert set(short) == {"KeyError"} and short["KeyError"].data["count"] == 2
    assert short["KeyError"].severity == "medium"  # 2 per hour


def test_a_sentry_export_and_a_truncated_last_line(tmp_path: Path) -> None:
    export = tmp_path / "export.json"
    export.write_text(json.dumps({"events": [SENTRY_EVENT, SENTRY_EVENT]}))
    assert [len(e.exceptions) for e in read_events(export)] == [1, 1]
    as_list = tmp_path / "list.json"
    as_list.write_text(json.dumps([SENTRY_EVENT]))
    assert len(read_events(as_list)) == 1
    cut = tmp_path / "cut.jsonl"
    cut.write_text(json.dumps(SENTRY_EVENT) + '\n{"timestamp": "2026-01-01T1')
    assert len(read_events(cut)) == 1


@pytest.mark.parametrize(
    ("body", "message"),
    [
        (b'{"a": 1}\n\x00\x01\xff\xfe garbage\n{"b": 2}\n', r"errors.log:2: binary data, not UTF"),
        (b'{"a": 1}\n\x00\x01 ascii control bytes\n', r"errors.log:2: binary data \(control"),
        (b'{"a": 1}\nplain text line\n{"b": 2}\n', r"errors.log:2: not JSON"),
        (b'[{"a": 1},\n oops]', r"errors.log:2: Expecting value"),
        (b'{"events": 3}', r"errors.log: 'events' is not a list"),
        (b'{"exc_info": "Traceback (most recent call last):\\nE: x"}\n', r"line 1\): no timestamp"),
        (b'{"timestamp": "noon", "exception": {"values": [{"type": "E"}]}}\n', r"not ISO-8601"),
        (b'{"timestamp": 1, "exception": {"values": [{"value": "v"}]}}\n', r"malformed exception"),
        (b"[3]", r"\(event 0\): expected a JSON object"),
    ],
)
def test_a_bad_log_is_an_error_naming_file_and_line(
    tmp_path: Path, body: bytes, message: str
) -> None:
    log = tmp_path / "errors.log"
    log.write_bytes(body)
    with pytest.raises(ScannerError, match=r"scanner errorlog: error log .*" + message):
        ERRORLOG.scan(_ctx(tmp_path, log))


def test_on_only_for_repos_with_a_log(tmp_path: Path) -> None:
    ctx = _ctx(tmp_path, tmp_path / "missing.jsonl")
    assert ERRORLOG.applies(ctx)
    assert not ERRORLOG.applies(ScanContext("other", ctx.checkout, tmp_path, ctx.policy))
    with pytest.raises(ScannerError, match=r"missing.jsonl is not readable"):
        ERRORLOG.scan(ctx)
