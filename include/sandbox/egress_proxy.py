#!/usr/bin/env python3
"""triloop-egress-proxy: the only way out of an egress sandbox (standard library only).

A forward proxy for one sandbox run. It tunnels CONNECT (TLS) and forwards absolute-form plain
HTTP requests, but only to the ``--allow host:port`` pairs (exact match, host case-insensitive);
anything else gets 403 and a reason. Names are resolved only after a host passed the allowlist,
so nothing else gets DNS. Plain-HTTP responses carrying an OpenAI-style ``usage`` object (JSON or
an SSE stream) are metered; with ``--max-tokens N`` every request after the total reached N gets
429. ``--meter-file`` is rewritten atomically after each request (see ``Meter.snapshot``).
TLS tunnels are counted as requests but cannot be metered.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import re
import signal
import socket
import socketserver
import sys
import tempfile
import threading
from collections.abc import Iterator
from io import BufferedIOBase
from typing import Any

VERSION = "1.0.0"
SCHEMA_VERSION = 1
MAX_HEAD_BYTES = 64 * 1024
MAX_BODY_BYTES = 64 * 1024 * 1024
MAX_METERED_BYTES = 32 * 1024 * 1024
MAX_REFUSED = 200  # refusals kept in the meter file (the first ones)
MAX_CONNECTIONS = 128
CONNECT_TIMEOUT_S = 10.0
HEAD_TIMEOUT_S = 30.0
HOST = re.compile(r"^[a-z0-9_]([a-z0-9_.-]{0,252})$")
# Dropped when forwarding either way; Host, Content-Length and Expect are set by the proxy.
HOP_BY_HOP = frozenset(
    [
        "connection",
        "keep-alive",
        "proxy-connection",
        "proxy-authorization",
        "proxy-authenticate",
        "te",
        "trailer",
        "transfer-encoding",
        "upgrade",
        "host",
        "content-length",
        "expect",
    ]
)
KINDS = {403: "egress_refused", 429: "token_budget_exceeded"}
PHRASES = {400: "Bad Request", 403: "Forbidden", 413: "Content Too Large", 429: "Too Many Requests"}
PHRASES |= {431: "Request Header Fields Too Large", 501: "Not Implemented", 502: "Bad Gateway"}
PHRASES |= {503: "Service Unavailable"}
log = logging.getLogger("triloop-egress-proxy")


class ProxyError(Exception):
    """A request the proxy answers itself: status, reason, and the target if it had one."""

    def __init__(self, status: int, reason: str, target: tuple[str, int] | None = None) -> None:
        super().__init__(reason)
        self.status, self.reason, self.target = status, reason, target


def parse_hostport(text: str, default_port: int | None = None) -> tuple[str, int]:
    """``host:port`` (or ``[v6]:port``) to (lower-case host, port); ValueError when invalid."""
    text = text.strip()
    if text.startswith("["):
        host, bracket, rest = text[1:].partition("]")
        if not bracket or (rest and not rest.startswith(":")):
            raise ValueError(f"{text!r} is not [ipv6]:port")
        port_text = rest[1:]
        if not host or not all(c in "0123456789abcdefABCDEF:." for c in host):
            raise ValueError(f"{text!r} has an invalid IPv6 address")
    else:
        host, colon, port_text = text.rpartition(":")
        if not colon:
            host, port_text = text, ""
        if not HOST.match(host.lower()):
            raise ValueError(f"{text!r} has an invalid host name")
    if not port_text:
        if default_port is None:
            raise ValueError(f"{text!r} has no port")
        return host.lower(), default_port
    if not port_text.isdigit() or not 0 < int(port_text) < 65536:
        raise ValueError(f"{text!r} has an invalid port")
    return host.lower(), int(port_text)


def usage_of(content_type: str, body: bytes) -> tuple[int, int, int] | None:
    """(prompt, completion, total) tokens from an OpenAI-style JSON or SSE response."""
    if "text/event-stream" in content_type.lower():
        found = None
        for line in body.splitlines():  # the last usage wins: it is the final (cumulative) one
            data = line[5:].strip() if line.startswith(b"data:") else b""
            if data and data != b"[DONE]":
                found = _usage(_json(data)) or found
        return found
    if "json" in content_type.lower() or body.lstrip().startswith(b"{"):
        return _usage(_json(body))
    return None


def _json(data: bytes) -> Any:
    try:
        return json.loads(data)
    except ValueError:
        return None


def _usage(payload: Any) -> tuple[int, int, int] | None:
    usage = payload.get("usage") if isinstance(payload, dict) else None
    if not isinstance(usage, dict):
        return None

    def count(key: str) -> int:
        value = usage.get(key)
        return value if isinstance(value, int) and not isinstance(value, bool) and value > 0 else 0

    prompt, completion = count("prompt_tokens"), count("completion_tokens")
    total = count("total_tokens") or prompt + completion
    return (prompt, completion, total) if total else None


class Meter:
    """Running totals for one sandbox run, mirrored to the meter file after every change."""

    def __init__(self, path: str | None, max_tokens: int | None) -> None:
        self.path, self.max_tokens = path, max_tokens
        self.lock = threading.Lock()
        self.requests = self.tokens = self.prompt_tokens = self.completion_tokens = 0
        self.refused: list[dict[str, Any]] = []
        self.over_budget = ""
        self.write()

    def snapshot(self) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "requests": self.requests,
            "tokens": self.tokens,
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "refused": list(self.refused),
            "over_budget": self.over_budget,
        }

    def admit(self, host: str, port: int) -> None:
        """Count a request the allowlist let through, unless the token budget is spent."""
        with self.lock:
            if self.max_tokens is not None and self.tokens >= self.max_tokens:
                self.over_budget = "tokens"
                reason = f"token budget of {self.max_tokens} exhausted ({self.tokens} used)"
                self._refuse(host, port, reason)
                raise ProxyError(429, reason, (host, port))
            self.requests += 1
            self._write()

    def refuse(self, host: str, port: int, reason: str) -> None:
        with self.lock:
            self._refuse(host, port, reason)

    def add_usage(self, prompt: int, completion: int, total: int) -> None:
        with self.lock:
            self.prompt_tokens += prompt
            self.completion_tokens += completion
            self.tokens += total
            if self.max_tokens is not None and self.tokens >= self.max_tokens:
                self.over_budget = "tokens"
            self._write()

    def write(self) -> None:
        with self.lock:
            self._write()

    def _refuse(self, host: str, port: int, reason: str) -> None:
        if len(self.refused) < MAX_REFUSED:
            self.refused.append({"host": host, "port": port, "reason": reason})
        self._write()

    def _write(self) -> None:
        if not self.path:
            return
        directory = os.path.dirname(os.path.abspath(self.path))
        fd, tmp = tempfile.mkstemp(prefix=".usage-", suffix=".tmp", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as fh:
                json.dump(self.snapshot(), fh, sort_keys=True)
            os.chmod(tmp, 0o644)
            os.replace(tmp, self.path)
        except BaseException:
            os.unlink(tmp)
            raise


def read_head(rfile: BufferedIOBase) -> tuple[str, list[tuple[str, str]]] | None:
    """The start line and header fields of one message; None on a clean EOF before it."""
    lines: list[str] = []
    size = 0
    while True:
        raw = rfile.readline(MAX_HEAD_BYTES + 1)
        size += len(raw)
        if size > MAX_HEAD_BYTES:
            raise ProxyError(431, "request head too large")
        if not raw:
            if lines:
                raise ProxyError(400, "connection closed in the middle of the request head")
            return None
        if raw in (b"\r\n", b"\n"):
            if lines:
                break
            continue  # blank lines before a request line are tolerated (RFC 9112, 2.2)
        lines.append(raw.decode("latin-1").rstrip("\r\n"))
    headers = []
    for line in lines[1:]:
        name, colon, value = line.partition(":")
        if not colon or not name or name != name.strip() or line[0] in " \t":
            raise ProxyError(400, f"malformed header line {line[:80]!r}")
        headers.append((name, value.strip()))
    return lines[0], headers


def header(headers: list[tuple[str, str]], name: str) -> str | None:
    values = [v for k, v in headers if k.lower() == name]
    if len(set(values)) > 1:
        raise ProxyError(400, f"conflicting {name} headers")
    return values[0] if values else None


def read_body(rfile: BufferedIOBase, headers: list[tuple[str, str]]) -> bytes:
    """A request body framed by Content-Length or chunked coding (decoded), capped in size."""
    coding = header(headers, "transfer-encoding")
    if coding is not None:
        if coding.lower().replace(" ", "") != "chunked":
            raise ProxyError(501, f"unsupported transfer-encoding {coding!r}")
        return b"".join(iter_chunks(rfile, MAX_BODY_BYTES, 400))
    length = header(headers, "content-length")
    if length is None:
        return b""
    if not length.isdigit() or int(length) > MAX_BODY_BYTES:
        raise ProxyError(400 if not length.isdigit() else 413, f"bad content-length {length!r}")
    body = rfile.read(int(length))
    if len(body) != int(length):
        raise ProxyError(400, "request body shorter than its content-length")
    return body


def iter_chunks(rfile: BufferedIOBase, limit: int, bad: int) -> Iterator[bytes]:
    """Decode chunked transfer coding, yielding each chunk's data as it arrives; a broken
    coding is a ``bad`` error (400 from the client, 502 from upstream)."""
    seen = 0
    while True:
        line = rfile.readline(1024)
        size_text = line.split(b";", 1)[0].strip()
        try:
            size = int(size_text, 16)
        except ValueError:
            raise ProxyError(bad, "bad chunk size") from None
        if size == 0:
            while rfile.readline(MAX_HEAD_BYTES) not in (b"\r\n", b"\n", b""):
                pass  # trailer fields are dropped
            return
        seen += size
        if seen > limit:
            raise ProxyError(413, "body too large")
        data = rfile.read(size)
        if len(data) != size:
            raise ProxyError(bad, "connection closed in the middle of a chunk")
        rfile.readline(16)
        yield data


class Proxy(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    request_queue_size = 64

    def __init__(
        self, listen: tuple[str, int], allow: set[tuple[str, int]], meter: Meter, idle_s: float
    ) -> None:
        self.allow, self.meter, self.idle_s = allow, meter, idle_s
        self.slots = threading.BoundedSemaphore(MAX_CONNECTIONS)
        super().__init__(listen, Handler)


class Handler(socketserver.StreamRequestHandler):
    server: Proxy

    answered = False  # once a response (or tunnel) has begun, errors only close it

    def handle(self) -> None:
        if not self.server.slots.acquire(blocking=False):
            self.reply(503, "too many connections")
            return
        try:
            self.connection.settimeout(HEAD_TIMEOUT_S)
            self.serve_one()
        except ProxyError as exc:
            self.refuse(exc)
        except (TimeoutError, ConnectionError) as exc:
            log.info("client %s: %s", self.client_address[0], type(exc).__name__)
        except Exception:  # one broken connection never takes the proxy down
            log.exception("unexpected error serving %s", self.client_address[0])
        finally:
            self.server.slots.release()

    def serve_one(self) -> None:
        head = read_head(self.rfile)
        if head is None:
            return
        line, headers = head
        method, _, rest = line.partition(" ")
        target, _, version = rest.partition(" ")
        if not (method.isalpha() and target and version in ("HTTP/1.0", "HTTP/1.1")):
            raise ProxyError(400, f"malformed request line {line[:80]!r}")
        if method == "CONNECT":
            host, port = self.checked(target, None)
            self.tunnel(host, port)
            return
        if not target.lower().startswith("http://"):
            why = "use CONNECT for https" if target.lower().startswith("https://") else None
            raise ProxyError(400, why or "only absolute-form http:// requests are proxied")
        authority, path = split_url(target[len("http://") :])
        host, port = self.checked(authority, 80)
        self.forward(method, host, port, authority, path, headers)

    def checked(self, authority: str, default_port: int | None) -> tuple[str, int]:
        try:
            host, port = parse_hostport(authority, default_port)
        except ValueError as exc:
            raise ProxyError(400, f"bad target: {exc}") from None
        if (host, port) not in self.server.allow:
            raise ProxyError(403, f"{host}:{port} is not on the egress allowlist", (host, port))
        self.server.meter.admit(host, port)
        return host, port

    def upstream(self, host: str, port: int) -> socket.socket:
        try:  # the only place a name is resolved: after the allowlist check
            sock = socket.create_connection((host, port), timeout=CONNECT_TIMEOUT_S)
        except OSError as exc:
            raise ProxyError(502, f"cannot connect to {host}:{port}: {exc}") from None
        sock.settimeout(self.server.idle_s)
        return sock

    def tunnel(self, host: str, port: int) -> None:
        upstream = self.upstream(host, port)
        log.info("tunnel %s:%s for %s", host, port, self.client_address[0])
        self.answered = True
        self.wfile.write(b"HTTP/1.1 200 Connection established\r\n\r\n")
        self.connection.settimeout(self.server.idle_s)
        with upstream:
            pump = threading.Thread(target=self.pump_up, args=(upstream,), daemon=True)
            pump.start()
            try:
                while data := upstream.recv(65536):
                    self.connection.sendall(data)
                self.connection.shutdown(socket.SHUT_WR)
            except OSError:
                pass
            pump.join(self.server.idle_s)

    def pump_up(self, upstream: socket.socket) -> None:
        try:
            while data := self.rfile.read1(65536):
                upstream.sendall(data)
            upstream.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    def forward(
        self,
        method: str,
        host: str,
        port: int,
        authority: str,
        path: str,
        headers: list[tuple[str, str]],
    ) -> None:
        if (header(headers, "expect") or "").lower() == "100-continue":
            self.wfile.write(b"HTTP/1.1 100 Continue\r\n\r\n")
        body = read_body(self.rfile, headers)
        dropped = {v.strip().lower() for k, v in headers if k.lower() == "connection"}
        dropped = {n.strip() for v in dropped for n in v.split(",")} | HOP_BY_HOP
        dropped.add("accept-encoding")
        lines = [f"{method} {path} HTTP/1.1", f"Host: {authority}"]
        lines += [f"{k}: {v}" for k, v in headers if k.lower().strip() not in dropped]
        lines += ["Accept-Encoding: identity", "Connection: close"]  # identity: to read usage
        if body or method in ("POST", "PUT", "PATCH"):
            lines.append(f"Content-Length: {len(body)}")
        upstream = self.upstream(host, port)
        with upstream, upstream.makefile("rb") as reply:
            upstream.sendall(("\r\n".join(lines) + "\r\n\r\n").encode("latin-1") + body)
            status, fields = self.response_head(reply)
            self.relay(method, host, port, path, reply, status, fields)

    def response_head(self, reply: BufferedIOBase) -> tuple[str, list[tuple[str, str]]]:
        while True:
            head = read_head(reply)
            if head is None:
                raise ProxyError(502, "upstream closed without a response")
            status = head[0].split(" ", 2)
            if len(status) < 2 or not status[1].isdigit() or not status[0].startswith("HTTP/"):
                raise ProxyError(502, f"malformed upstream status line {head[0][:80]!r}")
            if not status[1].startswith("1"):  # interim 1xx responses are swallowed
                return head[0], head[1]

    def relay(
        self,
        method: str,
        host: str,
        port: int,
        path: str,
        reply: BufferedIOBase,
        status: str,
        fields: list[tuple[str, str]],
    ) -> None:
        code = int(status.split(" ", 2)[1])
        coding = (header(fields, "transfer-encoding") or "").lower()
        length = header(fields, "content-length")
        out = [status, *(f"{k}: {v}" for k, v in fields if k.lower() not in HOP_BY_HOP)]
        chunks: Iterator[bytes]
        if method == "HEAD" or code in (204, 304):
            chunks = iter(())
        elif "chunked" in coding:
            chunks = iter_chunks(reply, sys.maxsize, 502)  # sent decoded, delimited by close
        elif length is not None and length.isdigit():
            out.append(f"Content-Length: {length}")
            chunks = read_exactly(reply, int(length))
        else:
            chunks = iter(lambda: reply.read1(65536), b"")
        out.append("Connection: close")
        self.answered = True
        self.wfile.write(("\r\n".join(out) + "\r\n\r\n").encode("latin-1"))
        kept, size = [], 0
        for data in chunks:
            self.wfile.write(data)
            self.wfile.flush()
            if size + len(data) <= MAX_METERED_BYTES:
                kept.append(data)
            size += len(data)
        log.info("%s %s:%s%s -> %s (%d bytes)", method, host, port, path[:80], code, size)
        usage = usage_of(header(fields, "content-type") or "", b"".join(kept))
        if usage is not None:
            self.server.meter.add_usage(*usage)

    def refuse(self, exc: ProxyError) -> None:
        if exc.target is not None and exc.status == 403:
            self.server.meter.refuse(exc.target[0], exc.target[1], exc.reason)
        log.warning("refused (%s): %s", exc.status, exc.reason)
        if not self.answered:
            self.reply(exc.status, exc.reason)

    def reply(self, status: int, reason: str) -> None:
        kind = KINDS.get(status, "egress_proxy_error")
        body = json.dumps({"error": {"message": reason, "type": kind, "code": kind}}).encode()
        head = f"HTTP/1.1 {status} {PHRASES.get(status, 'Error')}\r\n"
        head += f"Content-Type: application/json\r\nContent-Length: {len(body)}\r\n"
        head += f"X-Triloop-Egress: {'refused' if status in KINDS else 'error'}\r\n"
        head += "Connection: close"
        with contextlib.suppress(OSError):
            self.wfile.write(head.encode() + b"\r\n\r\n" + body)


def split_url(rest: str) -> tuple[str, str]:
    """``host:port/path?q#frag`` to (authority, origin-form path without the fragment)."""
    cut = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority, path = rest[:cut], rest[cut:].split("#", 1)[0]
    if "@" in authority:
        raise ProxyError(400, "credentials in the proxy URL are refused")
    return authority, path if path.startswith("/") else "/" + path


