"""A fake GitHub REST API on 127.0.0.1 for tests: in-memory state, token auth, GitHub's errors.

Real clients (PyGithub, through the providers-github hook) talk to it over HTTP, so what the
tests exercise is the client's own requests, paging and error handling. The server is
generic; resources register their routes (``tests.support.fake_github_issues`` registers
repositories, issues, comments, labels and search; pull requests and statuses can join the same
way with :meth:`FakeGitHub.route`).

Like GitHub: a request without a known token gets 401 ``Bad credentials`` (or ``Requires
authentication``), unknown paths and objects 404 ``Not Found``, invalid input 422 ``Validation
Failed`` with ``errors``, lists are paged by ``per_page``/``page`` with a ``Link`` header, and
every answer carries ``x-ratelimit-*`` headers. With ``rate_limit_remaining`` at 0 every request
gets GitHub's primary rate-limit 403. Faults for the next matching request:
:meth:`fail_next` (answer with an error) and :meth:`drop_next` (carry the request out, then
close the connection without answering: a response lost after GitHub acted).
"""

from __future__ import annotations

import json
import re
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qsl, urlsplit

DOCS = "https://docs.github.com/rest"
RATE_LIMIT = 5000


class ApiError(Exception):
    """An error answer: ``status`` with GitHub's JSON body (message, errors, documentation_url)."""

    def __init__(
        self,
        status: int,
        message: str,
        *,
        errors: list[dict[str, Any]] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.status = status
        self.message = message
        self.errors = errors
        self.headers = headers or {}

    def body(self) -> dict[str, Any]:
        doc: dict[str, Any] = {"message": self.message, "documentation_url": DOCS}
        if self.errors is not None:
            doc["errors"] = self.errors
        return doc


def validation_failed(resource: str, field_name: str, code: str = "invalid") -> ApiError:
    error = {"resource": resource, "field": field_name, "code": code}
    return ApiError(422, "Validation Failed", errors=[error])


@dataclass
class Request:
    method: str
    path: str
    params: dict[str, str]
    json: Any
    args: dict[str, str]  # the route pattern's named groups
    base_url: str


@dataclass
class Response:
    status: int
    body: Any
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Request], Response]


@dataclass
class _Fault:
    method: str
    path: re.Pattern[str]
    error: ApiError | None  # None: drop the connection after acting


