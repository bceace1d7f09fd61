"""The Cassandra read model: DDL, idempotent writers and the queries the API
serves. Prepared statements once per session; writes go out concurrently
(``execute_async``) and are awaited from asyncio without blocking the loop.

Inserts into the hot tables (memories, timeline, agents) are grouped by
partition into small unlogged batches: one request and one mutation per
partition instead of one per row, which Cassandra applies atomically and
cheaply (bench B1 measured the sink at about a third of the importance
stage's rate before this). ``MURMUR_CASSANDRA_WRITES=single`` restores one
request per row, so the benchmark can run both paths side by side.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import logging
import os
import time
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Iterable

from cassandra import AuthenticationFailed, InvalidRequest
from cassandra.cluster import EXEC_PROFILE_DEFAULT, Cluster, ExecutionProfile, NoHostAvailable, Session
from cassandra.policies import ConstantReconnectionPolicy, RoundRobinPolicy
from cassandra.query import BatchStatement, BatchType, PreparedStatement

from sinks.cassandra_auth import cluster_security
from streams.errors import ServiceUnavailable
from streams.metrics import SINK_RETRIES, SINK_WRITE_SECONDS
from streams.settings import Settings

log = logging.getLogger(__name__)
DDL_FILE = Path(__file__).with_name("schema.cql")

MEMORY_COLUMNS = (
    "sim_id", "agent_id", "ts", "memory_id", "kind", "public", "action", "platform", "round", "content",
    "importance", "importance_fallback", "scorer", "embedder", "source_topic", "source_partition", "source_offset",
)
REFLECTION_COLUMNS = ("sim_id", "agent_id", "ts", "reflection_id", "round", "content", "source_ids", "importance",
                      "trigger", "importance_sum", "backend")
CONFLICT_COLUMNS = ("sim_id", "ts", "conflict_id", "agent_id", "round", "new_memory_id", "old_memory_id", "old_ts",
                    "new_content", "old_content", "similarity", "reason", "confidence", "backend")
LATEST_TS_CQL = "SELECT ts FROM {ks}.memories_by_agent WHERE sim_id = ? AND agent_id = ? LIMIT 1"
# Lists the API serves page by page (``CassandraStore.page``): no LIMIT,
# the page size is the driver's fetch size and the cursor Cassandra's own
# paging state, so a page ends exactly where the next begins, rows that share
# a timestamp included.
PAGES = {
    "timeline": "SELECT * FROM {ks}.timeline_by_sim WHERE sim_id = ?",
    "timeline_before": "SELECT * FROM {ks}.timeline_by_sim WHERE sim_id = ? AND ts < ?",
    "memories": "SELECT * FROM {ks}.memories_by_agent WHERE sim_id = ? AND agent_id = ?",
    "reflections": "SELECT * FROM {ks}.reflections_by_agent WHERE sim_id = ? AND agent_id = ?",
    "conflicts": "SELECT * FROM {ks}.conflicts_by_sim WHERE sim_id = ?",
    "agent_conflicts": "SELECT * FROM {ks}.conflicts_by_agent WHERE sim_id = ? AND agent_id = ?",
    "evals": "SELECT * FROM {ks}.eval_results",
    "evals_case": "SELECT * FROM {ks}.eval_results WHERE case_name = ?",
    # Oldest round first: the table's clustering order read backwards.
    "verdicts": "SELECT * FROM {ks}.verdicts_by_sim WHERE sim_id = ? ORDER BY round ASC",
}


class BadCursor(ValueError):
    """A page cursor this store did not hand out (or for another list)."""


def _b64(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _signature(key: bytes, name: str, params: tuple, state: bytes) -> bytes:
    return hmac.new(key, repr((name, params)).encode() + b"\0" + state, hashlib.sha256).digest()[:16]


def make_cursor(key: bytes, name: str, params: tuple, state: bytes) -> str:
    """Cassandra's paging state, signed for the list it belongs to: Cassandra
    answers a paging state it cannot read with a protocol error and closes
    the connection, so nothing unsigned may reach it."""
    return f"{_b64(state)}.{_b64(_signature(key, name, params, state))}"


def read_cursor(key: bytes, name: str, params: tuple, cursor: str) -> bytes:
    try:
        state_text, sig_text = cursor.split(".")
        state, sig = _unb64(state_text), _unb64(sig_text)
    except (ValueError, TypeError):
        raise BadCursor("the cursor is not one this API handed out") from None
    if not hmac.compare_digest(sig, _signature(key, name, params, state)):
        raise BadCursor("the cursor is not one this API handed out for this list")
    return state


def merge_agents(ids: list[str], personas: list[dict], limit: int) -> tuple[list[dict], bool]:
    """The first ``limit`` agents of two lists sorted by agent id (agents
    seen in memories; personas), each id once, with its persona; and
    whether more follow. Each list read to ``limit + 1`` rows is enough: an
    agent among the first ``limit`` of the union is among the first
    ``limit + 1`` of the list that holds it."""
    by_id = {p["agent_id"]: p for p in personas}
    merged = sorted(set(ids) | set(by_id))
    return [{"agent_id": a, "persona": by_id.get(a)} for a in merged[:limit]], len(merged) > limit


REFLECTIONS_CQL = "SELECT * FROM {ks}.reflections_by_agent WHERE sim_id = ? AND agent_id = ? LIMIT ?"
AGENT_CONFLICTS_CQL = "SELECT * FROM {ks}.conflicts_by_agent WHERE sim_id = ? AND agent_id = ? LIMIT ?"
VERDICT_COLUMNS = ("sim_id", "round", "ts", "question", "support_ratio", "direction", "magnitude", "confidence",
                   "post_count", "author_count", "stance_positive", "stance_negative", "stance_neutral", "flips",
                   "rationale", "backend", "reflection_count", "posts_read", "posts_no_signal", "posts_unreadable",
                   "coverage", "reflections_excluded", "stance_reliability")
PERSONA_COLUMNS = ("sim_id", "agent_id", "name", "archetype", "openness", "conscientiousness", "extraversion",
                   "agreeableness", "neuroticism", "conviction", "credibility", "initial_stance", "bio", "source")
EVAL_COLUMNS = ("case_name", "result_id", "sim_id", "features", "composite", "direction_match", "magnitude_error",
                "calibration", "predicted_direction", "support_ratio", "confidence", "truth_direction",
                "truth_magnitude", "result_json")
TIMELINE_COLUMNS = ("sim_id", "ts", "memory_id", "agent_id", "round", "action", "platform", "content", "importance")

WRITE_MODES = ("batched", "single")
# Rows written once with the same content whatever the redelivery, so rows of
# one batch (one write timestamp) never disagree. Verdicts (re-emitted with
# new numbers under one id) and conflict updates keep one request each.
BATCHED_TABLES = frozenset({"memories_by_agent", "timeline_by_sim", "agents_by_sim"})
BATCH_ROWS = 16
BATCH_BYTES = 4096  # under Cassandra's 5 KiB batch warning threshold


def _size(params: tuple) -> int:
    return sum(len(p) if isinstance(p, (str, bytes)) else 8 for p in params)


def partition_batches(writes: list[tuple[Any, Any]], *, rows: int = BATCH_ROWS,
                      max_bytes: int = BATCH_BYTES) -> list[tuple[Any, Any]]:
    """Inserts into BATCHED_TABLES grouped by partition key into unlogged
    batches of at most ``rows`` rows and about ``max_bytes``; every other
    write is passed through as it was."""
    out: list[tuple[Any, Any]] = []
    groups: dict[tuple, list[tuple[PreparedStatement, tuple]]] = {}
    for stmt, params in writes:
        meta = getattr(stmt, "column_metadata", None)
        keys = getattr(stmt, "routing_key_indexes", None)
        if (not isinstance(stmt, PreparedStatement) or not meta or not keys or meta[0].table_name not in BATCHED_TABLES
                or not stmt.query_string.lstrip().upper().startswith("INSERT")):
            out.append((stmt, params))
            continue
        groups.setdefault((meta[0].table_name, tuple(params[i] for i in keys)), []).append((stmt, params))
    for items in groups.values():
        batch, n, size = None, 0, 0
        for stmt, params in items:
            est = _size(params)
            if batch is None or n >= rows or size + est > max_bytes:
                batch, n, size = BatchStatement(batch_type=BatchType.UNLOGGED), 0, 0
                out.append((batch, None))
            batch.add(stmt, params)
            n, size = n + 1, size + est
    return out


def ddl_statements(keyspace: str, replication: int) -> list[str]:
    text = DDL_FILE.read_text().format(keyspace=keyspace, replication=replication)
    body = "\n".join(line for line in text.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in body.split(";") if s.strip()]


def keyspace_for(settings: Settings) -> str:
    """A namespace (replay, eval, isolated tests) gets a keyspace of its own,
    so it never writes into the live read model."""
    if not settings.namespace:
        return settings.cassandra_keyspace
    clean = "".join(c if c.isalnum() else "_" for c in settings.namespace.lower())
    return f"{settings.cassandra_keyspace}_{clean}"[:48]


def _ms(value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, datetime):
        return int(value.replace(tzinfo=timezone.utc).timestamp() * 1000)
    return int(value)


class WritesRefused(Exception):
    """A write failed for the records' own reason (``cause``), not an outage."""

    def __init__(self, cause: BaseException) -> None:
        super().__init__(str(cause))
        self.cause = cause


