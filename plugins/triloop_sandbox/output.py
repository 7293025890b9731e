"""Only the head and the tail of a sandbox's output reach the Airflow task log.

DockerOperator logs every line the container writes and keeps them all in memory
(``fetch_logs``); a container printing a gigabyte would make a gigabyte task log and a worker
holding it. :class:`CappedOutput` wraps the container's attach stream before the provider reads
it: the head (``head_lines`` lines within ``head_bytes``) passes through as it comes, so the log
is live while a run starts; after it, only a bounded buffer of the newest output is held, and
when the stream ends one line saying how many lines and bytes were dropped is yielded, then the
tail (the last ``tail_lines`` lines within ``tail_bytes``). The last line, the harness's JSON
summary, stays the last line, where the operator returns it from.

Past the head the per-chunk work is a newline count and a deque append, so a flood costs the
worker little more than reading it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterable, Iterator

MARKER = "[triloop] {lines} lines ({size}) of sandbox output dropped here: the task log shows the"


def human(size: int) -> str:
    value, unit = float(size), "B"
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            break
        value /= 1024
    return f"{value:.0f} {unit}" if unit == "B" else f"{value:.1f} {unit}"


class CappedOutput:
    """An iterable over ``stream`` (bytes chunks) yielding its head, a drop line and its tail."""

    def __init__(
        self,
        stream: Iterable[bytes | str],
        *,
        head_lines: int,
        tail_lines: int,
        head_bytes: int,
        tail_bytes: int,
    ) -> None:
        if min(head_lines, tail_lines, head_bytes, tail_bytes) < 1:
            raise ValueError("head and tail caps must be positive")
        self._stream = stream
        self.head_lines, self.tail_lines = head_lines, tail_lines
        self.head_bytes, self.tail_bytes = head_bytes, tail_bytes
        self._lines_left, self._bytes_left = head_lines, head_bytes
        self._held: deque[bytes] = deque()
        self._held_bytes = 0
        self.total_bytes = 0
        self.tail_region_bytes = 0  # everything after the head, held or let go
        self.tail_region_newlines = 0
        self.head_shown_lines = 0
        self.dropped_lines = 0
        self.dropped_bytes = 0

    def __iter__(self) -> Iterator[bytes]:
        head_open = True
        for raw in self._stream:
            chunk = raw.encode("utf-8", "replace") if isinstance(raw, str) else bytes(raw)
            self.total_bytes += len(chunk)
            if head_open:
                cut = self._head_cut(chunk)
                if cut is None:
                    self.head_shown_lines += chunk.count(b"\n")
                    yield chunk
                    continue
                head_open = False
                head, chunk = chunk[:cut], chunk[cut:]
                if head:
                    head = head if head.endswith(b"\n") else head + b"\n"
                    self.head_shown_lines += head.count(b"\n")
                    yield head
            self._hold(chunk)
        if not head_open:
            yield self._tail()

    def _head_cut(self, chunk: bytes) -> int | None:
        """Where the head ends in ``chunk``, or None if all of it still belongs to the head."""
        newlines = chunk.count(b"\n")
        if newlines < self._lines_left and len(chunk) < self._bytes_left:
            self._lines_left -= newlines
            self._bytes_left -= len(chunk)
            return None
        limit, pos = min(len(chunk), self._bytes_left), -1
        for _ in range(self._lines_left):
            pos = chunk.find(b"\n", pos + 1, limit)
            if pos < 0:
                return limit  # the byte cap falls first, mid-line
        return pos + 1

    def _hold(self, chunk: bytes) -> None:
        if not chunk:
            return
        self.tail_region_bytes += len(chunk)
        self.tail_region_newlines += chunk.count(b"\n")
        self._held.append(chunk)
        self._held_bytes += len(chunk)
        while self._held_bytes - len(self._held[0]) >= self.tail_bytes:
            self._held_bytes -= len(self._held.popleft())

    def _tail(self) -> bytes:
        data = b"".join(self._held)
        self._held.clear()
        window = data[-self.tail_bytes :]
        prefix = b""
        if len(window) < self.tail_region_bytes:  # it starts mid-line unless after a newline
            first = window.find(b"\n")
            if 0 <= first < len(window) - 1:
                window = window[first + 1 :]
            else:  # one line longer than the window: show its end
                prefix = b"[...] "
        ends_with_newline = window.endswith(b"\n")
        lines = (window[:-1] if ends_with_newline else window).split(b"\n")[-self.tail_lines :]
        kept = b"\n".join(lines) + b"\n"
        region_lines = self.tail_region_newlines + (0 if data.endswith(b"\n") else 1)
        self.dropped_lines = max(0, region_lines - len(lines))
        self.dropped_bytes = max(0, self.tail_region_bytes - len(kept) + (not ends_with_newline))
        if not self.dropped_bytes:
            return data
        note = MARKER.format(lines=self.dropped_lines, size=human(self.dropped_bytes))
        total = human(self.total_bytes)
        note += f" first {self.head_shown_lines} and the last {len(lines)} lines of {total}"
        return note.encode() + b"\n" + prefix + kept
