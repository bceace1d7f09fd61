"""Read one run of a simulation for ``murmur eval compare``: its read-model
rows (the namespace's keyspace) and its LlmCall records (the namespace's
``LLM_CALLS`` topic, streams/topics.py).

A run is named by its namespace; ``""`` is the un-namespaced live pipeline.
A namespace with no keyspace, or a simulation with no row in it, is a
:class:`MissingRun` (the command's usage error), never an empty run that
would compare as "everything differs".
"""

from __future__ import annotations

from streams.errors import DecodeError, MurmurError
from streams.settings import Settings


class MissingRun(MurmurError):
    """The namespace or the simulation asked for is not there."""


def label(namespace: str) -> str:
    return namespace or "live"


def llm_records(settings: Settings, sim: str) -> list[dict]:
    """The simulation's LlmCall records in ``settings.namespace`` (none when
    the topic does not exist: a replay's namespace has none)."""
    from streams.kafka import read_to_end
    from streams.serde import default_serde
    from streams.topics import LLM_CALLS, topic_name

    serde = default_serde()
    out = []
    for m in read_to_end(settings, topic_name(LLM_CALLS, settings.namespace)):
        try:
            _, r = serde.decode(m.value())
        except DecodeError:
            continue  # dead-lettered where it was written; not this run's call
        if r.get("sim_id") == sim:
            out.append(r)
    return out


def read_run(settings: Settings, namespace: str, sim: str) -> dict:
    """``{"name", "snapshot", "llm"}`` of ``sim`` in ``namespace``."""
    from eval.compare import snapshot
    from eval.side_by_side import llm_usage
    from sinks.cassandra_store import CassandraStore

    ns = settings.model_copy(update={"namespace": namespace})
    store = CassandraStore(ns)
    try:
        found = store.connect().execute("SELECT keyspace_name FROM system_schema.keyspaces WHERE keyspace_name = %s",
                                        (store.keyspace,)).one()
        if found is None:
            raise MissingRun(f"no namespace {namespace!r}: its keyspace {store.keyspace} does not exist "
                             "(replay into it first: murmur replay --sim SIM --namespace NS)")
        rows = snapshot(store, sim)
    finally:
        store.close()
    if not any(rows.values()):
        raise MissingRun(f"no simulation {sim!r} in {'namespace ' + repr(namespace) if namespace else 'the live run'} "
                         f"(keyspace {store.keyspace} has no verdict, memory or conflict of it)")
    return {"name": label(namespace), "snapshot": rows, "llm": llm_usage(llm_records(ns, sim))}


def compare(settings: Settings, sim: str, namespace: str, against: str | None = None, *, examples: int = 5) -> dict:
    """The replay in ``namespace`` against ``against`` (default: the run in
    ``settings.namespace``, the live one), as :func:`eval.side_by_side.compare_runs` reports it."""
    from eval.side_by_side import compare_runs

    ref = settings.namespace if against is None else against
    b = read_run(settings, namespace, sim)  # first: the one named on the command line is likelier mistyped
    a = read_run(settings, ref, sim)
    return compare_runs(sim, a, b, examples=examples)
