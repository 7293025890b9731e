"""The sandbox engine: the local Docker engine, or a separate host over mutual TLS.

A remote engine is an Airflow connection (any type; ``generic`` in the docs), read at execute
time only::

    host   tcp://sandbox-host:2376   (or host ``sandbox-host``, port ``2376``; or https://)
    extra  {"tls_ca_cert": "-----BEGIN CERTIFICATE-----...",      CA that signed the engine's cert
            "tls_client_cert": "-----BEGIN CERTIFICATE-----...",  this client's certificate
            "tls_client_key": "-----BEGIN PRIVATE KEY-----...",   its unencrypted key
            "tls_hostname": "sandbox-host"}                      optional: name the cert must carry

Each ``tls_*`` PEM value may instead be the absolute path of a PEM file on the worker. The
engine's certificate is always verified against ``tls_ca_cert`` and its host name (the URL's, or
``tls_hostname``); ``tls_verify`` may be given but only as true. Anything else is refused with a
:class:`SandboxEngineError` naming the connection and the field.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, TypeVar
from urllib.parse import urlsplit

from airflow.sdk import BaseHook
from airflow.sdk.exceptions import AirflowNotFoundException
from docker import APIClient, DockerClient
from docker.constants import DEFAULT_TIMEOUT_SECONDS
from docker.errors import DockerException
from requests.exceptions import RequestException

from triloop_sandbox.engine_tls import PEM_BEGIN, EngineTLSConfig, check_ca, check_client_pair
from triloop_sandbox.engine_tls import client_context as _client_context
from triloop_sandbox.exceptions import SandboxEngineError, SandboxEngineUnreachable

DEFAULT_CONN_ID = "triloop_sandbox_engine"
# The Airflow Variable naming the engine connection; unset or empty means the local engine.
ENGINE_VARIABLE = "triloop_sandbox_engine_conn_id"
DEFAULT_PORT = 2376  # dockerd's conventional TLS port
PEM_FIELDS = ("tls_ca_cert", "tls_client_cert", "tls_client_key")
EXTRA_FIELDS = (*PEM_FIELDS, "tls_verify", "tls_hostname")
Client = TypeVar("Client", APIClient, DockerClient)


@dataclass(frozen=True)
class RemoteEngine:
    """A remote engine's address and TLS material, checked (PEM text, never paths)."""

    conn_id: str
    base_url: str
    ca_cert: str = field(repr=False)
    client_cert: str = field(repr=False)
    client_key: str = field(repr=False)
    tls_hostname: str | None = None


def parse_engine_connection(
    conn_id: str, host: str | None, port: int | None, extra: Mapping[str, Any]
) -> RemoteEngine:
    """Check a connection's fields and return the engine; raise SandboxEngineError if unsafe."""

    def refuse(name: str, problem: str) -> SandboxEngineError:
        return SandboxEngineError(conn_id, name, problem)

    unknown = sorted(set(extra) - set(EXTRA_FIELDS))
    if unknown:
        raise refuse(f"extra.{unknown[0]}", f"unknown key (expected {', '.join(EXTRA_FIELDS)})")
    verify = extra.get("tls_verify", True)
    if verify is not True and str(verify).strip().lower() != "true":
        raise refuse("extra.tls_verify", f"{verify!r} refused: the engine is always verified")
    base_url = _base_url(host, port, refuse)
    missing = [name for name in PEM_FIELDS if not str(extra.get(name) or "").strip()]
    if missing:
        raise refuse(
            f"extra.{missing[0]}",
            f"missing: a TLS engine needs {', '.join(PEM_FIELDS)} (PEM text or absolute paths)",
        )
    ca, cert, key = (_pem(name, extra[name], refuse) for name in PEM_FIELDS)
    if (problem := check_ca(ca)) is not None:
        raise refuse("extra.tls_ca_cert", problem)
    if (pair := check_client_pair(cert, key)) is not None:
        raise refuse(f"extra.{pair[0]}", pair[1])
    hostname = extra.get("tls_hostname")
    if hostname is not None and (not isinstance(hostname, str) or not hostname.strip()):
        raise refuse("extra.tls_hostname", f"{hostname!r} is not a host name")
    return RemoteEngine(conn_id, base_url, ca, cert, key, hostname.strip() if hostname else None)


def _base_url(
    host: str | None, port: int | None, refuse: Callable[[str, str], SandboxEngineError]
) -> str:
    text = (host or "").strip()
    if not text:
        raise refuse("host", "empty: expected tcp://HOST:PORT")
    parts = urlsplit(text if "://" in text else f"tcp://{text}")
    if parts.scheme not in ("tcp", "https"):
        raise refuse("host", f"{text!r}: a sandbox engine is reached over TLS, tcp://HOST:PORT")
    try:
        url_port = parts.port
    except ValueError as exc:
        raise refuse("host", f"{text!r}: {exc}") from exc
    if not parts.hostname or parts.path not in ("", "/") or parts.query or parts.username:
        raise refuse("host", f"{text!r} is not tcp://HOST:PORT")
    if url_port and port and url_port != port:
        raise refuse("port", f"{port} contradicts the port in host {text!r}")
    name = f"[{parts.hostname}]" if ":" in parts.hostname else parts.hostname
    return f"https://{name}:{url_port or port or DEFAULT_PORT}"


