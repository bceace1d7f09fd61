"""Cassandra security settings as cassandra-driver's ``Cluster`` takes them:
a PasswordAuthenticator login and a TLS context (driver docs, "Security")."""

from __future__ import annotations

import ssl

from cassandra.auth import PlainTextAuthProvider

from streams.settings import Settings


def cluster_security(settings: Settings) -> dict:
    """Keyword arguments for ``Cluster(...)``: empty when neither is configured."""
    kwargs: dict = {}
    if settings.cassandra_username:
        kwargs["auth_provider"] = PlainTextAuthProvider(
            username=settings.cassandra_username,
            password=settings.cassandra_password.get_secret_value() if settings.cassandra_password else "")
    if settings.cassandra_ssl or settings.cassandra_ssl_ca:
        ctx = ssl.create_default_context(
            cafile=str(settings.cassandra_ssl_ca) if settings.cassandra_ssl_ca else None)
        # With check_hostname on, the driver (3.30) names each node by the
        # address it dials (server_hostname), so certificates must carry it.
        ctx.check_hostname = settings.cassandra_ssl_verify_hostname
        if not ctx.check_hostname:
            ctx.verify_mode = ssl.CERT_REQUIRED  # still verified against the CA, just not by name
        if settings.cassandra_ssl_certificate:
            ctx.load_cert_chain(str(settings.cassandra_ssl_certificate), str(settings.cassandra_ssl_key))
        kwargs["ssl_context"] = ctx
    return kwargs
