"""Mutual TLS to a remote sandbox engine: PEM checks, a private key file that lives for
milliseconds, and the requests transport docker-py's ``APIClient`` talks through.

docker-py 7 dropped ``TLSConfig(assert_hostname=...)`` (the provider's ``tls_hostname`` is a no-op
with it) and ``TLSConfig`` only takes file paths that must stay on disk for the client's
lifetime. Instead the certificates are loaded once into an ``ssl.SSLContext`` (the key through a
0600 file in a 0700 directory, removed as soon as it is loaded) and mounted on the client by
``EngineTLSConfig.configure_client``, the hook docker-py calls before its first request. That
context is the only trust anchor: no system CA bundle, certificate and host name always checked.
"""

from __future__ import annotations

import os
import shutil
import ssl
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from docker.tls import TLSConfig
from requests.adapters import HTTPAdapter

PEM_BEGIN = "-----BEGIN "


def check_ca(pem: str) -> str | None:
    """None if ``pem`` holds at least one X.509 certificate, else what is wrong with it."""
    from cryptography import x509

    try:
        x509.load_pem_x509_certificates(pem.encode())
    except ValueError as exc:
        return f"is not a PEM certificate ({exc})"
    return None


def check_client_pair(cert_pem: str, key_pem: str) -> tuple[str, str] | None:
    """None if the key is an unencrypted private key matching the certificate, else
    ``(field, problem)``."""
    from cryptography import x509
    from cryptography.hazmat.primitives.serialization import (
        Encoding,
        PublicFormat,
        load_pem_private_key,
    )

    try:
        cert = x509.load_pem_x509_certificates(cert_pem.encode())[0]
    except ValueError as exc:
        return "tls_client_cert", f"is not a PEM certificate ({exc})"
    try:
        key = load_pem_private_key(key_pem.encode(), password=None)
    except TypeError:
        return "tls_client_key", "is encrypted; store it unencrypted in the connection"
    except ValueError as exc:
        return "tls_client_key", f"is not a PEM private key ({exc})"
    spki = Encoding.DER, PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*spki) != key.public_key().public_bytes(*spki):
        return "tls_client_key", "does not belong to tls_client_cert"
    return None


@contextmanager
def private_pem_files(**pems: str) -> Iterator[dict[str, Path]]:
    """Write each PEM text to a 0600 file in a fresh 0700 directory; remove it all on exit."""
    directory = Path(tempfile.mkdtemp(prefix="triloop-engine-"))  # mkdtemp creates it 0700
    try:
        paths = {}
        for name, text in pems.items():
            path = directory / f"{name}.pem"
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
            with os.fdopen(fd, "w", encoding="ascii") as handle:
                handle.write(text)
            paths[name] = path
        yield paths
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def client_context(ca_pem: str, cert_pem: str, key_pem: str) -> ssl.SSLContext:
    """A client context trusting only ``ca_pem`` and presenting the client certificate."""
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, check_hostname on
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.load_verify_locations(cadata=ca_pem)
    with private_pem_files(cert=cert_pem, key=key_pem) as files:
        context.load_cert_chain(files["cert"], files["key"])
    return context


class EngineAdapter(HTTPAdapter):
    """requests transport for the engine: its own SSL context on every pool, whatever the
    session's ``verify``/``cert`` or ``REQUESTS_CA_BUNDLE`` say (requests documents overriding
    ``build_connection_pool_key_attributes`` for a custom context)."""

    def __init__(self, context: ssl.SSLContext, tls_hostname: str | None, **kwargs: Any) -> None:
        self._context = context
        self._tls_hostname = tls_hostname
        super().__init__(**kwargs)

    def build_connection_pool_key_attributes(
        self, request: Any, verify: Any, cert: Any = None
    ) -> tuple[dict[str, Any], dict[str, Any]]:
        host_params, _ = super().build_connection_pool_key_attributes(request, True, None)
        pool_kwargs: dict[str, Any] = {"ssl_context": self._context, "cert_reqs": "CERT_REQUIRED"}
        if self._tls_hostname:  # check the certificate against this name instead of the URL's
            pool_kwargs["assert_hostname"] = self._tls_hostname
        return host_params, pool_kwargs

    def cert_verify(self, conn: Any, url: str, verify: Any, cert: Any) -> None:
        # Never let requests add its CA bundle or certificate files: the context has them.
        conn.cert_reqs = "CERT_REQUIRED"
        conn.ca_certs = conn.ca_cert_dir = conn.cert_file = conn.key_file = None


class EngineTLSConfig(TLSConfig):
    """docker-py's TLS hook: mounts :class:`EngineAdapter` on the client for ``https://``."""

    def __init__(self, context: ssl.SSLContext, tls_hostname: str | None = None) -> None:
        super().__init__(verify=True)
        self._context = context
        self._tls_hostname = tls_hostname

    def configure_client(self, client: Any) -> None:
        client.verify = True
        client.cert = None
        client.mount("https://", EngineAdapter(self._context, self._tls_hostname))
