"""The Triloop page in the Airflow UI: a FastAPI app the API server mounts at ``/triloop``.

``GET /triloop/`` is the read-only status page (server-rendered HTML, no script), and
``GET /triloop/status.json`` the same :class:`triloop.status.StatusReport` for monitoring.
Both read the factory's database (connection ``triloop_db``, see :func:`runtime.app`).

Airflow 3 mounts plugin apps with ``app.mount()``, which inherits none of the core API's
dependencies: nothing would authenticate these routes. The app therefore carries the API
server's own dependency, ``requires_authenticated()`` from
``airflow.api_fastapi.core_api.security``, on every route: the caller must present a valid
Airflow JWT, as a bearer token or as the UI's ``_token`` cookie (which the browser sends to the
page's iframe), else 401 (none or expired) or 403 (invalid).

This module is imported wherever Airflow loads plugins (every task process too), so FastAPI and
the API server's modules are imported only when the API server first calls the app.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from fastapi import FastAPI
    from triloop.status import StatusReport

log = logging.getLogger(__name__)

URL_PREFIX = "/triloop"
NAME = "Triloop"
HEADERS = {
    # No script, no frame but the Airflow UI's own, nothing fetched from anywhere else.
    "Content-Security-Policy": (
        "default-src 'none'; style-src 'unsafe-inline'; frame-ancestors 'self'; "
        "base-uri 'none'; form-action 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Cache-Control": "no-store",
    "Referrer-Policy": "same-origin",
}

EXTERNAL_VIEW: dict[str, Any] = {
    "name": NAME,
    # Relative (no leading slash): the UI resolves it against its base URL, so the page works
    # behind a reverse proxy with a path prefix too.
    "href": f"{URL_PREFIX.lstrip('/')}/",
    "url_route": "triloop",
    "destination": "nav",
    "category": "browse",
}
"""A menu entry under Browse that shows the page inside the UI (at ``/plugin/triloop``)."""


def load_report() -> StatusReport:
    """The factory's state, read from the database the ``triloop_db`` connection names."""
    from triloop.status import read_status

    from triloop_airflow.runtime import app

    return read_status(app())


def create_app(load: Callable[[], StatusReport] = load_report) -> FastAPI:
    from airflow.api_fastapi.core_api.security import requires_authenticated
    from fastapi import Depends, FastAPI
    from fastapi.responses import HTMLResponse, JSONResponse
    from sqlalchemy.exc import SQLAlchemyError
    from triloop.errors import PermanentError

    from triloop_airflow import ui_html

    app = FastAPI(
        title="Triloop status",
        dependencies=[Depends(requires_authenticated())],
        docs_url=None,
        redoc_url=None,
        openapi_url=None,
    )

    def report_or_error() -> StatusReport | str:
        try:
            return load()
        except (PermanentError, SQLAlchemyError) as exc:
            log.warning("triloop status page: the database could not be read: %s", exc)
            return f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}"

    @app.get("/", response_class=HTMLResponse)
    def page() -> HTMLResponse:
        report = report_or_error()
        if isinstance(report, str):
            return HTMLResponse(ui_html.error_page(report), status_code=503, headers=HEADERS)
        return HTMLResponse(ui_html.render(report), headers=HEADERS)

    @app.get("/status.json")
    def status_json() -> JSONResponse:
        report = report_or_error()
        if isinstance(report, str):
            return JSONResponse({"error": report}, status_code=503, headers=HEADERS)
        return JSONResponse(report.model_dump(mode="json"), headers=HEADERS)

    return app


class StatusApp:
    """The ASGI app the plugin registers; builds :func:`create_app` on its first request."""

    def __init__(self, factory: Callable[[], FastAPI] = create_app) -> None:
        self._factory = factory
        self._app: FastAPI | None = None

    @property
    def app(self) -> FastAPI:
        if self._app is None:
            self._app = self._factory()
        return self._app

    async def __call__(self, scope: Any, receive: Any, send: Any) -> None:
        await self.app(scope, receive, send)