def _pem(name: str, value: Any, refuse: Callable[[str, str], SandboxEngineError]) -> str:
    if not isinstance(value, str):
        raise refuse(f"extra.{name}", "must be PEM text or an absolute path")
    text = value.strip()
    if text.startswith(PEM_BEGIN):
        return text + "\n"
    if not os.path.isabs(text):
        raise refuse(f"extra.{name}", "is neither PEM text (-----BEGIN ...) nor an absolute path")
    try:
        with open(text, encoding="ascii") as handle:
            return handle.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise refuse(f"extra.{name}", f"cannot read {text}: {exc}") from exc


class SandboxEngineHook(BaseHook):
    """Owns the engine connection; builds a docker client over mutual TLS on first use."""

    conn_name_attr = "engine_conn_id"
    default_conn_name = DEFAULT_CONN_ID
    conn_type = "generic"
    hook_name = "Triloop sandbox engine"

    def __init__(
        self,
        engine_conn_id: str = DEFAULT_CONN_ID,
        *,
        version: str | None = None,
        timeout: int = DEFAULT_TIMEOUT_SECONDS,
    ) -> None:
        super().__init__()
        self.engine_conn_id = engine_conn_id
        self.version = version
        self.timeout = timeout
        self._client_created = False

    @cached_property
    def engine(self) -> RemoteEngine:
        try:
            conn = self.get_connection(self.engine_conn_id)
        except AirflowNotFoundException as exc:
            raise SandboxEngineError(self.engine_conn_id, "conn_id", "no such connection") from exc
        return parse_engine_connection(
            self.engine_conn_id, conn.host, conn.port, conn.extra_dejson or {}
        )

    @cached_property
    def api_client(self) -> APIClient:
        """The low-level client DockerOperator drives (``cli``), pinged before it is returned."""
        client = self._connect(APIClient)
        self._client_created = True
        return client

    @property
    def client_created(self) -> bool:
        return self._client_created

    def get_conn(self) -> APIClient:
        return self.api_client

    def docker_client(self) -> DockerClient:
        """A new high-level client (``docker.DockerClient``) for the same engine."""
        return self._connect(DockerClient)

    def test_connection(self) -> tuple[bool, str]:
        try:
            version = self.api_client.version()
        except (SandboxEngineError, SandboxEngineUnreachable) as exc:
            return False, str(exc)
        return True, f"Docker {version.get('Version')} at {self.engine.base_url}"

    def _connect(self, kind: type[Client]) -> Client:
        engine = self.engine
        try:
            tls = EngineTLSConfig(
                _client_context(engine.ca_cert, engine.client_cert, engine.client_key),
                engine.tls_hostname,
            )
            client = kind(
                base_url=engine.base_url, version=self.version, timeout=self.timeout, tls=tls
            )
            client.ping()
        except (DockerException, RequestException, OSError) as exc:
            raise SandboxEngineUnreachable(engine.conn_id, engine.base_url, _reason(exc)) from exc
        self.log.info("Sandbox engine %s at %s (TLS)", engine.conn_id, engine.base_url)
        return client


def _reason(exc: BaseException) -> str:
    """The TLS failure if there is one in the chain (what an operator needs), else the error."""
    seen: BaseException | None = exc
    while seen is not None:
        text = str(seen)
        if "EOF occurred" in text or "alert" in text:
            return (
                "TLS handshake failed: the engine refused this client (is tls_client_cert signed"
                f" by the CA dockerd trusts with --tlscacert?): {text[-300:]}"
            )
        if any(marker in text for marker in ("CERTIFICATE_VERIFY_FAILED", "SSL", "TLS")):
            return f"TLS handshake failed: {text[-400:]}"
        seen = seen.__cause__ or seen.__context__
    return str(exc)[-400:]


def sandbox_docker_client(engine_conn_id: str | None) -> DockerClient:
    """The engine sandboxes run on: ``engine_conn_id``'s, or the local one (``DOCKER_HOST``)."""
    if not engine_conn_id:
        import docker

        return docker.from_env()
    return SandboxEngineHook(engine_conn_id).docker_client()


def configured_engine_conn_id() -> str | None:
    """The engine connection the Variable names; call it only inside a running task."""
    from airflow.sdk import Variable

    return Variable.get(ENGINE_VARIABLE, default="").strip() or None
