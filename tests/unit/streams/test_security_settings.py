"""Security settings as each client library receives them (no services):
librdkafka properties, Faust's credentials, cassandra-driver's keyword
arguments; half a configuration refused at start; secrets read from files."""

from __future__ import annotations

import ssl
import subprocess
import sys

import pytest
from cassandra.auth import PlainTextAuthProvider
from faust.auth import SASLCredentials, SSLCredentials
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth
from pydantic import ValidationError

from sinks.cassandra_auth import cluster_security
from streams.kafka_auth import faust_credentials, librdkafka_conf, parse_properties
from streams.settings import Settings, SettingsSourceError, setting_errors


def sasl(**kw) -> Settings:
    return Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u",
                    kafka_sasl_password="p4ss", **kw)


def test_plaintext_adds_nothing():
    assert librdkafka_conf(Settings()) == {}
    assert faust_credentials(Settings()) is None
    assert cluster_security(Settings()) == {}


def test_sasl_plain_reaches_both_clients_alike():
    s = sasl(kafka_sasl_mechanism="SCRAM-SHA-512")
    assert librdkafka_conf(s) == {"security.protocol": "SASL_PLAINTEXT", "sasl.mechanism": "SCRAM-SHA-512",
                                  "sasl.username": "u", "sasl.password": "p4ss"}
    creds = faust_credentials(s)
    assert isinstance(creds, SASLCredentials)
    aiokafka = credentials_to_aiokafka_auth(creds)  # what Faust hands aiokafka
    assert aiokafka["security_protocol"] == "SASL_PLAINTEXT" and aiokafka["sasl_mechanism"] == "SCRAM-SHA-512"
    assert (aiokafka["sasl_plain_username"], aiokafka["sasl_plain_password"]) == ("u", "p4ss")


def test_sasl_ssl_and_ssl_carry_a_verifying_context(tmp_path):
    s = sasl().model_copy(update={"kafka_security_protocol": "SASL_SSL"})
    creds = credentials_to_aiokafka_auth(faust_credentials(s))
    assert creds["security_protocol"] == "SASL_SSL"
    assert creds["ssl_context"].verify_mode == ssl.CERT_REQUIRED and creds["ssl_context"].check_hostname
    ssl_only = Settings(kafka_security_protocol="SSL", kafka_ssl_ca=tmp_path / "ca.pem")
    assert isinstance(faust_credentials(ssl_only.model_copy(update={"kafka_ssl_ca": None})), SSLCredentials)
    conf = librdkafka_conf(ssl_only)
    assert conf == {"security.protocol": "SSL", "ssl.ca.location": str(tmp_path / "ca.pem")}


def test_free_form_properties_win_over_murmurs_own():
    s = sasl(kafka_client_properties={"sasl.username": "other", "client.rack": "rack-a"})
    conf = librdkafka_conf(s)
    assert conf["sasl.username"] == "other" and conf["client.rack"] == "rack-a"


def test_secrets_never_print():
    s = sasl(cassandra_username="c", cassandra_password="cass-pw", qdrant_api_key="q-key")
    text = repr(s) + str(s.model_dump())
    assert "p4ss" not in text and "cass-pw" not in text and "q-key" not in text


@pytest.mark.parametrize("kwargs, names", [
    ({"kafka_security_protocol": "SASL_SSL"}, "MURMUR_KAFKA_SASL_USERNAME"),
    ({"kafka_ssl_certificate": "/c.pem"}, "MURMUR_KAFKA_SSL_KEY"),
    ({"cassandra_ssl_key": "/k.pem"}, "MURMUR_CASSANDRA_SSL_CERTIFICATE"),
    ({"cassandra_username": "c"}, "MURMUR_CASSANDRA_PASSWORD"),
])
def test_half_a_configuration_is_refused_naming_the_variable(kwargs, names):
    with pytest.raises(ValidationError) as info:
        Settings(**kwargs)
    assert any(names in line for line in setting_errors(info.value))


def test_cassandra_login_and_tls():
    s = Settings(cassandra_username="c", cassandra_password="cass-pw", cassandra_ssl=True)
    kw = cluster_security(s)
    assert isinstance(kw["auth_provider"], PlainTextAuthProvider)
    assert kw["auth_provider"].username == "c" and kw["auth_provider"].password == "cass-pw"
    assert kw["ssl_context"].verify_mode == ssl.CERT_REQUIRED and kw["ssl_context"].check_hostname
    by_ip = cluster_security(s.model_copy(update={"cassandra_ssl_verify_hostname": False}))["ssl_context"]
    assert by_ip.verify_mode == ssl.CERT_REQUIRED and not by_ip.check_hostname


def test_secrets_from_files_and_the_environment_wins(tmp_path, monkeypatch):
    (tmp_path / "murmur_kafka_sasl_password").write_text("from-file")
    (tmp_path / "murmur_cassandra_password").write_text("cass-file")
    monkeypatch.setenv("MURMUR_SECRETS_DIR", str(tmp_path))
    s = Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u", cassandra_username="c")
    assert s.kafka_sasl_password.get_secret_value() == "from-file"
    assert s.cassandra_password.get_secret_value() == "cass-file"
    monkeypatch.setenv("MURMUR_KAFKA_SASL_PASSWORD", "from-env")
    assert Settings(kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_username="u",
                    cassandra_username="c").kafka_sasl_password.get_secret_value() == "from-env"
    monkeypatch.setenv("MURMUR_SECRETS_DIR", str(tmp_path / "missing"))
    with pytest.raises(SettingsSourceError, match="missing"):
        Settings()


def test_cli_says_what_is_missing_in_one_line():
    env = {"PATH": "/usr/bin:/bin", "MURMUR_KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT"}
    res = subprocess.run([sys.executable, "-m", "streams.cli", "lag"], env=env, capture_output=True, text=True,
                         timeout=60)
    assert res.returncode == 2 and "Traceback" not in res.stderr
    assert res.stderr.strip() == ("error: invalid setting MURMUR_KAFKA_SECURITY_PROTOCOL=SASL_PLAINTEXT needs "
                                  "MURMUR_KAFKA_SASL_USERNAME and MURMUR_KAFKA_SASL_PASSWORD")


def test_kcat_style_properties():
    assert parse_properties(["client.id=a=b", " fetch.wait.max.ms=50"]) == {"client.id": "a=b", "fetch.wait.max.ms": "50"}
    for bad in ("novalue", "=x"):
        with pytest.raises(ValueError, match="property=value"):
            parse_properties([bad])
