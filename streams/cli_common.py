"""What every command group of the CLI shares: one error line and a
non-zero exit, and Kafka's errors said once with what to check.

Its own module so that streams/cli.py and the command groups it registers
(streams/cli_<group>.py) both import it without importing each other.
"""

from __future__ import annotations

import functools
from contextlib import contextmanager

import typer

from streams.errors import MurmurError
from streams.settings import get_settings


def fail(message: str, code: int = 1) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(code)


@contextmanager
def kafka_errors():
    """A command that reads or writes Kafka: librdkafka's own log lines off
    (a refused connection prints one per retry), and a broker that does not
    answer, or any Murmur error, said once with a non-zero exit."""
    from confluent_kafka import KafkaException

    from streams import kafka

    kafka.quiet()
    try:
        yield
    except MurmurError as exc:
        fail(str(exc))
    except KafkaException as exc:
        fail(f"Kafka at {get_settings().kafka_bootstrap}: {kafka_error_hint(exc, kafka.last_error())}")


def kafka_error_hint(exc, cause) -> str:
    """The error a command met, and what to check: a refused login names the
    SASL settings, anything else asks whether the broker runs."""
    from confluent_kafka import KafkaError

    text = exc.args[0].str() if exc.args and hasattr(exc.args[0], "str") else str(exc)
    if cause is not None and cause.code() == KafkaError._AUTHENTICATION:
        return (f"{cause.str()} (check MURMUR_KAFKA_SECURITY_PROTOCOL, MURMUR_KAFKA_SASL_MECHANISM, "
                "MURMUR_KAFKA_SASL_USERNAME and MURMUR_KAFKA_SASL_PASSWORD)")
    if cause is not None and cause.code() == KafkaError._SSL:
        return f"{cause.str()} (check MURMUR_KAFKA_SSL_CA and the client certificate settings)"
    if exc.args and hasattr(exc.args[0], "code") and exc.args[0].code() == KafkaError._INVALID_ARG:
        return f"{text} (a client property: -X or MURMUR_KAFKA_CLIENT_PROPERTIES)"
    return f"{text} (is it running? `murmur services up`)"


def needs_kafka(command):
    """Runs a short command inside :func:`kafka_errors`."""
    @functools.wraps(command)
    def run(*args, **kwargs):
        with kafka_errors():
            return command(*args, **kwargs)
    return run
