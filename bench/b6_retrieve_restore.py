"""B6: retrieval and context by vector engine and collection size, and
checkpoint restore time.

Retrieval and context: ``bench/b6_engines.py`` (Qdrant Edge in-process, the
default; a Qdrant server on loopback; qdrant-client's local mode at 10k; at
10k, 100k and, in a full run, 1M memories; recall and latency against exact
search in the same run).

Restore: ``streams.checkpoints.restore`` of a checkpoint whose table
changelogs hold N records, modelled as one state write of ~1 KiB per event
spread over the four tables (per-agent state keyed by 1,000 agents; the
verdict's applied-ids table one key per record). Measured at 100k and 300k
records (quick: 30k); 1M is extrapolated linearly from those two and labelled
so. Reference: the time to read the same changelogs once with a plain
consumer (restore reads them, then rewrites the compacted keys).
"""

from __future__ import annotations

import time

from bench.common import Ctx, delete_topics, figure, new_ns, topic_timestamps

NAME = "B6"
TITLE = "retrieve and context latency by engine and collection size; checkpoint restore time by changelog size"
AGENTS = 1_000


def restore_time(ctx: Ctx, records: int) -> tuple[float, float]:
    """(restore seconds, plain read seconds) for changelogs of ``records`` records."""
    from streams import checkpoints as ck
    from streams.topology import changelog_topics, resolve
    from streams.kafka import BatchProducer, ensure_topics, make_producer
    from streams.topics import changelog_config

    ns = new_ns("b6ck")
    nss = ctx.settings.model_copy(update={"namespace": ns})
    logs = changelog_topics(nss, "bench", resolve("all"))
    ensure_topics(nss, {t: (nss.topic_partitions, changelog_config()) for t in logs.values()})
    producer = BatchProducer(make_producer(nss))
    tables = sorted(logs)
    pad = "x" * 900
    for i in range(records):
        table = tables[i % len(tables)]
        key = f"b6/rec-{i}" if table == "verdict-applied" else f"b6/agent-{i % AGENTS:04d}"
        producer.send(logs[table], key.encode(), f'{{"n": {i}, "state": "{pad}"}}'.encode())
    producer.flush_blocking()
    try:
        t0 = time.perf_counter()
        for t in logs.values():
            topic_timestamps(nss, t)  # one plain read of everything restore will read
        read_s = time.perf_counter() - t0
        record = ck.create(nss, processors="all", group="bench", note="bench B6")
        ck.save(nss, record)
        t0 = time.perf_counter()
        ck.restore(nss, record["event_id"])
        return time.perf_counter() - t0, read_s
    finally:
        delete_topics(nss, list(logs.values()))


def run(ctx: Ctx) -> dict:
    from bench import b6_engines

    figures, engines = b6_engines.figures(ctx)
    points = (30_000,) if ctx.quick else (100_000, 300_000)
    restore: dict[int, list[float]] = {}
    read: dict[int, list[float]] = {}
    for n in points:
        for _ in range(1):  # one each: a restore at 300k takes minutes here
            r, p = restore_time(ctx, n)
            restore.setdefault(n, []).append(r)
            read.setdefault(n, []).append(p)
            ctx.log(f"  B6 restore, {n:,} changelog records: {r:.1f} s (plain read {p:.1f} s)")
    for n in points:
        figures[f"restore_{n // 1000}k_s"] = figure(restore[n], unit="s", digits=2,
                                                   reference="plain read of the same changelogs",
                                                   reference_value=sorted(read[n])[len(read[n]) // 2])
    if len(points) == 2:
        (a, b) = points
        ra, rb = (sorted(restore[x])[len(restore[x]) // 2] for x in points)
        slope = (rb - ra) / (b - a)
        if slope > 0:  # a larger restore measured faster (noise, a warm broker) extrapolates to nonsense
            est = rb + slope * (1_000_000 - b)
            figures["restore_1M_s_EXTRAPOLATED"] = figure([est], unit="s", digits=1,
                                                          note=f"linear from {a:,} and {b:,} records; not measured")
        else:
            ctx.log(f"  B6 restore: {b:,} records took no longer than {a:,}; 1M not extrapolated")
    return {"title": TITLE, "settings": {**engines, "top_k": 10, "restore_records": list(points),
                                         "restore_model": "one ~1 KiB state write per event over 4 tables"},
            "figures": figures}
