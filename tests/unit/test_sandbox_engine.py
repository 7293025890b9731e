"""The remote sandbox engine's connection: parsing, refusals, private PEM files; no engine."""

from __future__ import annotations

import json
import ssl
import stat
from pathlib import Path
from typing import Any

import pytest
from airflow.providers.docker.hooks.docker import DockerHook
from triloop_sandbox import SandboxOperator
from triloop_sandbox.engine import SandboxEngineHook, parse_engine_connection
from triloop_sandbox.engine_tls import client_context, private_pem_files
from triloop_sandbox.exceptions import SandboxEngineError

from tests.support.tls_engine import Ca, Issued

CA = Ca("unit CA")
CLIENT = CA.issue("worker", server=False)
OTHER = Ca("other CA").issue("worker", server=False)


def tls(client: Issued = CLIENT, **extra: Any) -> dict[str, Any]:
    return {
        "tls_ca_cert": CA.cert_pem,
        "tls_client_cert": client.cert_pem,
        "tls_client_key": client.key_pem,
        **extra,
    }


@pytest.mark.parametrize(
    ("host", "port", "base_url"),
    [
        ("tcp://sandbox-host:2376", None, "https://sandbox-host:2376"),
        ("https://10.0.0.5:2400", None, "https://10.0.0.5:2400"),
        ("sandbox-host", 2400, "https://sandbox-host:2400"),
        ("sandbox-host", None, "https://sandbox-host:2376"),
        ("tcp://[::1]:2376", 2376, "https://[::1]:2376"),
    ],
)
def test_engine_address_forms(host: str, port: int | None, base_url: str) -> None:
    engine = parse_engine_connection("eng", host, port, tls(tls_verify="true"))
    assert engine.base_url == base_url
    assert engine.client_key.startswith("-----BEGIN PRIVATE KEY-----")
    assert "PRIVATE KEY" not in repr(engine)


@pytest.mark.parametrize(
    ("host", "port", "extra", "match"),
    [
        ("", None, tls(), r"'eng': host: empty"),
        ("unix:///var/run/docker.sock", None, tls(), r"'eng': host: .*reached over TLS"),
        ("http://sandbox-host:2375", None, tls(), r"'eng': host: .*reached over TLS"),
        ("tcp://sandbox-host:2376/x", None, tls(), r"'eng': host: .* is not tcp://HOST:PORT"),
        ("tcp://sandbox-host:2376", 2377, tls(), r"'eng': port: 2377 contradicts"),
        ("tcp://sandbox-host:2376", None, {}, r"'eng': extra.tls_ca_cert: missing"),
        (
            "tcp://h:2376",
            None,
            {"tls_ca_cert": CA.cert_pem, "tls_client_cert": CLIENT.cert_pem},
            r"'eng': extra.tls_client_key: missing",
        ),
        ("tcp://h:2376", None, tls(tls_verify=False), r"'eng': extra.tls_verify: False refused"),
        ("tcp://h:2376", None, tls(tls_verify="no"), r"extra.tls_verify: 'no' refused"),
        ("tcp://h:2376", None, tls(ca_cert="x"), r"extra.ca_cert: unknown key"),
        ("tcp://h:2376", None, tls(tls_ca_cert="ca.pem"), r"tls_ca_cert: is neither PEM"),
        (
            "tcp://h:2376",
            None,
            tls(tls_ca_cert="-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----"),
            r"extra.tls_ca_cert: is not a PEM certificate",
        ),
        ("tcp://h:2376", None, tls(tls_client_cert=CA.cert_pem), r"tls_client_key: does not"),
        (
            "tcp://h:2376",
            None,
            tls(tls_client_key=OTHER.key_pem),
            r"extra.tls_client_key: does not belong to tls_client_cert",
        ),
        (
            "tcp://h:2376",
            None,
            tls(tls_client_key="/nonexistent/key.pem"),
            r"extra.tls_client_key: cannot read /nonexistent/key.pem",
        ),
        ("tcp://h:2376", None, tls(tls_hostname=""), r"extra.tls_hostname: '' is not a host"),
    ],
)
def test_unsafe_or_broken_connections_are_refused(
    host: str, port: int | None, extra: dict[str, Any], match: str
) -> None:
    with pytest.raises(SandboxEngineError, match=match):
        parse_engine_connection("eng", host, port, extra)


