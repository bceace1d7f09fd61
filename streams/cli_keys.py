"""``murmur api-keys``: issue, list and revoke the API's keys (api/keys.py).

The api package is imported inside the commands: streams/ is the platform
and does not depend on api/ at import time (as `murmur api` does). Nothing
of streams/cli.py is imported: that module registers this one, and the
import would be a circle."""

from __future__ import annotations

from contextlib import contextmanager
from typing import List, Optional

import typer

from streams.settings import get_settings

api_keys_app = typer.Typer(help="API keys: issue (shown once), list, revoke; only their SHA-256 is stored.",
                           no_args_is_help=True)


def _limit(value: Optional[str], option: str) -> Optional[str]:
    """A --rate/--quota value checked now, not at the first request."""
    if value is None or value == "none":
        return value
    import limits

    try:
        limits.parse(value)
    except ValueError as exc:
        raise typer.BadParameter(f"{value!r}: {exc} (write e.g. 10/second, 10000/day, or none)",
                                 param_hint=option) from None
    return value


def fail(message: str) -> None:
    typer.secho(f"error: {message}", fg=typer.colors.RED, err=True)
    raise typer.Exit(1)


@contextmanager
def key_table():
    """The api_keys table of this keyspace (created if missing), and a clear
    error when Cassandra does not answer."""
    from api.keys import KeyTable
    from sinks.cassandra_store import CassandraStore
    from streams.errors import MurmurError

    store = CassandraStore(get_settings())
    try:
        store.apply_schema()  # idempotent; a keyspace older than the key table gets it here
        yield KeyTable(store)
    except MurmurError as exc:
        fail(str(exc))
    finally:
        store.close()


@api_keys_app.command("issue")
def issue(name: str = typer.Option(..., "--name", help="Who or what the key is for (shown by list)"),
          rate: Optional[str] = typer.Option(None, "--rate", help="Requests to the expensive endpoints, e.g. 10/second "
                                                                  "(default: MURMUR_API_KEY_RATE; none: unlimited)"),
          quota: Optional[str] = typer.Option(None, "--quota", help="Agents served by them, e.g. 10000/day "
                                                                    "(default: MURMUR_API_KEY_QUOTA; none: unlimited)"),
          sims: Optional[List[str]] = typer.Option(None, "--sim", help="Only this simulation (repeat for more; "
                                                                       "default: all)")):
    """Issue a key and print it on stdout, once: only its SHA-256 is kept."""
    rate, quota = _limit(rate, "--rate"), _limit(quota, "--quota")
    with key_table() as keys:
        key, secret = keys.issue(name, rate=rate, quota=quota, sims=frozenset(sims or ()))
    typer.echo(f"issued key {key.key_id} ({name}); store it now, it is not shown again:", err=True)
    typer.echo(secret)


@api_keys_app.command("list")
def list_keys():
    """Every key issued in this keyspace: id, name, dates, limits (never the key, and only 8 digits of its hash)."""
    from api.keys import shown

    with key_table() as keys:
        rows = [shown(k) for k in keys.all()]
    if not rows:
        typer.echo("no API keys issued")
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(r[c]) for r in rows)) for c in columns}
    for row in [dict(zip(columns, columns)), *rows]:
        typer.echo("  ".join(row[c].ljust(widths[c]) for c in columns).rstrip())


@api_keys_app.command("revoke")
def revoke(key_id: str = typer.Argument(..., help="The key's id (the 12 hex digits after mk_; `murmur api-keys list`)")):
    """Revoke a key: API processes refuse it within MURMUR_API_KEY_CACHE_S seconds."""
    with key_table() as keys:
        key = keys.revoke(key_id)
    if key is None:
        fail(f"no API key {key_id!r} (see `murmur api-keys list`)")
    typer.echo(f"revoked {key.key_id} ({key.name}) at {key.revoked_at:%Y-%m-%dT%H:%M:%SZ}; API processes refuse it "
               f"within {get_settings().api_key_cache_s:g} s")