class CassandraStore:
    def __init__(self, settings: Settings, *, writes: str | None = None) -> None:
        self.settings = settings
        self.keyspace = keyspace_for(settings)
        self.write_mode = writes or settings.cassandra_writes
        # Signs page cursors; API replicas behind one address need the same one.
        self._cursor_key = (settings.api_cursor_key.encode() if settings.api_cursor_key else os.urandom(32))
        if self.write_mode not in WRITE_MODES:
            raise ValueError(f"writes={self.write_mode!r}: choose one of {', '.join(WRITE_MODES)}")
        self._cluster: Cluster | None = None
        self._session: Session | None = None
        self._prepared: dict[str, PreparedStatement] = {}
        self._schema_ready = False

    # -- connection ---------------------------------------------------------
    def connect(self) -> Session:
        if self._session is None:
            self._cluster = Cluster(
                list(self.settings.cassandra_hosts),
                port=self.settings.cassandra_port,
                execution_profiles={EXEC_PROFILE_DEFAULT: ExecutionProfile(load_balancing_policy=RoundRobinPolicy(),
                                                                           request_timeout=10)},
                # Keep trying while the database is away; writers retry on top.
                reconnection_policy=ConstantReconnectionPolicy(1.0, max_attempts=None),
                connect_timeout=5,
                protocol_version=5,
                **cluster_security(self.settings),
            )
            try:
                self._session = self._cluster.connect()
            except NoHostAvailable as exc:
                self._cluster.shutdown()
                self._cluster = None
                hosts = ",".join(self.settings.cassandra_hosts)
                if any(isinstance(e, AuthenticationFailed) for e in exc.errors.values()):
                    raise ServiceUnavailable(
                        f"Cassandra at {hosts}:{self.settings.cassandra_port} refused the login "
                        f"({next(iter(exc.errors.values()))}); check MURMUR_CASSANDRA_USERNAME and "
                        "MURMUR_CASSANDRA_PASSWORD") from None
                raise ServiceUnavailable(
                    f"Cassandra at {hosts}:{self.settings.cassandra_port} did not answer ({exc}); "
                    "start it with `murmur services up`"
                ) from None
        return self._session

    def close(self) -> None:
        if self._cluster is not None:
            self._cluster.shutdown()
        self._cluster = self._session = None
        self._prepared.clear()

    def apply_schema(self) -> None:
        session = self.connect()
        for stmt in ddl_statements(self.keyspace, self.settings.cassandra_replication):
            session.execute(stmt, timeout=60)
        self._schema_ready = True

    def ping(self) -> str:
        row = self.connect().execute("SELECT release_version FROM system.local", timeout=5).one()
        return row.release_version

    def _stmt(self, name: str, cql: str) -> PreparedStatement:
        if name not in self._prepared:
            self._prepared[name] = self.connect().prepare(cql.format(ks=self.keyspace))
        return self._prepared[name]

    # -- writes -------------------------------------------------------------
    def _insert(self, table: str, columns: tuple[str, ...]) -> PreparedStatement:
        cols = ", ".join(columns)
        marks = ", ".join("?" for _ in columns)
        return self._stmt(f"insert_{table}", f"INSERT INTO {{ks}}.{table} ({cols}) VALUES ({marks})")

    def memory_writes(self, memories: Iterable[dict]) -> list[tuple[PreparedStatement, tuple]]:
        """Statements for a batch of ScoredMemory records: one row per memory
        in memories_by_agent, and one in timeline_by_sim for public ones."""
        mem = self._insert("memories_by_agent", MEMORY_COLUMNS)
        tl = self._insert("timeline_by_sim", TIMELINE_COLUMNS)
        ag = self._insert("agents_by_sim", ("sim_id", "agent_id"))
        out = []
        agents = set()
        for m in memories:
            out.append((mem, tuple(m[c] for c in MEMORY_COLUMNS)))
            agents.add((m["sim_id"], m["agent_id"]))
            if m["public"]:
                out.append((tl, tuple(m[c] for c in TIMELINE_COLUMNS)))
        out.extend((ag, pair) for pair in sorted(agents))
        return out

    def reflection_writes(self, reflections: Iterable[dict]) -> list[tuple[PreparedStatement, tuple]]:
        stmt = self._insert("reflections_by_agent", REFLECTION_COLUMNS)
        return [(stmt, tuple({**r, "reflection_id": r["event_id"]}[c] for c in REFLECTION_COLUMNS)) for r in reflections]

    def conflict_writes(self, conflicts: Iterable[dict]) -> list[tuple[PreparedStatement, tuple]]:
        """The conflict row, and the older memory marked superseded (valid_to),
        never deleted. The update touches only valid_to/superseded_by, so it
        is correct whichever of it and the memory's own insert lands first."""
        ins = self._insert("conflicts_by_sim", CONFLICT_COLUMNS)
        by_agent = self._insert("conflicts_by_agent", CONFLICT_COLUMNS)
        sup = self._stmt("supersede", "UPDATE {ks}.memories_by_agent SET valid_to = ?, superseded_by = ? "
                                      "WHERE sim_id = ? AND agent_id = ? AND ts = ? AND memory_id = ?")
        out = []
        for c in conflicts:
            row = tuple({**c, "conflict_id": c["event_id"]}[k] for k in CONFLICT_COLUMNS)
            out += [(ins, row), (by_agent, row)]
            out.append((sup, (c["ts"], c["new_memory_id"], c["sim_id"], c["agent_id"], c["old_ts"], c["old_memory_id"])))
        return out

    def verdict_writes(self, verdicts: Iterable[dict]) -> list[tuple[PreparedStatement, tuple]]:
        stmt = self._insert("verdicts_by_sim", VERDICT_COLUMNS)
        return [(stmt, tuple(v[c] for c in VERDICT_COLUMNS)) for v in verdicts]

    def persona_writes(self, personas: Iterable[dict]) -> list[tuple[PreparedStatement, tuple]]:
        stmt = self._insert("personas_by_sim", PERSONA_COLUMNS)
        return [(stmt, tuple(p[c] for c in PERSONA_COLUMNS)) for p in personas]

    def write_eval_result(self, result: dict) -> None:
        row = {**result, "case_name": result["case"], "result_id": result["event_id"]}
        self.connect().execute(self._insert("eval_results", EVAL_COLUMNS), tuple(row[c] for c in EVAL_COLUMNS))

    async def execute_all(self, writes, *, sink: str = "cassandra",
                          max_backoff: float = 5.0, refused=None) -> None:
        """Run every write concurrently (``writes``: statements, or a function
        returning them); retry the whole set with backoff until it lands. Upserts are idempotent, so re-running succeeded ones is safe,
        and the caller's batch stays unacked (lag grows) while we wait.
        An error ``refused(exc)`` calls the records' own is raised as
        :class:`WritesRefused` at once instead (sinks/refusals.py)."""
        attempt = 0
        built = not callable(writes)
        if built and self.write_mode == "batched":
            writes = partition_batches(writes)
        while True:
            started = time.perf_counter()
            try:
                if not self._schema_ready:
                    # Here, inside the retry loop, rather than at start-up: a
                    # worker started while the database is away waits for it.
                    await asyncio.get_running_loop().run_in_executor(None, self.apply_schema)
                if not built:
                    writes = writes()  # statements are prepared once the database answers
                    if self.write_mode == "batched":
                        writes = partition_batches(writes)
                    built = True
                await asyncio.gather(*(self._execute(stmt, params) for stmt, params in writes))
                SINK_WRITE_SECONDS.labels(sink).observe(time.perf_counter() - started)
                return
            except Exception as exc:  # driver raises many types while a node is away
                if refused is not None and refused(exc):
                    raise WritesRefused(exc) from exc
                attempt += 1
                SINK_RETRIES.labels(sink).inc()
                delay = min(max_backoff, 0.1 * 2 ** min(attempt, 10))
                log.warning("%s write failed (attempt %d, retry in %.1fs): %s", sink, attempt, delay, exc)
                await asyncio.sleep(delay)

    async def answers(self) -> bool:
        """Whether the database answers a read now: a refused write is then
        the record's doing, not an outage's."""
        try:
            await asyncio.get_running_loop().run_in_executor(
                None, lambda: self.connect().execute("SELECT release_version FROM system.local", timeout=5))
            return True
        except Exception:  # NoHostAvailable, timeouts: away
            return False

    def _execute(self, stmt: PreparedStatement, params: tuple) -> asyncio.Future:
        loop = asyncio.get_running_loop()
        fut: asyncio.Future = loop.create_future()
        rf = self.connect().execute_async(stmt, params, timeout=10)

        def ok(result):
            loop.call_soon_threadsafe(lambda: fut.done() or fut.set_result(result))

        def err(exc):
            loop.call_soon_threadsafe(lambda: fut.done() or fut.set_exception(exc))

        rf.add_callbacks(ok, err)
        return fut

    # -- reads --------------------------------------------------------------
    def page(self, name: str, params: tuple, *, limit: int, cursor: str | None = None) -> tuple[list[dict], str | None]:
        """One page of a list of ``PAGES`` and the cursor of the next (None:
        this was the last)."""
        state = read_cursor(self._cursor_key, name, params, cursor) if cursor else None
        bound = self._stmt(f"page_{name}", PAGES[name]).bind(params)
        bound.fetch_size = limit
        try:
            rs = self.connect().execute(bound, paging_state=state)
        except InvalidRequest as exc:  # signed, but from a list whose query has changed since
            raise BadCursor(f"the cursor no longer fits this list: {exc}") from None
        rows = [_row(r) for r in rs.current_rows]
        if not (rs.has_more_pages and rs.paging_state):
            return rows, None
        return rows, make_cursor(self._cursor_key, name, params, rs.paging_state)

    def timeline(self, sim_id: str, *, limit: int = 50, before_ms: int | None = None) -> list[dict]:
        if before_ms is None:
            stmt = self._stmt("timeline", "SELECT * FROM {ks}.timeline_by_sim WHERE sim_id = ? LIMIT ?")
            rows = self.connect().execute(stmt, (sim_id, limit))
        else:
            stmt = self._stmt("timeline_before", "SELECT * FROM {ks}.timeline_by_sim WHERE sim_id = ? AND ts < ? LIMIT ?")
            rows = self.connect().execute(stmt, (sim_id, before_ms, limit))
        return [_row(r) for r in rows]

    def memories(self, sim_id: str, agent_id: str, *, limit: int = 50, kind: str | None = None,
                 include_superseded: bool = True) -> list[dict]:
        stmt = self._stmt("memories", "SELECT * FROM {ks}.memories_by_agent WHERE sim_id = ? AND agent_id = ?")
        out = []
        for r in self.connect().execute(stmt, (sim_id, agent_id)):
            row = _row(r)
            if kind and row["kind"] != kind:
                continue
            if not include_superseded and row["valid_to"] is not None:
                continue
            out.append(row)
            if len(out) >= limit:
                break
        return out

    def agents_page(self, sim_id: str, *, limit: int, cursor: str | None = None) -> tuple[list[dict], str | None]:
        """A page of the agents of a simulation (agents_by_sim merged with
        personas_by_sim), by agent id, and the cursor of the next: the last
        id given, signed, so the next page starts strictly after it (the two
        tables share no paging state to hand out)."""
        after = read_cursor(self._cursor_key, "agents", (sim_id,), cursor).decode() if cursor else None
        where = "WHERE sim_id = ?" + (" AND agent_id > ?" if after is not None else "")
        params = (sim_id,) + ((after,) if after is not None else ()) + (limit + 1,)
        suffix = "_after" if after is not None else ""
        ids = self.connect().execute(self._stmt(f"agents_page{suffix}",
                                                f"SELECT agent_id FROM {{ks}}.agents_by_sim {where} LIMIT ?"), params)
        personas = self.connect().execute(self._stmt(f"personas_page{suffix}",
                                                     f"SELECT * FROM {{ks}}.personas_by_sim {where} LIMIT ?"), params)
        rows, more = merge_agents([r.agent_id for r in ids], [_row(r) for r in personas], limit)
        if not more:
            return rows, None
        return rows, make_cursor(self._cursor_key, "agents", (sim_id,), rows[-1]["agent_id"].encode())

    def agents(self, sim_id: str) -> list[str]:
        stmt = self._stmt("agents", "SELECT agent_id FROM {ks}.agents_by_sim WHERE sim_id = ?")
        return [r.agent_id for r in self.connect().execute(stmt, (sim_id,))]

    def count_memories(self, sim_id: str, agent_ids: Iterable[str] | None = None, *, kinds: tuple[str, ...] = ()) -> int:
        """Memories of a simulation (optionally of some kinds only), summed over
        its agents' partitions; for checks and summaries, not hot paths."""
        ids = self.agents(sim_id) if agent_ids is None else agent_ids
        if not kinds:
            stmt = self._stmt("count_mem", "SELECT COUNT(*) FROM {ks}.memories_by_agent WHERE sim_id = ? AND agent_id = ?")
            return sum(self.connect().execute(stmt, (sim_id, a)).one()[0] for a in ids)
        # Filtering inside one partition: bounded by that agent's memories.
        stmt = self._stmt("count_mem_kind", "SELECT COUNT(*) FROM {ks}.memories_by_agent "
                                            "WHERE sim_id = ? AND agent_id = ? AND kind = ? ALLOW FILTERING")
        return sum(self.connect().execute(stmt, (sim_id, a, k)).one()[0] for a in ids for k in kinds)

    def reflections(self, sim_id: str, agent_id: str, *, limit: int = 50) -> list[dict]:
        stmt = self._stmt("reflections", REFLECTIONS_CQL)
        return [_row(r) for r in self.connect().execute(stmt, (sim_id, agent_id, limit))]

    def conflicts(self, sim_id: str, *, limit: int = 50, agent_id: str | None = None) -> list[dict]:
        stmt = self._stmt("conflicts", "SELECT * FROM {ks}.conflicts_by_sim WHERE sim_id = ?")
        out = []
        for r in self.connect().execute(stmt, (sim_id,)):
            row = _row(r)
            if agent_id is None or row["agent_id"] == agent_id:
                out.append(row)
                if len(out) >= limit:
                    break
        return out

    def agent_conflicts(self, sim_id: str, agent_id: str, *, limit: int = 50) -> list[dict]:
        """The agent's conflicts, newest first: beliefs it gave up (the old
        memory) for newer ones."""
        stmt = self._stmt("agent_conflicts", AGENT_CONFLICTS_CQL)
        return [_row(r) for r in self.connect().execute(stmt, (sim_id, agent_id, limit))]

    async def agents_recall(self, sim_id: str, agent_ids: list[str], *, limit: int = 10
                            ) -> dict[str, tuple[int | None, list[dict], list[dict]]]:
        """Per agent: its newest memory's time (None: no memory), its
        reflections and its conflicts, newest first. All the reads at once
        (the driver's own concurrency), for the context of a whole round."""
        latest = self._stmt("latest_ts", LATEST_TS_CQL)
        beliefs = self._stmt("reflections", REFLECTIONS_CQL)
        changed = self._stmt("agent_conflicts", AGENT_CONFLICTS_CQL)
        agents = list(dict.fromkeys(agent_ids))
        reads = await asyncio.gather(*(self._execute(stmt, params) for a in agents for stmt, params in (
            (latest, (sim_id, a)), (beliefs, (sim_id, a, limit)), (changed, (sim_id, a, limit)))))
        out = {}
        for i, a in enumerate(agents):
            newest, refl, conf = reads[3 * i:3 * i + 3]
            newest = list(newest)
            out[a] = (_ms(newest[0].ts) if newest else None, [_row(r) for r in refl], [_row(r) for r in conf])
        return out

    def verdicts(self, sim_id: str, *, limit: int = 1000) -> list[dict]:
        stmt = self._stmt("verdicts", "SELECT * FROM {ks}.verdicts_by_sim WHERE sim_id = ? LIMIT ?")
        return [_row(r) for r in self.connect().execute(stmt, (sim_id, limit))]

    def personas(self, sim_id: str) -> list[dict]:
        stmt = self._stmt("personas", "SELECT * FROM {ks}.personas_by_sim WHERE sim_id = ?")
        return [_row(r) for r in self.connect().execute(stmt, (sim_id,))]

    def eval_results(self, *, case: str | None = None, limit: int = 100) -> list[dict]:
        if case is None:
            rows = self.connect().execute(self._stmt("evals", "SELECT * FROM {ks}.eval_results LIMIT ?"), (limit,))
        else:
            rows = self.connect().execute(self._stmt("evals_case", "SELECT * FROM {ks}.eval_results WHERE case_name = ? LIMIT ?"),
                                          (case, limit))
        return [_row(r) for r in rows]

    def latest_ts(self, sim_id: str, agent_id: str) -> int | None:
        stmt = self._stmt("latest_ts", LATEST_TS_CQL)
        row = self.connect().execute(stmt, (sim_id, agent_id)).one()
        return _ms(row.ts) if row else None

    def count_timeline(self, sim_id: str) -> int:
        stmt = self._stmt("count_tl", "SELECT COUNT(*) FROM {ks}.timeline_by_sim WHERE sim_id = ?")
        return self.connect().execute(stmt, (sim_id,)).one()[0]


def _row(r) -> dict:
    d = r._asdict()
    for key in ("ts", "valid_to", "old_ts"):
        if key in d:
            d[key] = _ms(d[key])
    return d
