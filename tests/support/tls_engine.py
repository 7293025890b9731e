"""A stand-in for ``dockerd --tlsverify`` on loopback, and a throwaway PKI for it.

:class:`TlsForwarder` terminates mutual TLS on 127.0.0.1 (a client certificate signed by the
test CA is REQUIRED) and forwards the decrypted bytes to the local engine's socket. It plays the
part of a sandbox host's ``dockerd --tlsverify --tlscacert ca.pem --tlscert server.pem --tlskey
server-key.pem -H tcp://0.0.0.0:2376`` without a second daemon: what it proves is the client
side (certificates from the Airflow connection, hostname and CA checks, refusals), while the
engine behind it is the real local one. It runs in the test process, on the host; nothing is
mounted into any container.
"""

from __future__ import annotations

import datetime
import ipaddress
import select
import socket
import ssl
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

DOCKER_SOCKET = "/var/run/docker.sock"


@dataclass(frozen=True)
class Issued:
    cert_pem: str
    key_pem: str


class Ca:
    """A throwaway certificate authority issuing short-lived server and client certificates."""

    def __init__(self, name: str) -> None:
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        self.cert = (
            _builder(subject, subject, self.key.public_key())
            .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=True), critical=True)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM).decode()

    def issue(self, name: str, *, server: bool, hosts: tuple[str, ...] = ()) -> Issued:
        key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        usage = ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH
        builder = (
            _builder(subject, self.cert.subject, key.public_key())
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(_key_usage(cert_sign=False), critical=True)
            .add_extension(x509.ExtendedKeyUsage([usage]), critical=False)
        )
        if hosts:
            builder = builder.add_extension(
                x509.SubjectAlternativeName([_san(host) for host in hosts]), critical=False
            )
        cert = builder.sign(self.key, hashes.SHA256())
        return Issued(
            cert.public_bytes(serialization.Encoding.PEM).decode(),
            key.private_bytes(
                serialization.Encoding.PEM,
                serialization.PrivateFormat.PKCS8,
                serialization.NoEncryption(),
            ).decode(),
        )


def _builder(subject: x509.Name, issuer: x509.Name, public_key: object) -> x509.CertificateBuilder:
    now = datetime.datetime.now(datetime.UTC)
    return (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(issuer)
        .public_key(public_key)  # type: ignore[arg-type]
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(minutes=5))
        .not_valid_after(now + datetime.timedelta(hours=2))
    )


def _key_usage(*, cert_sign: bool) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=True,
        content_commitment=False,
        key_encipherment=False,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=cert_sign,
        crl_sign=cert_sign,
        encipher_only=False,
        decipher_only=False,
    )


def _san(host: str) -> x509.GeneralName:
    try:
        return x509.IPAddress(ipaddress.ip_address(host))
    except ValueError:
        return x509.DNSName(host)


class TlsForwarder:
    """Mutual-TLS listener on 127.0.0.1:<free port> forwarding to the local Docker socket.

    ``refused`` collects each failed handshake's error; ``forwarded`` counts connections that
    passed the client-certificate check and reached the engine.
    """

    def __init__(self, ca: Ca, server: Issued, workdir: Path) -> None:
        workdir.mkdir(parents=True, exist_ok=True)
        (workdir / "server.pem").write_text(server.cert_pem)
        (workdir / "server-key.pem").write_text(server.key_pem)
        self.context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        self.context.verify_mode = ssl.CERT_REQUIRED  # no client certificate, no connection
        self.context.load_verify_locations(cadata=ca.cert_pem)
        self.context.load_cert_chain(workdir / "server.pem", workdir / "server-key.pem")
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.refused: list[str] = []
        self.forwarded = 0
        self._lock = threading.Lock()
        self._thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> TlsForwarder:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.listener.close()
        self._thread.join(timeout=5)

    def refusals(self, count: int = 1, timeout: float = 10.0) -> list[str]:
        """The refused handshakes, once ``count`` are recorded (or at the timeout).

        With TLS 1.3 the client can see its failure before the server thread has recorded
        its side of it, so a test waits for the record rather than reading it at once.
        """
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self._lock:
                if len(self.refused) >= count:
                    break
            time.sleep(0.05)
        with self._lock:
            return list(self.refused)

    def _accept(self) -> None:
        while True:
            try:
                conn, _ = self.listener.accept()
            except OSError:
                return  # closed
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn: socket.socket) -> None:
        try:
            conn.settimeout(10)
            tls = self.context.wrap_socket(conn, server_side=True)
            tls.settimeout(None)
        except (ssl.SSLError, OSError) as exc:
            with self._lock:
                self.refused.append(str(exc))
            conn.close()
            return
        with self._lock:
            self.forwarded += 1
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(DOCKER_SOCKET)
            _pump(tls, upstream)
        except OSError:
            pass  # either side went away
        finally:
            upstream.close()
            tls.close()


def _pump(tls: ssl.SSLSocket, upstream: socket.socket) -> None:
    """Copy bytes both ways until either side closes (one thread: SSL objects are not
    safe to read and write from two threads at once)."""
    while True:
        ready = [tls] if tls.pending() else select.select([tls, upstream], [], [], 30)[0]
        for source in ready:
            data = source.recv(65536)
            if not data:
                return
            (upstream if source is tls else tls).sendall(data)
