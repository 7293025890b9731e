"""A git smart-HTTP server on 127.0.0.1 for tests: ``git http-backend`` behind a token check.

It accepts what GitHub accepts from a token: HTTP Basic with any user name and the token as the
password (``x-access-token:<token>``); anything else is 401 with a ``WWW-Authenticate``
challenge. Every ``Authorization`` header received is kept in ``seen`` so tests can check what
git sent. Repositories are the bare repositories under ``root``, served at ``/<name>``.
"""

from __future__ import annotations

import base64
import os
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

BACKEND = "/usr/lib/git-core/git-http-backend"


class GitHttpServer:
    def __init__(self, root: Path, token: str) -> None:
        self.root, self.token = root, token
        self.seen: list[str | None] = []
        self._server: ThreadingHTTPServer | None = None

    def url(self, name: str) -> str:
        assert self._server is not None, "the git server is not started"
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/{name}"

    def authorised(self, header: str | None) -> bool:
        scheme, _, value = (header or "").partition(" ")
        if scheme != "Basic":
            return False
        _, _, password = base64.b64decode(value).decode().partition(":")
        return password == self.token

    def __enter__(self) -> GitHttpServer:
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), _handler_for(self))
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()


def _handler_for(server: GitHttpServer) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def _serve(self) -> None:
            header = self.headers.get("Authorization")
            server.seen.append(header)
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            if not server.authorised(header):
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'Basic realm="git"')
                self.send_header("Content-Length", "0")
                self.end_headers()
                return
            url = urlsplit(self.path)
            env = {
                "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
                "GIT_PROJECT_ROOT": str(server.root),
                "GIT_HTTP_EXPORT_ALL": "1",
                "REMOTE_USER": "x-access-token",
                "REQUEST_METHOD": self.command,
                "PATH_INFO": url.path,
                "QUERY_STRING": url.query,
                "CONTENT_TYPE": self.headers.get("Content-Type", ""),
                "CONTENT_LENGTH": str(len(body)),
            }
            proc = subprocess.run([BACKEND], input=body, env=env, capture_output=True, check=False)
            head, _, payload = proc.stdout.partition(b"\r\n\r\n")
            fields = [line.split(":", 1) for line in head.decode().splitlines() if ":" in line]
            status = next((int(v.split()[0]) for k, v in fields if k.lower() == "status"), 200)
            self.send_response(status)
            for name, value in fields:
                if name.lower() != "status":
                    self.send_header(name, value.strip())
            self.send_header("Content-Length", str(len(payload)))
            self.end_headers()
            self.wfile.write(payload)

        do_GET = do_POST = _serve

        def log_message(self, format: str, *args: Any) -> None:
            return

    return Handler
