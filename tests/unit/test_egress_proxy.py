"""triloop-egress-proxy on loopback: allowlist, refusals, metering, budget, malformed input.

The proxy and the upstream servers it talks to all listen on 127.0.0.1 in this process; no
test aims traffic anywhere else.
"""

from __future__ import annotations

import importlib.util
import json
import socket
import sys
import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from types import ModuleType
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parents[2]
USAGE = {"prompt_tokens": 3, "completion_tokens": 4, "total_tokens": 7}


def load_proxy() -> ModuleType:
    spec = importlib.util.spec_from_file_location(
        "triloop_egress_proxy", ROOT / "include" / "sandbox" / "egress_proxy.py"
    )
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    spec.loader.exec_module(module)
    return module


proxy_module = load_proxy()


class Upstream(BaseHTTPRequestHandler):
    """An OpenAI-ish server: /json and /sse report usage, /echo returns what it received."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args: Any) -> None:
        pass

    def do_GET(self) -> None:
        if self.path == "/sse":
            events = [{"choices": [{"delta": {"content": "hi"}}]}, {"usage": USAGE}]
            lines = [f"data: {json.dumps(e)}\n\n" for e in events] + ["data: [DONE]\n\n"]
            self.send_response(200)
            self.send_header("Content-Type", "text/event-stream")
            self.send_header("Transfer-Encoding", "chunked")
            self.end_headers()
            for line in lines:
                data = line.encode()
                self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
            self.wfile.write(b"0\r\n\r\n")
            return
        body = {"path": self.path, "headers": {k.lower(): v for k, v in self.headers.items()}}
        if self.path.startswith("/json"):
            body["usage"] = USAGE
        self.reply(body)

    def do_POST(self) -> None:
        data = self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.reply({"received": data.decode(), "usage": USAGE})

    def reply(self, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


def serve(server: Any) -> Any:
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture
def upstream() -> Iterator[int]:
    server = serve(ThreadingHTTPServer(("127.0.0.1", 0), Upstream))
    yield server.server_address[1]
    server.shutdown()
    server.server_close()


@pytest.fixture
def start_proxy(tmp_path: Path) -> Iterator[Callable[..., tuple[int, Path]]]:
    servers = []

    def start(allow: list[str], max_tokens: int | None = None) -> tuple[int, Path]:
        meter = tmp_path / "egress" / "usage.json"
        meter.parent.mkdir(exist_ok=True)
        allowed = {proxy_module.parse_hostport(item) for item in allow}
        server = proxy_module.Proxy(
            ("127.0.0.1", 0), allowed, proxy_module.Meter(str(meter), max_tokens), 5.0
        )
        servers.append(serve(server))
        return server.server_address[1], meter

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()


def exchange(port: int, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send raw bytes to the proxy; return (status, headers, body) of its answer."""
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request)
        chunks = []
        while data := sock.recv(65536):
            chunks.append(data)
    head, _, body = b"".join(chunks).partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines[1:])
    return int(lines[0].split()[1]), {k.lower(): v for k, v in headers.items()}, body


def get(port: int, url: str, extra: str = "") -> tuple[int, dict[str, str], bytes]:
    return exchange(port, f"GET {url} HTTP/1.1\r\nHost: x\r\n{extra}\r\n".encode())


def meter_of(path: Path) -> dict[str, Any]:
    return dict(json.loads(path.read_text()))


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("api.openai.com:443", ("api.openai.com", 443)),
        ("API.OpenAI.com:443", ("api.openai.com", 443)),
        ("10.1.2.3:8000", ("10.1.2.3", 8000)),
        ("[::1]:8080", ("::1", 8080)),
        ("model-server_1:80", ("model-server_1", 80)),
    ],
)
def test_parse_hostport_accepts(text: str, expected: tuple[str, int]) -> None:
    assert proxy_module.parse_hostport(text) == expected


