"""What every benchmark shares: figures with min/median/max and a ratio to a
reference measured in the same run, workers in namespaces of their own,
publishing, waiting for a group to drain, and output-topic timings.

A figure is a dict:
    {"unit": "events/s", "min": .., "median": .., "max": .., "values": [..],
     "reference": "what it is compared with", "reference_value": .., "ratio": median / reference}
so a JSON file from a noisy machine still says how far each figure is from
its limit on that machine.
"""

from __future__ import annotations

import os
import platform
import shutil
import statistics
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from confluent_kafka import KafkaError, TopicPartition  # noqa: E402

from deploy import jvm  # noqa: E402
from deploy.pipeline import process_log, start_process, stop_process  # noqa: E402
from streams.topology import input_topics, resolve  # noqa: E402
from streams.app import group_id  # noqa: E402
from streams.kafka import create_topics, end_offsets, group_lag, make_consumer, start_group_at_end  # noqa: E402
from streams.settings import Settings  # noqa: E402

Log = Callable[[str], None]


class BenchError(RuntimeError): ...


# -- figures -------------------------------------------------------------------

def summary(values: Iterable[float], digits: int = 1) -> dict:
    vals = [float(v) for v in values]
    if not vals:
        raise BenchError("a figure needs at least one value")
    return {"min": round(min(vals), digits), "median": round(statistics.median(vals), digits),
            "max": round(max(vals), digits), "values": [round(v, digits) for v in vals]}


def figure(values: Iterable[float], *, unit: str, reference: str | None = None,
           reference_value: float | None = None, digits: int = 1, **extra) -> dict:
    """A measured figure; with a reference, its median as a ratio to it."""
    out = {"unit": unit, **summary(values, digits)}
    if reference is not None and reference_value:
        out.update(reference=reference, reference_value=round(reference_value, digits),
                   ratio=round(out["median"] / reference_value, 3))
    out.update(extra)
    return out


