"""Deleting one simulation from the Cassandra read model.

Which tables hold a simulation, and how to reach its rows, is read from
schema.cql itself (:func:`sim_tables`), so a table added there is covered or
refused, never forgotten:

* partitioned by ``sim_id``: one partition delete;
* partitioned by ``(sim_id, agent_id)``: one partition delete per agent, the
  agents found in the tables partitioned by sim that name them;
* ``sim_id`` as a plain column (eval results, partitioned by case): its rows
  found with a filtering scan of that table, then deleted by primary key.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal

from sinks.cassandra_store import DDL_FILE, CassandraStore

Reach = Literal["sim", "agent", "scan"]


@dataclass(frozen=True)
class SimTable:
    name: str
    reach: Reach
    primary_key: tuple[str, ...]  # partition key columns, then clustering columns
    names_agents: bool = False  # has an agent_id column: a source of the sim's agent ids


class UnknownLayout(ValueError):
    """A table holds sim_id in a way the delete does not know how to reach."""


_TABLE = re.compile(r"CREATE TABLE IF NOT EXISTS \{keyspace\}\.(\w+)\s*\((.*?)\)\s*(?:WITH[^;]*)?;", re.S)


def _primary_key(body: str) -> tuple[list[str], list[str]]:
    inline = re.search(r"^\s*(\w+)\s+[\w<>, ]+?\s+PRIMARY KEY\s*,?\s*$", body, re.M)
    if inline:
        return [inline.group(1)], []
    m = re.search(r"PRIMARY KEY\s*\(\s*(\((.*?)\)|\w+)\s*(?:,(.*?))?\)\s*$", body.strip(), re.S)
    if m is None:
        raise UnknownLayout(f"no primary key in {body[:80]!r}")
    partition = [c.strip() for c in (m.group(2) or m.group(1)).split(",")]
    clustering = [c.strip() for c in (m.group(3) or "").split(",") if c.strip()]
    return partition, clustering


def sim_tables(cql: str | None = None) -> list[SimTable]:
    """Every table of the schema with a ``sim_id`` column and how the delete
    reaches its rows. Raises :class:`UnknownLayout` for a layout it cannot
    delete from, so a new table is decided on when it is added."""
    text = "\n".join(line for line in (cql if cql is not None else DDL_FILE.read_text()).splitlines()
                     if not line.strip().startswith("--"))
    out = []
    for name, body in _TABLE.findall(text):
        columns = {line.split()[0] for line in body.splitlines()
                   if line.strip() and not line.strip().startswith("PRIMARY KEY")}
        if "sim_id" not in columns:
            continue
        partition, clustering = _primary_key(body)
        key = tuple(partition + clustering)
        if partition == ["sim_id"]:
            reach: Reach = "sim"
        elif partition == ["sim_id", "agent_id"]:
            reach = "agent"
        elif "sim_id" not in partition:
            reach = "scan"
        else:
            raise UnknownLayout(f"table {name}: partition key {partition} holds sim_id with other columns; "
                                "teach sinks/cassandra_delete.py how to find its partitions")
        out.append(SimTable(name, reach, key, names_agents="agent_id" in columns and reach == "sim"))
    return out


def delete_order(tables: list[SimTable]) -> list[SimTable]:
    """Per-agent tables first, the tables that name the agents last: a delete
    cut short leaves the agents findable, and running it again finishes it."""
    rank = {"agent": 0, "scan": 1, "sim": 2}
    return sorted(tables, key=lambda t: (rank[t.reach], t.name))


def delete_sim(store: CassandraStore, sim_id: str, *, more_agents: set[str] = frozenset()) -> dict[str, int]:
    """Delete every row of ``sim_id``; rows removed per table (counted just
    before). ``more_agents``: agent ids known from elsewhere (the compacted
    topics' keys). Deletes are idempotent: running it again removes nothing more."""
    session = store.connect()
    ks = store.keyspace
    meta = session.cluster.metadata.keyspaces.get(ks)
    if meta is None:  # never written: nothing to delete (and nothing created)
        return {}
    tables = [t for t in delete_order(sim_tables()) if t.name in meta.tables]
    agents: set[str] = set(more_agents)
    for t in tables:
        if t.names_agents:
            agents.update(r.agent_id for r in session.execute(
                f"SELECT agent_id FROM {ks}.{t.name} WHERE sim_id = %s", (sim_id,)))
    removed: dict[str, int] = {}
    for t in tables:
        if t.reach == "sim":
            removed[t.name] = session.execute(f"SELECT COUNT(*) FROM {ks}.{t.name} WHERE sim_id = %s",
                                              (sim_id,)).one()[0]
            session.execute(f"DELETE FROM {ks}.{t.name} WHERE sim_id = %s", (sim_id,))
        elif t.reach == "agent":
            n = 0
            for agent in sorted(agents):
                n += session.execute(f"SELECT COUNT(*) FROM {ks}.{t.name} WHERE sim_id = %s AND agent_id = %s",
                                     (sim_id, agent)).one()[0]
                session.execute(f"DELETE FROM {ks}.{t.name} WHERE sim_id = %s AND agent_id = %s", (sim_id, agent))
            removed[t.name] = n
        else:
            # Not partitioned by sim: a filtering scan of the whole table,
            # bounded by its size (eval results: one row per eval run).
            cols = ", ".join(t.primary_key)
            rows = list(session.execute(f"SELECT {cols} FROM {ks}.{t.name} WHERE sim_id = %s ALLOW FILTERING",
                                        (sim_id,)))
            where = " AND ".join(f"{c} = %s" for c in t.primary_key)
            for r in rows:
                session.execute(f"DELETE FROM {ks}.{t.name} WHERE {where}", tuple(r))
            removed[t.name] = len(rows)
    return removed
