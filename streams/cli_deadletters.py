"""``murmur dead-letters``: what the dead-letter topic holds, and the redrive
of processor dead letters to the topics they came from (streams/redrive.py)."""

from __future__ import annotations

import time
from datetime import datetime, timezone
from typing import Optional

import typer

from streams.settings import get_settings

dead_letters_app = typer.Typer(help="The dead-letter topic: summary, and redrive of processor dead letters.",
                               no_args_is_help=True)


def _when(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ") if ms else "-"


@dead_letters_app.command("list")
def list_dead_letters(
    topic: Optional[str] = typer.Option(None, "--topic", help="Only dead letters read from this topic (its full name)"),
    reason: Optional[str] = typer.Option(None, "--reason", help="Only those whose reason contains this text (any case)"),
    n: int = typer.Option(20, "-n", min=1, help="At most this many rows, most frequent first"),
):
    """Dead letters counted per source topic, stage and kind of reason.

    With how many of each a redrive could send back (processor dead letters
    kept whole) and the latest time one was written."""
    from streams.cli_common import kafka_errors
    from streams.redrive import summarize

    with kafka_errors():
        rows, total = summarize(get_settings(), topic=topic, reason=reason, limit=n)
    if not rows:
        typer.echo(f"no dead letters{' matching' if topic or reason else ''} ({total} on the topic)")
        return
    typer.echo(f"{'count':>7} {'redrivable':>10}  {'latest':20} {'source topic':28} {'stage':16} reason")
    for g in rows:
        typer.echo(f"{g.count:7} {g.redrivable:10}  {_when(g.last_ts):20} {g.source:28} {g.stage:16} {g.reason}")
    typer.echo(f"{total} dead letters on the topic")


@dead_letters_app.command("redrive")
def redrive_dead_letters(
    reason: Optional[str] = typer.Option(None, "--reason", help="Only those whose reason contains this text (any case)"),
    source_topic: Optional[str] = typer.Option(None, "--source-topic", help="Only those read from this topic (full name)"),
    since: Optional[str] = typer.Option(None, "--since", help="Only those dead-lettered since: 30m, 2h, 7d, an ISO "
                                                               "time or epoch ms (older ones are passed over for good)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Count what would be redriven: nothing sent, no progress recorded"),
    limit: Optional[int] = typer.Option(None, "--limit", min=1, help="Redrive a record at most this many times "
                                                                      "(default MURMUR_REDRIVE_LIMIT)"),
):
    """Send processor dead letters back to the topics they came from.

    Each goes back to the topic and partition it was read from with its key,
    value and headers, and a murmur-redrive-count header. Publisher dead
    letters (input lines), contract failures and records redriven --limit
    times are skipped, with why. Progress is a consumer group's offset on the
    dead-letter topic (one group per --reason and --source-topic): running it
    twice redrives nothing twice. A record processed twice changes nothing
    (keyed, idempotent writes)."""
    from streams.cli_common import fail, kafka_errors
    from streams.redrive import Filters, parse_since, redrive

    since_ms = None
    if since is not None:
        try:
            since_ms = parse_since(since, now_ms=int(time.time() * 1000))
        except ValueError as exc:
            fail(str(exc), 2)
    with kafka_errors():
        report = redrive(get_settings(), Filters(reason=reason, source_topic=source_topic, since_ms=since_ms),
                         dry_run=dry_run, limit=limit)
    for line in report.lines():
        typer.echo(line)
