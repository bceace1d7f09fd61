"""``murmur replay``: re-run one simulation from the log into an isolated
namespace.

Reads the source topics (the agent log, rounds, simulations) from where the
simulation's events begin (its first recorded start, ``streams/sim_starts.py``;
the beginning of the log when none is recorded) to the end offsets recorded
when it starts, with a fresh consumer that commits nothing, keeps the simulation's
events, and stops by itself at those offsets. The events then go through the
batch path (``processors.batch``): the agent pass of a live worker, over each
agent's events in log order, so the replay's outputs are the live run's.
The persona topic is not read: it holds copies of the log's personas. Outputs land in ``<namespace>.`` topics and the
namespace's keyspace, never in the live read model.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

from confluent_kafka import KafkaError, TopicPartition

from streams.errors import DecodeError, MurmurError
from streams.kafka import end_offsets, make_consumer
from streams.serde import AvroSerde, default_serde
from streams.settings import Settings
from streams.sim_starts import read_from, reading_since
from streams.topics import AGENT_LOG, ROUNDS, SIMULATIONS, may_be_of_sim, topic_name

REPLAYED = (AGENT_LOG, ROUNDS, SIMULATIONS)


@dataclass
class ReplayRead:
    events: list[tuple[str, dict]]
    positions: list[tuple[str, int, int]]  # where each event was read: (topic, partition, offset)
    read: int  # records read, all simulations
    undecodable: int  # of the records keyed to the simulation
    end_offsets: dict[tuple[str, int], int]
    read_from: str = "the beginning"  # where reading started, and why


def read_sim(settings: Settings, sim_id: str, *, start: dict[tuple[str, int], int] | None = None,
             serde: AvroSerde | None = None, from_beginning: bool = False) -> ReplayRead:
    """The simulation's source events in log order. ``start``: offsets to
    read each partition from (given: a log whose earlier records are known
    to hold none of its events); by default where its first recorded start
    says its events begin; ``from_beginning``: every offset."""
    serde = serde or default_serde()
    topics = [topic_name(s) for s in REPLAYED]
    ends = end_offsets(settings, topics)  # the stopping point, fixed now
    if start is not None:
        why = "the offsets given"
    elif from_beginning:
        why = "the beginning, as asked"
    else:
        found = read_from(settings, sim_id, topics, ends)
        start, why = found.offsets, found.why
    todo = {tp: end for tp, end in ends.items() if end > (start or {}).get(tp, 0)}
    out = ReplayRead([], [], 0, 0, ends, why)
    if not todo:
        return out
    consumer = make_consumer(settings, **{"enable.partition.eof": False})
    try:
        consumer.assign([TopicPartition(t, p, (start or {}).get((t, p), 0)) for (t, p) in todo])
        remaining = dict(todo)
        # consume() waits for all it asked or its timeout: asking no more
        # than the offsets left keeps the last call from idling (as read_to_end).
        left = sum(end - (start or {}).get(tp, 0) for tp, end in todo.items())
        while remaining:
            msgs = consumer.consume(max(1, min(5000, left)), 0.05)
            left -= len(msgs)
            for msg in msgs:
                if msg.error():
                    if msg.error().code() != KafkaError._PARTITION_EOF:
                        raise MurmurError(f"replay: Kafka error: {msg.error()}")
                    continue
                tp = (msg.topic(), msg.partition())
                if tp not in remaining or msg.offset() >= remaining[tp]:
                    continue
                out.read += 1
                if msg.offset() + 1 >= remaining[tp]:
                    del remaining[tp]
                    consumer.pause([TopicPartition(*tp)])
                if not may_be_of_sim(msg.key(), sim_id):
                    continue  # another simulation's, by the topics' key contract: not decoded
                try:
                    type_name, record = serde.decode(msg.value())
                except DecodeError:
                    out.undecodable += 1  # already dead-lettered by the live processors
                    continue
                if record.get("sim_id") == sim_id:
                    out.events.append((type_name, record))
                    out.positions.append((msg.topic(), msg.partition(), msg.offset()))
            # Compaction leaves gaps: a partition is done once its position
            # passed the end, even if the last offset itself is gone.
            if not msgs and remaining:
                for tp in consumer.position([TopicPartition(t, p) for (t, p) in remaining]):
                    if tp.offset >= remaining[(tp.topic, tp.partition)]:
                        del remaining[(tp.topic, tp.partition)]
    finally:
        consumer.close()
    return out


JOURNAL_MODES = ("off", "strict", "fill")


def load_journal(settings: Settings, sim_id: str):
    """The live run's LLM answers for the simulation (its LlmCall events, in
    ``settings.namespace``) and its memories' embeddings (its ScoredMemory
    events): what a replay answers from instead of the model."""
    from streams.kafka import read_to_end
    from streams.llm.journal import load
    from streams.topics import LLM_CALLS, SCORED
    from streams.vectors import vector_of

    serde = default_serde()
    # The live run's records of the simulation came after its events: read
    # from its first recorded start, as the source topics are.
    _, since = reading_since(settings, sim_id, serde)

    def records(spec) -> list[dict]:
        out = []
        for m in read_to_end(settings, topic_name(spec, settings.namespace), since_ms=since):
            try:
                _, r = serde.decode(m.value())
            except DecodeError:
                continue
            if r.get("sim_id") == sim_id:
                out.append(r)
        return out

    return load(records(LLM_CALLS), records(SCORED), vector_of)


def replay_sim(settings: Settings, sim_id: str, *, namespace: str, question: str = "", journal: str = "off",
               start: dict[tuple[str, int], int] | None = None, from_beginning: bool = False) -> dict:
    """Read the simulation, run the batch path, write every derived event into
    ``namespace`` (topics and keyspace). Returns counts.

    ``journal``: ``strict`` answers every LLM request from the live run's
    journal (no model call; a miss is counted and fails as an unavailable
    model would), ``fill`` asks the model on a miss, ``off`` asks the model
    (or the deterministic backend) everything. ``start``: where to start
    reading each source partition (default: :func:`read_sim`'s, where the
    simulation's first recorded start says its events begin)."""
    import asyncio

    from processors.batch import BatchRuntime, derive, run, verdicts
    from streams.llm import make_llm
    from streams.llm.embedder import embedder_name
    from sinks.cassandra_store import CassandraStore
    from streams.kafka import BatchProducer, create_topics, make_producer
    from streams.topics import CONFLICTS, LLM_CALLS, REFLECTIONS, SCORED, VERDICTS, agent_key, sim_key

    if not namespace:
        raise MurmurError("replay needs a namespace: it never writes into the live topics and tables")
    if journal not in JOURNAL_MODES:
        raise MurmurError(f"--journal must be one of {', '.join(JOURNAL_MODES)}, not {journal!r}")
    ns = settings.model_copy(update={"namespace": namespace})
    read = read_sim(settings, sim_id, start=start, from_beginning=from_beginning)
    if not read.events:
        raise MurmurError(f"no events of simulation {sim_id!r} in the source topics ({read.read} records read, "
                          f"from {read.read_from})")
    book = None
    # Every call the replay makes (a journal's hits make none) becomes an
    # LlmCall record in the namespace, as a live worker's do: `eval compare`
    # then counts the replay's calls and tokens beside the live run's.
    calls: list[dict] = []
    if journal == "off":
        llm = make_llm(ns, on_call=calls.append)
    else:
        from streams.llm.journal import JournalLlm

        book = load_journal(settings, sim_id)
        llm = JournalLlm(book, ns, model_llm=make_llm(ns, on_call=calls.append) if journal == "fill" else None)
    rt = BatchRuntime(ns, llm, embedder_name(ns.llm))
    db = CassandraStore(ns)
    try:
        def make_namespace() -> None:
            create_topics(ns, namespace=namespace)
            db.apply_schema()

        # The namespace's topics and keyspace are made while the pass runs: a
        # keyspace's 13 schema changes took 1.3 s of a 4,000-event replay (about
        # as long as its pass), all of it waiting on Cassandra.
        with ThreadPoolExecutor(1, thread_name_prefix="replay-namespace") as pool:
            made = pool.submit(make_namespace)
            try:
                out = run(derive(rt, read.events, positions=read.positions))
                # The simulation's own question (its Simulation event) unless one is given.
                per_round = run(verdicts(rt, out, sim_id=sim_id, question=question or out.question))
            finally:
                made.result()  # waits for it; raises its error, if it failed
        serde = default_serde()
        producer = BatchProducer(make_producer(settings))
        for spec, records in ((SCORED, out.memories + out.reflection_memories), (REFLECTIONS, out.reflections),
                              (CONFLICTS, out.conflicts)):
            for r in records:
                producer.send(topic_name(spec, namespace), agent_key(r["sim_id"], r["agent_id"]), serde.encode(spec.value, r, topic=topic_name(spec, namespace)))
        for v in per_round:
            producer.send(topic_name(VERDICTS, namespace), sim_key(sim_id), serde.encode("Verdict", v, topic=topic_name(VERDICTS, namespace)))
        calls_topic = topic_name(LLM_CALLS, namespace)
        for c in calls:  # keyed by role, as the live runtime keys them
            producer.send(calls_topic, c["role"].encode(), serde.encode("LlmCall", c, topic=calls_topic))
        producer.flush_blocking()
        writes = (db.memory_writes(out.memories + out.reflection_memories) + db.reflection_writes(out.reflections)
                  + db.conflict_writes(out.conflicts) + db.verdict_writes(per_round)
                  + db.persona_writes(out.personas.values()))
        # Concurrently, hot tables in per-partition batches (as the sink
        # writes): one request per row, in turn, was most of a replay's time.
        # Chunks of the sink's size keep every request well inside its timeout.

        async def write_all() -> None:
            for i in range(0, len(writes), 4000):
                await db.execute_all(writes[i:i + 4000], sink="replay")

        asyncio.run(write_all())
    finally:
        db.close()
    return {"sim": sim_id, "namespace": namespace, "keyspace": db.keyspace, "records_read": read.read,
            "read_from": read.read_from,
            "journal": {"mode": journal, **book.summary()} if book else {"mode": journal},
            "events": len({r["event_id"] for _, r in read.events}), "memories": len(out.memories), "reflections": len(out.reflections),
            "conflicts": len(out.conflicts), "verdicts": len(per_round), "llm_calls": len(calls),
            "final": {k: per_round[-1][k] for k in ("round", "support_ratio", "direction", "confidence", "post_count",
                                                     "posts_unreadable", "coverage", "backend")} if per_round else None}
