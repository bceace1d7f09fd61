"""Kafka security settings as each client library wants them.

One set of ``MURMUR_KAFKA_*`` settings reaches two client libraries:
confluent-kafka (librdkafka properties: the CLI, publishers, sinks, the
monitor) and Faust's aiokafka transport (credentials objects and an
``ssl.SSLContext``). Both are derived here, from the same fields, so the
two never disagree on how to reach a cluster.
"""

from __future__ import annotations

import ssl

from faust.auth import SASLCredentials, SSLCredentials
from faust.types.auth import CredentialsT

from streams.settings import Settings


def librdkafka_conf(settings: Settings) -> dict[str, str]:
    """librdkafka properties for security, then the free-form ones (which win)."""
    conf: dict[str, str] = {}
    protocol = settings.kafka_security_protocol
    if protocol != "PLAINTEXT":
        conf["security.protocol"] = protocol
    if protocol.startswith("SASL"):
        conf["sasl.mechanism"] = settings.kafka_sasl_mechanism
        conf["sasl.username"] = settings.kafka_sasl_username or ""
        conf["sasl.password"] = settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else ""
    if protocol.endswith("SSL"):
        if settings.kafka_ssl_ca:
            conf["ssl.ca.location"] = str(settings.kafka_ssl_ca)
        if settings.kafka_ssl_certificate:
            conf["ssl.certificate.location"] = str(settings.kafka_ssl_certificate)
            conf["ssl.key.location"] = str(settings.kafka_ssl_key)
        if settings.kafka_ssl_key_password:
            conf["ssl.key.password"] = settings.kafka_ssl_key_password.get_secret_value()
    conf.update(settings.kafka_client_properties)
    return conf


def parse_properties(pairs: list[str]) -> dict[str, str]:
    """kcat's ``-X prop=value`` arguments as a dict (the value may hold '=')."""
    out = {}
    for pair in pairs:
        name, sep, value = pair.partition("=")
        if not sep or not name.strip():
            raise ValueError(f"-X {pair!r}: write it as property=value, e.g. -X fetch.wait.max.ms=50")
        out[name.strip()] = value
    return out


def ssl_context(settings: Settings) -> ssl.SSLContext:
    """The TLS context aiokafka uses: verify the brokers (the given CA, or
    the system's), present a client certificate when one is configured."""
    ctx = ssl.create_default_context(cafile=str(settings.kafka_ssl_ca) if settings.kafka_ssl_ca else None)
    if settings.kafka_ssl_certificate:
        password = settings.kafka_ssl_key_password.get_secret_value() if settings.kafka_ssl_key_password else None
        ctx.load_cert_chain(str(settings.kafka_ssl_certificate), str(settings.kafka_ssl_key), password)
    return ctx


def faust_credentials(settings: Settings) -> CredentialsT | None:
    """What ``faust.App(broker_credentials=...)`` takes; None for PLAINTEXT."""
    protocol = settings.kafka_security_protocol
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return SSLCredentials(ssl_context(settings))
    # SASLCredentials picks SASL_SSL by itself when given a context.
    return SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password.get_secret_value() if settings.kafka_sasl_password else None,
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=ssl_context(settings) if protocol == "SASL_SSL" else None,
    )