@pytest.mark.parametrize(
    ("text", "match"),
    [
        ("api.openai.com", "no port"),
        ("api.openai.com:0", "invalid port"),
        ("api.openai.com:65536", "invalid port"),
        ("api.openai.com:https", "invalid port"),
        ("user@host:80", "invalid host"),
        ("ho st:80", "invalid host"),
        (":80", "invalid host"),
        ("::1:80", "invalid host"),
        ("[::1:80", "not \\[ipv6\\]:port"),
    ],
)
def test_parse_hostport_refuses(text: str, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        proxy_module.parse_hostport(text)


@pytest.mark.parametrize(
    ("content_type", "body", "expected"),
    [
        ("application/json", json.dumps({"usage": USAGE}).encode(), (3, 4, 7)),
        ("application/json", b'{"usage": {"prompt_tokens": 5, "completion_tokens": 1}}', (5, 1, 6)),
        ("application/json", b'{"usage": {"total_tokens": true, "prompt_tokens": -4}}', None),
        ("application/json", b'{"choices": []}', None),
        ("application/json", b"not json", None),
        ("text/plain", b"usage", None),
        (
            "text/event-stream",
            b'data: {"usage": null}\n\ndata: {"usage": {"prompt_tokens": 2,'
            b' "completion_tokens": 3, "total_tokens": 5}}\n\ndata: [DONE]\n\n',
            (2, 3, 5),
        ),
    ],
)
def test_usage_of(content_type: str, body: bytes, expected: tuple[int, int, int] | None) -> None:
    assert proxy_module.usage_of(content_type, body) == expected


def test_allowlisted_http_is_forwarded_and_metered(
    upstream: int, start_proxy: Callable[..., tuple[int, Path]]
) -> None:
    port, meter = start_proxy([f"127.0.0.1:{upstream}"])
    assert meter_of(meter)["requests"] == 0, "the meter file exists from the start"
    status, headers, body = get(
        port, f"http://127.0.0.1:{upstream}/json?q=1#frag", "Proxy-Authorization: x\r\n"
    )
    assert status == 200 and headers["connection"] == "close"
    seen = json.loads(body)
    assert seen["path"] == "/json?q=1"
    assert seen["headers"]["host"] == f"127.0.0.1:{upstream}"
    assert "proxy-authorization" not in seen["headers"]
    assert seen["headers"]["accept-encoding"] == "identity"
    status, _, body = exchange(
        port,
        f"POST http://127.0.0.1:{upstream}/v1/chat HTTP/1.1\r\nTransfer-Encoding: chunked\r\n"
        "Expect: 100-continue\r\n\r\n5\r\nhello\r\n0\r\n\r\n".encode(),
    )
    assert status == 100 and b'"received": "hello"' in body  # 100 Continue, then the answer
    status, _, body = get(port, f"http://127.0.0.1:{upstream}/sse")
    assert status == 200 and body.endswith(b"data: [DONE]\n\n")
    assert meter_of(meter) == {
        "schema_version": 1,
        "requests": 3,
        "tokens": 21,
        "prompt_tokens": 9,
        "completion_tokens": 12,
        "refused": [],
        "over_budget": "",
    }
    assert sorted(p.name for p in meter.parent.iterdir()) == ["usage.json"], "no temp files left"


def test_connect_tunnels_only_to_allowlisted_pairs(
    upstream: int, start_proxy: Callable[..., tuple[int, Path]]
) -> None:
    port, meter = start_proxy([f"LOCALHOST:{upstream}"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(f"CONNECT localhost:{upstream} HTTP/1.1\r\n\r\n".encode())
        sock.sendall(b"GET /echo HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n")  # pipelined
        answer = b""
        while data := sock.recv(65536):
            answer += data
    assert answer.startswith(b"HTTP/1.1 200 Connection established\r\n\r\nHTTP/1.1 200 OK")
    assert b'"path": "/echo"' in answer
    refused = f"CONNECT 127.0.0.1:{upstream} HTTP/1.1\r\n\r\n".encode()
    status, headers, body = exchange(port, refused)
    assert status == 403 and headers["x-triloop-egress"] == "refused"
    assert "not on the egress allowlist" in json.loads(body)["error"]["message"]
    found = meter_of(meter)
    assert found["requests"] == 1
    assert found["refused"] == [
        {
            "host": "127.0.0.1",
            "port": upstream,
            "reason": f"127.0.0.1:{upstream} is not on the egress allowlist",
        }
    ]


def test_refused_names_are_never_resolved(
    upstream: int, start_proxy: Callable[..., tuple[int, Path]], monkeypatch: pytest.MonkeyPatch
) -> None:
    port, meter = start_proxy([f"localhost:{upstream}"])
    resolved: list[str] = []
    real = socket.getaddrinfo

    def recording(host: Any, *args: Any, **kwargs: Any) -> Any:
        resolved.append(str(host))
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", recording)
    for request in (
        b"GET http://refused.invalid/ HTTP/1.1\r\n\r\n",
        b"CONNECT refused.invalid:443 HTTP/1.1\r\n\r\n",
        b"GET http://localhost:1/ HTTP/1.1\r\n\r\n",
    ):
        assert exchange(port, request)[0] == 403
    assert "refused.invalid" not in resolved and "localhost" not in resolved
    assert get(port, f"http://localhost:{upstream}/")[0] == 200
    assert "localhost" in resolved, "the allowlisted name is resolved (the probe works)"
    assert [r["host"] for r in meter_of(meter)["refused"]] == ["refused.invalid"] * 2 + [
        "localhost"
    ]


def test_token_budget_answers_429_once_reached(
    upstream: int, start_proxy: Callable[..., tuple[int, Path]]
) -> None:
    port, meter = start_proxy([f"127.0.0.1:{upstream}"], max_tokens=10)
    url = f"http://127.0.0.1:{upstream}/json"
    assert [get(port, url)[0] for _ in range(2)] == [200, 200]  # 7 tokens, then 14 >= 10
    status, _, body = get(port, url)
    assert status == 429
    error = json.loads(body)["error"]
    assert error["type"] == "token_budget_exceeded"
    assert "token budget of 10 exhausted (14 used)" in error["message"]
    connect = f"CONNECT 127.0.0.1:{upstream} HTTP/1.1\r\n\r\n".encode()
    assert exchange(port, connect)[0] == 429
    found = meter_of(meter)
    assert (found["requests"], found["tokens"], found["over_budget"]) == (2, 14, "tokens")
    assert len(found["refused"]) == 2
    assert all("token budget" in r["reason"] for r in found["refused"])


@pytest.mark.parametrize(
    ("request_bytes", "status", "reason"),
    [
        (b"GARBAGE\r\n\r\n", 400, "malformed request line"),
        (b"GET http://127.0.0.1:1/ HTTP/2\r\n\r\n", 400, "malformed request line"),
        (b"GET /relative HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", 400, "absolute-form"),
        (b"GET https://127.0.0.1/ HTTP/1.1\r\n\r\n", 400, "use CONNECT"),
        (b"GET http://u:p@127.0.0.1/ HTTP/1.1\r\n\r\n", 400, "credentials"),
        (b"CONNECT 127.0.0.1 HTTP/1.1\r\n\r\n", 400, "no port"),
        (b"CONNECT 127.0.0.1:99999 HTTP/1.1\r\n\r\n", 400, "invalid port"),
        (b"GET http://127.0.0.1:1/ HTTP/1.1\r\nno colon\r\n\r\n", 400, "malformed header"),
        (b"GET http://127.0.0.1:1/ HTTP/1.1\r\n" + b"X: y\r\n" * 12000 + b"\r\n", 431, "too large"),
        (b"GET http://127.0.0.1:1/ HTTP/1.1\r\nHost: a\r\n", 400, "in the middle"),
    ],
)
def test_malformed_requests_get_a_clear_error_and_the_proxy_keeps_serving(
    upstream: int,
    start_proxy: Callable[..., tuple[int, Path]],
    request_bytes: bytes,
    status: int,
    reason: str,
) -> None:
    port, _ = start_proxy([f"127.0.0.1:{upstream}", "127.0.0.1:1"])
    with socket.create_connection(("127.0.0.1", port), timeout=5) as sock:
        sock.sendall(request_bytes)
        sock.shutdown(socket.SHUT_WR)
        answer = b""
        while data := sock.recv(65536):
            answer += data
    assert answer.startswith(f"HTTP/1.1 {status} ".encode()), answer[:200]
    assert reason in json.loads(answer.partition(b"\r\n\r\n")[2])["error"]["message"]
    socket.create_connection(("127.0.0.1", port), timeout=5).close()  # an empty connection
    assert get(port, f"http://127.0.0.1:{upstream}/")[0] == 200


def test_an_unreachable_allowlisted_upstream_is_a_502(
    start_proxy: Callable[..., tuple[int, Path]],
) -> None:
    with socket.socket() as probe:  # a loopback port nobody listens on
        probe.bind(("127.0.0.1", 0))
        closed = probe.getsockname()[1]
    port, _ = start_proxy([f"127.0.0.1:{closed}"])
    status, _, body = get(port, f"http://127.0.0.1:{closed}/")
    assert status == 502 and b"cannot connect" in body


def test_main_refuses_a_bad_allow_entry(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as caught:
        proxy_module.main(["--allow", "no-port.example"])
    assert caught.value.code == 2
    assert "no port" in capsys.readouterr().err
