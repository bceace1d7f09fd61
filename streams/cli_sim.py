"""``murmur sim``: operations on one simulation as a whole."""

from __future__ import annotations

import typer

from streams.settings import get_settings

sim_app = typer.Typer(help="Operations on one simulation as a whole.", no_args_is_help=True)


@sim_app.command("delete")
def delete(
    sim: str = typer.Argument(..., help="The simulation id"),
    yes: bool = typer.Option(False, "--yes", "-y", help="Do not ask for confirmation"),
):
    """Remove a simulation from every view: read model, vectors, agent state, compacted topics.

    Deletes its rows from every Cassandra table that holds it, its points from
    the vector store, and sends tombstones for its keys to the Faust tables'
    changelogs and the compacted topics. Stop the workers and the API first
    (it refuses while they run). The append-only topics keep its records (Kafka
    cannot delete single records): a replay of them brings it back
    (docs/adr/0008-deleting-a-simulation.md). Running it again removes nothing more."""
    from streams.cli_common import fail, kafka_errors
    from sinks.sim_views import SimViews
    from streams.sim_delete import delete_simulation

    settings = get_settings()
    if not sim.strip():
        fail("give the simulation id to delete", 2)
    where = f"namespace {settings.namespace!r}" if settings.namespace else "the live pipeline"
    if not yes and not typer.confirm(f"Delete simulation {sim!r} from every view of {where}? This cannot be undone"):
        fail("nothing deleted", 1)
    with kafka_errors():
        done = delete_simulation(settings, sim, SimViews(settings))
    for line in done.lines():
        typer.echo(line)
