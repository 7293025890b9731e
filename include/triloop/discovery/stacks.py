"""Error events and their stack signatures, as Sentry groups them (pure, no I/O).

An event is a Sentry event (``exception.values`` or an API export's ``entries``) or a JSON log
record carrying a Python traceback as text (``exc_info``, ``traceback``, ``stack_trace``).
Its signature is the exception types plus each frame's place and function, with no line
numbers and no memory addresses or ids, so the same error from two services, or from two
releases with shifted lines, has one signature. Where frames say ``in_app`` only those count;
otherwise the frames that resolve to a file of the repository count (all if none do).
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

Resolve = Callable[[str, str], str | None]  # (filename, module) -> repo-relative path or None
_ADDRESS = re.compile(r"0x[0-9a-fA-F]+|\b[0-9a-fA-F]{8}-(?:[0-9a-fA-F]{4}-){3}[0-9a-fA-F]{12}\b")
_LONG_ID = re.compile(r"(?<![0-9A-Za-z])(?=[0-9a-fA-F]*\d)[0-9a-fA-F]{12,}(?![0-9A-Za-z])|\d{4,}")
_TB_FRAME = re.compile(r'^\s*File "(?P<file>[^"]+)", line (?P<line>\d+), in (?P<func>.+?)\s*$')
_TB_EXC = re.compile(r"^(?P<type>[A-Za-z_][\w.]*)(?::\s?(?P<msg>.*))?$")
_TIME_KEYS = ("timestamp", "dateCreated", "datetime", "time", "@timestamp")
_TEXT_KEYS = ("exc_info", "traceback", "stack_trace", "exception")
_BUILTIN_MODULES = ("builtins", "exceptions", "__builtin__", "")


class EventError(ValueError):
    """An event is malformed; the message says what was wrong (the caller names where)."""


@dataclass(frozen=True)
class Frame:
    filename: str
    module: str
    function: str
    lineno: int
    in_app: bool | None


@dataclass(frozen=True)
class ErrorEvent:
    timestamp: datetime
    exceptions: tuple[tuple[str, str, tuple[Frame, ...]], ...]  # (type, message, frames) old..new
    service: str
    release: str


def normalise(text: str) -> str:
    """Addresses, UUIDs and long ids out of a name (``<lambda at 0x7f..>``, ``tmp_83af1c..``)."""
    return _LONG_ID.sub("<id>", _ADDRESS.sub("<addr>", text)).strip()


def parse_time(value: Any) -> datetime:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return datetime.fromtimestamp(value, UTC)
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError as exc:
            raise EventError(f"timestamp {value!r} is not ISO-8601") from exc
        return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)
    raise EventError(f"no timestamp (one of {', '.join(_TIME_KEYS)})")


def parse_traceback(text: str) -> list[tuple[str, str, tuple[Frame, ...]]]:
    """Each ``Traceback (most recent call last):`` block of a Python traceback, oldest first."""
    out: list[tuple[str, str, tuple[Frame, ...]]] = []
    frames: list[Frame] | None = None
    for line in text.splitlines():
        if line.startswith("Traceback (most recent call last):"):
            frames = []
        elif frames is not None and (m := _TB_FRAME.match(line)):
            frames.append(Frame(m["file"], "", m["func"], int(m["line"]), None))
        elif frames is not None and not line[:1].isspace() and (m := _TB_EXC.match(line)):
            out.append((m["type"], m["msg"] or "", tuple(frames)))
            frames = None
    return out


def _sentry_exceptions(obj: dict[str, Any]) -> list[Any] | None:
    exc = obj.get("exception")
    if isinstance(exc, dict):
        return list(exc.get("values") or [])
    if isinstance(exc, list):
        return exc
    for entry in obj.get("entries") or []:
        if isinstance(entry, dict) and entry.get("type") == "exception":
            return list((entry.get("data") or {}).get("values") or [])
    return None


def _tag(obj: dict[str, Any], key: str) -> str:
    tags = obj.get("tags")
    if isinstance(tags, dict):
        return str(tags.get(key) or "")
    for tag in tags if isinstance(tags, list) else []:
        pair = (tag.get("key"), tag.get("value")) if isinstance(tag, dict) else tuple(tag)
        if len(pair) == 2 and pair[0] == key:
            return str(pair[1])
    return ""


def parse_event(obj: Any) -> ErrorEvent | None:
    """One event; None for a record with no exception (an ordinary log line)."""
    if not isinstance(obj, dict):
        raise EventError(f"expected a JSON object, got {type(obj).__name__}")
    values = _sentry_exceptions(obj)
    if values is not None:
        try:
            exceptions = [_sentry_exception(v) for v in values]
        except (KeyError, TypeError, AttributeError, ValueError) as exc:
            raise EventError(f"malformed exception entry: {exc!r}") from exc
    else:
        text = next((obj[k] for k in _TEXT_KEYS if isinstance(obj.get(k), str)), "")
        exceptions = parse_traceback(text)
    if not exceptions:
        return None
    when = next((obj[k] for k in _TIME_KEYS if obj.get(k) is not None), None)
    service = str(obj.get("service") or _tag(obj, "service") or obj.get("server_name") or "")
    release = str(obj.get("release") or _tag(obj, "release") or obj.get("version") or "")
    return ErrorEvent(parse_time(when), tuple(exceptions), service, release)


def _sentry_exception(value: dict[str, Any]) -> tuple[str, str, tuple[Frame, ...]]:
    module = str(value.get("module") or "")
    exc_type = str(value["type"])
    qualified = exc_type if module in _BUILTIN_MODULES else f"{module}.{exc_type}"
    frames = tuple(
        Frame(
            filename=str(f.get("abs_path") or f.get("filename") or ""),
            module=str(f.get("module") or ""),
            function=str(f.get("function") or "?"),
            lineno=int(f.get("lineno") or 0),
            in_app=f.get("in_app") if isinstance(f.get("in_app"), bool) else None,
        )
        for f in ((value.get("stacktrace") or {}).get("frames") or [])
    )
    return qualified, str(value.get("value") or ""), frames


def app_frames(frames: tuple[Frame, ...], resolve: Resolve) -> tuple[Frame, ...]:
    """The frames that count: marked in_app, else resolving into the repo, else all."""
    if any(f.in_app is not None for f in frames):
        return tuple(f for f in frames if f.in_app)
    return tuple(f for f in frames if resolve(f.filename, f.module)) or frames


def frame_place(frame: Frame, resolve: Resolve) -> str:
    """Where a frame is, independent of deploy path: repo path, module, package path, name."""
    repo_path = resolve(frame.filename, frame.module)
    if repo_path:
        return repo_path
    if frame.module:
        return normalise(frame.module)
    for marker in ("site-packages/", "dist-packages/"):
        if marker in frame.filename:
            return normalise(frame.filename.rsplit(marker, 1)[1])
    return normalise(frame.filename.replace("\\", "/").rsplit("/", 1)[-1])


def signature(event: ErrorEvent, resolve: Resolve) -> str:
    lines = []
    for exc_type, _message, frames in event.exceptions:
        lines.append(normalise(exc_type))
        for frame in app_frames(frames, resolve):
            lines.append(f"  {frame_place(frame, resolve)} in {normalise(frame.function)}")
    return "\n".join(lines)


def signature_key(sig: str) -> str:
    return "stack:" + hashlib.sha256(sig.encode()).hexdigest()[:16]