def read_exactly(reply: BufferedIOBase, length: int) -> Iterator[bytes]:
    while length > 0:
        data = reply.read1(min(length, 65536))
        if not data:
            raise ConnectionError("upstream closed before its content-length")
        length -= len(data)
        yield data


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="triloop-egress-proxy", description=__doc__)
    parser.add_argument("--listen", default="0.0.0.0:3128", help="address:port to listen on")
    parser.add_argument("--allow", action="append", default=[], help="host:port (repeatable)")
    parser.add_argument("--max-tokens", type=int, default=None, help="token budget (429 after)")
    parser.add_argument("--meter-file", default=None, help="JSON usage file, rewritten atomically")
    parser.add_argument("--idle-timeout", type=float, default=300.0, help="seconds of silence")
    parser.add_argument("--version", action="version", version=VERSION)
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(message)s")
    try:
        allow = {parse_hostport(item) for item in args.allow}
        listen = parse_hostport(args.listen)
    except ValueError as exc:
        parser.error(str(exc))
    if args.max_tokens is not None and args.max_tokens < 1:
        parser.error("--max-tokens must be positive")
    meter = Meter(args.meter_file, args.max_tokens)
    server = Proxy(listen, allow, meter, args.idle_timeout)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    allowed = ", ".join(f"{h}:{p}" for h, p in sorted(allow)) or "nothing"
    log.info("listening on %s:%s, allowing %s", *server.server_address[:2], allowed)
    try:
        server.serve_forever()
    finally:
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