def test_pem_values_may_be_paths_on_the_worker(tmp_path: Path) -> None:
    (tmp_path / "ca.pem").write_text(CA.cert_pem)
    (tmp_path / "key.pem").write_text(CLIENT.key_pem)
    extra = tls(tls_ca_cert=str(tmp_path / "ca.pem"), tls_client_key=str(tmp_path / "key.pem"))
    engine = parse_engine_connection("eng", "tcp://h:2376", None, {**extra, "tls_hostname": "h"})
    assert engine.ca_cert == CA.cert_pem and engine.client_key == CLIENT.key_pem
    assert engine.tls_hostname == "h"


def test_pem_files_are_private_and_removed() -> None:
    with private_pem_files(cert=CLIENT.cert_pem, key=CLIENT.key_pem) as files:
        directory = files["key"].parent
        assert stat.S_IMODE(directory.stat().st_mode) == 0o700
        assert stat.S_IMODE(files["key"].stat().st_mode) == 0o600
        assert files["key"].read_text() == CLIENT.key_pem
    assert not directory.exists()


def test_client_context_trusts_only_the_engine_ca() -> None:
    context = client_context(CA.cert_pem, CLIENT.cert_pem, CLIENT.key_pem)
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname is True
    assert context.minimum_version >= ssl.TLSVersion.TLSv1_2
    assert [c["subject"] for c in context.get_ca_certs()] == [((("commonName", "unit CA"),),)]


def test_the_operator_reads_no_connection_until_execute(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("AIRFLOW_CONN_MISSING_ENGINE", raising=False)
    op = SandboxOperator(
        task_id="t", workspace="/w/r", output_dir="/w/o", engine_conn_id="missing_engine"
    )
    assert "engine_conn_id" in op.template_fields
    hook = op.hook  # built lazily; the connection is read on first use only
    assert isinstance(hook, SandboxEngineHook)
    with pytest.raises(SandboxEngineError, match=r"'missing_engine': conn_id: no such connection"):
        hook.get_conn()


@pytest.mark.parametrize("engine_conn_id", [None, ""])
def test_without_an_engine_connection_the_local_engine_is_used(engine_conn_id: str | None) -> None:
    op = SandboxOperator(
        task_id="t", workspace="/w/r", output_dir="/w/o", engine_conn_id=engine_conn_id
    )
    assert type(op.hook) is DockerHook


def test_registry_login_is_refused_on_a_remote_engine() -> None:
    op = SandboxOperator(
        task_id="t", workspace="/w/r", output_dir="/w/o", engine_conn_id="e", docker_conn_id="reg"
    )
    with pytest.raises(SandboxEngineError, match=r"'e': docker_conn_id: registry login"):
        _ = op.hook


def test_the_hook_reads_its_connection_from_airflow(monkeypatch: pytest.MonkeyPatch) -> None:
    conn = {"conn_type": "generic", "host": "sandbox-host", "port": 2400, "extra": tls()}
    monkeypatch.setenv("AIRFLOW_CONN_ENG_JSON", json.dumps(conn))
    assert SandboxEngineHook("eng_json").engine.base_url == "https://sandbox-host:2400"


@pytest.mark.parametrize("variable", [None, "triloop_sandbox_engine"])
def test_sandbox_args_name_the_engine_from_a_variable_at_run_time(
    monkeypatch: pytest.MonkeyPatch, variable: str | None
) -> None:
    from airflow.sdk.execution_time.context import VariableAccessor
    from triloop_airflow.defaults import SANDBOX_ARGS
    from triloop_sandbox.engine import ENGINE_VARIABLE

    name = f"AIRFLOW_VAR_{ENGINE_VARIABLE.upper()}"
    monkeypatch.delenv(name, raising=False)
    op = SandboxOperator(task_id="t", workspace="/w/r", output_dir="/w/o", **SANDBOX_ARGS)
    assert "{{" in op.engine_conn_id  # nothing is read while the DAG is parsed
    if variable:
        monkeypatch.setenv(name, variable)
    op.render_template_fields({"var": {"value": VariableAccessor(deserialize_json=False)}})
    assert op.engine_conn_id == (variable or "")
    assert (type(op.hook) is DockerHook) is (variable is None)