def percentile(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty list."""
    s = sorted(values)
    k = max(0, min(len(s) - 1, int(round(q / 100 * len(s) + 0.5)) - 1))
    return s[k]


# -- the run's context -----------------------------------------------------------

@dataclass
class Ctx:
    settings: Settings
    quick: bool
    repeats: int
    log: Log = print
    million: bool = False  # B6 also at 1M memories (--million: tens of minutes)
    started: float = field(default_factory=time.monotonic)
    workers: list[str] = field(default_factory=list)  # process names still running, for cleanup

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def machine(settings: Settings) -> dict:
    import cassandra
    import confluent_kafka
    import faust

    from sinks.cassandra_store import CassandraStore

    store = CassandraStore(settings)
    try:
        cassandra_release = store.ping()
    finally:
        store.close()
    return {
        "cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
        "kafka": settings.services.kafka_version, "cassandra": cassandra_release,
        "faust_streaming": faust.__version__, "confluent_kafka": confluent_kafka.version()[0],
        "librdkafka": confluent_kafka.libversion()[0], "cassandra_driver": cassandra.__version__,
        "loadavg_1m_at_start": round(os.getloadavg()[0], 2),
    }


# -- workers ---------------------------------------------------------------------

def new_ns(prefix: str) -> str:
    return f"{prefix}{uuid.uuid4().hex[:8]}"


def worker_env(ns: str, **extra: str) -> dict[str, str]:
    # Metrics off: two workers of one group must not race for one port.
    return {**os.environ, "MURMUR_NAMESPACE": ns, "MURMUR_METRICS_PORT": "0", **extra}


@dataclass
class Workers:
    settings: Settings  # namespaced
    processors: str
    group: str
    names: list[str]

    @property
    def group_id(self) -> str:
        return group_id(self.settings, self.group)

    @property
    def inputs(self) -> list[str]:
        return input_topics(self.settings, resolve(self.processors))


def start_workers(ctx: Ctx, processors: str, *, count: int = 1, ns: str | None = None, prefix: str = "bench",
                  env: dict[str, str] | None = None, at_end: bool = True,
                  before_start: Callable[[], None] | None = None) -> Workers:
    """``count`` worker processes of one group in a namespace of their own,
    their group committed at the current end of its inputs (so they see only
    what this benchmark publishes next, or in ``before_start``)."""
    ns = ns or new_ns(prefix)
    nss = ctx.settings.model_copy(update={"namespace": ns})
    create_topics(nss, namespace=ns)
    group = "bench"  # ends up in Faust's changelog topic names: keep it plain
    w = Workers(nss, processors, group, [])
    if at_end:
        start_group_at_end(nss, w.group_id, w.inputs)
    if before_start is not None:  # e.g. publish a backlog the workers then replay
        before_start()
    full_env = worker_env(ns, **(env or {}))
    for i in range(count):
        name = f"bench-{ns}-{i}"
        start_process(ctx.settings, name, ["worker", "--processors", processors, "--group", group], env=full_env)
        w.names.append(name)
        ctx.workers.append(name)
    return w


def stop_workers(ctx: Ctx, w: Workers) -> None:
    for name in w.names:
        stop_process(ctx.settings, name, timeout=20)
        if name in ctx.workers:
            ctx.workers.remove(name)
    # Faust leaves an (empty, memory:// store) data folder named after the app.
    shutil.rmtree(ROOT / f"{w.group_id}-data", ignore_errors=True)


def wait_members(settings: Settings, gid: str, count: int, *, timeout: float = 120.0) -> float:
    """Until the group has ``count`` members and is stable (partitions
    assigned): a benchmark's clock must not include joining the group."""
    from confluent_kafka import ConsumerGroupState

    from streams.kafka import admin

    client = admin(settings)

    def ok() -> bool:
        d = client.describe_consumer_groups([gid])[gid].result()
        return len(d.members) == count and d.state == ConsumerGroupState.STABLE

    took = wait_until(ok, timeout=timeout, what=f"{count} member(s) in group {gid}", every=0.3)
    time.sleep(1.0)  # Faust starts fetching a moment after the assignment
    return took


def check_alive(ctx: Ctx, w: Workers) -> None:
    run = ctx.settings.state_dir / "run"
    for name in w.names:
        pid = jvm.read_pid(run / f"{name}.pid")
        if pid is None or not jvm.alive(pid):
            raise BenchError(f"worker {name} died; its log:\n{process_log(ctx.settings, name, 40)}")


def wait_until(pred: Callable[[], bool], *, timeout: float, what: str, every: float = 0.2,
               alive: Callable[[], None] | None = None) -> float:
    t0 = time.monotonic()
    while True:
        try:
            if pred():
                return time.monotonic() - t0
        except BenchError:
            raise
        except Exception:  # a service catching up
            pass
        if alive is not None:
            alive()
        if time.monotonic() - t0 > timeout:
            raise BenchError(f"timed out after {timeout:.0f}s waiting for {what}")
        time.sleep(every)


def drained(w: Workers) -> bool:
    """Every input partition of the group committed up to its end."""
    lag = group_lag(w.settings, w.group_id, w.inputs)
    return bool(lag) and all(p.lag == 0 for p in lag)


def wait_drained(ctx: Ctx, w: Workers, *, timeout: float, streak: int = 2) -> float:
    """Lag 0 on every input, ``streak`` samples in a row (outputs of one
    processor are inputs of the next, so one zero can be between stages)."""
    seen = [0]

    def ok() -> bool:
        seen[0] = seen[0] + 1 if drained(w) else 0
        return seen[0] >= streak

    return wait_until(ok, timeout=timeout, what=f"group {w.group_id} to drain", every=0.5,
                      alive=lambda: check_alive(ctx, w))


# -- topics ----------------------------------------------------------------------

def topic_size(settings: Settings, topic: str) -> int:
    return sum(end_offsets(settings, [topic]).values())


def topic_timestamps(settings: Settings, topic: str, *, start: dict[tuple[str, int], int] | None = None,
                     keep: Callable[[bytes], bool] | None = None) -> list[int]:
    """Kafka timestamps (ms; CreateTime: when the producer made the record) of
    every record from ``start`` to the current end."""
    ends = end_offsets(settings, [topic])
    begin = start or {}
    todo = {tp: end for tp, end in ends.items() if end > begin.get(tp, 0)}
    out: list[int] = []
    if not todo:
        return out
    consumer = make_consumer(settings, **{"enable.partition.eof": False})
    try:
        consumer.assign([TopicPartition(t, p, begin.get((t, p), 0)) for (t, p) in todo])
        idle = 0
        while todo and idle < 20:
            msgs = consumer.consume(5000, 0.5)
            idle = idle + 1 if not msgs else 0
            for m in msgs:
                if m.error():
                    if m.error().code() != KafkaError._PARTITION_EOF:
                        raise BenchError(str(m.error()))
                    continue
                tp = (m.topic(), m.partition())
                if tp not in todo or m.offset() >= todo[tp]:
                    continue
                if keep is None or keep(m.value()):
                    out.append(m.timestamp()[1])
                if m.offset() + 1 >= todo[tp]:
                    del todo[tp]
    finally:
        consumer.close()
    return out


def rate_since(started: float, timestamps_ms: list[int], n: int | None = None) -> float:
    """Events per second of a backlog of n events published from ``started``
    (time.time()) until the last output (timestamps in ms). Outputs leave a
    processor a batch at a time, so the span between the first and the last
    output would miss the first batch."""
    if not timestamps_ms:
        raise BenchError("no outputs to take a rate from")
    return (n or len(timestamps_ms)) / max(max(timestamps_ms) / 1000 - started, 1e-3)


# -- inputs ------------------------------------------------------------------------

TEXTS = [
    "Nice weather today.",
    "I am absolutely furious that the council cut the hospital budget by 40%! This is a disgrace.",
    "The Riverside bike lane plan will make my commute safer. I support it!",
    "Has anyone read the traffic study behind the plan?",
    "Historic vote tonight: 12 million for new buses. I believe it will change the city.",
]
T0_MS = 1_700_000_000_000


def post_events(sim: str, n: int, *, agents: int = 200, per_round: int | None = None, first: int = 0) -> list:
    """n Posts of ``agents`` agents; ts 1 ms apart, so a range of ts is a range of posts."""
    from connectors.events import OutEvent
    from streams.topics import AGENT_LOG, agent_key

    per_round = per_round or agents
    out = []
    for i in range(first, first + n):
        agent = f"a{i % agents}"
        out.append(OutEvent(AGENT_LOG, agent_key(sim, agent), {
            "event_id": f"{sim}-{i}", "sim_id": sim, "round": i // per_round, "ts": T0_MS + i,
            "agent_id": agent, "agent_name": "", "platform": "bench", "action": "CREATE_POST",
            "content": f"{TEXTS[i % len(TEXTS)]} #{i}", "post_id": None, "parent_id": None, "source": "bench",
            "source_ref": "bench"}, type="Post"))
    return out


_publishers: dict[str, object] = {}


def publish(settings: Settings, events: list) -> float:
    """Publish ``events`` through one long-lived publisher per broker, as a
    running simulation feeds Murmur. A new idempotent producer holds its
    first records about 0.5 s until the broker has given it a producer id
    (librdkafka retries the id request every 500 ms until a broker
    connection is up); that start belongs to the publisher, not to the
    stage a benchmark times, so a benchmark's warm-up publish pays it."""
    from connectors.publisher import Publisher

    t0 = time.monotonic()
    publisher = _publishers.get(settings.kafka_bootstrap)
    if publisher is None:
        publisher = _publishers[settings.kafka_bootstrap] = Publisher(settings)
    publisher.publish(events)
    return time.monotonic() - t0


def cassandra_writetimes(settings: Settings, cql: str, params: tuple, *, extra: bool = False) -> list:
    """WRITETIME (µs, set by the driver when the sink executed the write) of
    the rows a query selects, as ms; with ``extra``, (writetime ms, second
    column as ms) pairs."""
    from sinks.cassandra_store import CassandraStore, _ms

    store = CassandraStore(settings)
    try:
        rows = store.connect().execute(cql.format(ks=store.keyspace), params, timeout=60)
        if extra:
            return [(r[0] // 1000, _ms(r[1])) for r in rows if r[0] is not None]
        return [r[0] // 1000 for r in rows if r[0] is not None]
    finally:
        store.close()


def delete_topics(settings: Settings, topics: list[str]) -> None:
    from streams.kafka import admin

    if topics:
        client = admin(settings)  # kept referenced: a collected client cancels its futures
        for f in client.delete_topics(topics, operation_timeout=30).values():
            try:
                f.result()
            except Exception:  # already gone
                pass