class FakeGitHub:
    """The server and its state; ``with FakeGitHub() as gh:`` serves on ``gh.base_url``."""

    def __init__(self, tokens: tuple[str, ...] = ("test-token",)) -> None:
        from tests.support import fake_github_issues

        self.tokens = set(tokens)
        self.rate_limit_remaining = RATE_LIMIT
        self.requests: list[tuple[str, str]] = []  # (method, path) of every request served
        self.state: dict[str, Any] = {}  # per resource module, e.g. state["repos"]
        self.lock = threading.RLock()
        self._routes: list[tuple[str, re.Pattern[str], Handler]] = []
        self._faults: list[_Fault] = []
        self._server: ThreadingHTTPServer | None = None
        fake_github_issues.register(self)

    # -- configuration ---------------------------------------------------------------------
    def route(self, method: str, pattern: str) -> Callable[[Handler], Handler]:
        """Register ``handler`` for ``method`` and a path pattern with ``{name}`` segments."""
        regex = re.compile("^" + re.sub(r"\{(\w+)\}", r"(?P<\1>[^/]+)", pattern) + "$")

        def add(handler: Handler) -> Handler:
            self._routes.append((method, regex, handler))
            return handler

        return add

    def fail_next(self, method: str, path: str, status: int, message: str, **headers: str) -> None:
        """Answer the next ``method`` request whose path matches regex ``path`` with an error."""
        error = ApiError(
            status, message, headers={k.replace("_", "-"): v for k, v in headers.items()}
        )
        self._faults.append(_Fault(method, re.compile(path), error))

    def drop_next(self, method: str, path: str) -> None:
        """Carry out the next matching request, then close the connection without a response."""
        self._faults.append(_Fault(method, re.compile(path), None))

    def count(self, method: str, path: str) -> int:
        """How many served requests had ``method`` and a path matching regex ``path``."""
        return sum(1 for m, p in self.requests if m == method and re.fullmatch(path, p))

    # -- serving ---------------------------------------------------------------------------
    @property
    def base_url(self) -> str:
        assert self._server is not None, "the fake GitHub is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> FakeGitHub:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGitHub:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    def dispatch(self, method: str, target: str, auth: str | None, raw: bytes) -> Response | None:
        """The answer to one request; None means: drop the connection without answering."""
        url = urlsplit(target)
        path = url.path.rstrip("/") or "/"
        with self.lock:
            self.requests.append((method, path))
            fault = None
            try:
                self._authenticate(auth)
                fault = self._take_fault(method, path)
                if fault is not None and fault.error is not None:
                    raise fault.error
                answer = self._route(method, path, dict(parse_qsl(url.query)), raw)
            except ApiError as exc:
                answer = Response(exc.status, exc.body(), exc.headers)
            if fault is not None and fault.error is None:
                return None
        answer.headers = {**self._rate_headers(), **answer.headers}
        return answer

    def _authenticate(self, auth: str | None) -> None:
        if auth is None:
            raise ApiError(401, "Requires authentication")
        scheme, _, token = auth.partition(" ")
        if scheme.lower() not in ("token", "bearer") or token not in self.tokens:
            raise ApiError(401, "Bad credentials")
        if self.rate_limit_remaining <= 0:
            raise ApiError(403, "API rate limit exceeded for user.", headers=self._rate_headers())
        self.rate_limit_remaining -= 1

    def _rate_headers(self) -> dict[str, str]:
        return {
            "x-ratelimit-limit": str(RATE_LIMIT),
            "x-ratelimit-remaining": str(max(self.rate_limit_remaining, 0)),
            "x-ratelimit-reset": str(int(time.time()) + 3600),
        }

    def _take_fault(self, method: str, path: str) -> _Fault | None:
        for fault in self._faults:
            if fault.method == method and fault.path.search(path):
                self._faults.remove(fault)
                return fault
        return None

    def _route(self, method: str, path: str, params: dict[str, str], raw: bytes) -> Response:
        try:
            body = json.loads(raw) if raw else None
        except ValueError as exc:
            raise ApiError(400, "Problems parsing JSON") from exc
        for route_method, regex, handler in self._routes:
            match = regex.match(path)
            if match and route_method == method:
                return handler(
                    Request(method, path, params, body, match.groupdict(), self.base_url)
                )
        raise ApiError(404, "Not Found")


def paginate(request: Request, items: list[Any]) -> Response:
    """One page of ``items`` as GitHub pages lists: ``per_page`` (max 100), ``page``, ``Link``."""
    try:
        per_page = min(int(request.params.get("per_page", "30")), 100)
        page = int(request.params.get("page", "1"))
    except ValueError as exc:
        raise validation_failed("List", "per_page") from exc
    if per_page < 1 or page < 1:
        raise validation_failed("List", "per_page")
    last = max(1, -(-len(items) // per_page))
    links = []
    for rel, number in (("next", page + 1), ("last", last), ("prev", page - 1), ("first", 1)):
        if (rel in ("next", "last") and page < last) or (rel in ("prev", "first") and page > 1):
            query = {**request.params, "page": str(number), "per_page": str(per_page)}
            qs = "&".join(f"{k}={v}" for k, v in query.items())
            links.append(f'<{request.base_url}{request.path}?{qs}>; rel="{rel}"')
    headers = {"Link": ", ".join(links)} if links else {}
    return Response(200, items[(page - 1) * per_page : page * per_page], headers)


def _handler_for(fake: FakeGitHub) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            raw = self.rfile.read(length) if length else b""
            answer = fake.dispatch(self.command, self.path, self.headers.get("Authorization"), raw)
            if answer is None:
                self.close_connection = True
                return
            data = json.dumps(answer.body).encode() if answer.body is not None else b""
            self.send_response(answer.status)
            self.send_header("Content-Type", "application/json; charset=utf-8")
            self.send_header("Content-Length", str(len(data)))
            for name, value in answer.headers.items():
                self.send_header(name, value)
            self.end_headers()
            self.wfile.write(data)

        do_GET = do_POST = do_PATCH = do_PUT = do_DELETE = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler


def serving() -> Iterator[FakeGitHub]:
    """For a pytest fixture: ``yield from serving()``."""
    with FakeGitHub() as fake:
        yield fake
