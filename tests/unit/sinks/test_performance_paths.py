"""The first performance pass kept behaviour: contradiction's numpy
similarities and quantising equal the pure-Python ones, and the Cassandra
sink's per-partition batches group only what may share a write timestamp.
Speed is measured by bench/ (B1, B5), never asserted here."""

from __future__ import annotations

import base64
import math
import random
from collections import namedtuple

import pytest
from cassandra.query import BatchType, PreparedStatement

from processors import contradiction as con
from sinks import cassandra_store as cs


def unit(rng: random.Random, dim: int = 384) -> list[float]:
    v = [rng.gauss(0, 1) for _ in range(dim)]
    n = math.sqrt(sum(x * x for x in v))
    return [x / n for x in v]


def old_quantise(vec: list[float]) -> str:
    return base64.b64encode(bytes((max(-127, min(127, round(v * 127))) & 0xFF) for v in vec)).decode()


def test_numpy_quantise_gives_the_same_bytes_as_python():
    rng = random.Random(1)
    vectors = [unit(rng) for _ in range(200)]
    vectors += [[round(x * 254) / 254 for x in unit(rng)] for _ in range(50)]  # exact .5 ties: half to even
    vectors += [[0.0] * 384, [1.0] + [0.0] * 383, [-1.0] * 4, [0.5 / 127, 1.5 / 127, -0.5 / 127, -2.5 / 127]]
    for v in vectors:
        assert con.quantise(v) == old_quantise(v)


def test_numpy_similarities_equal_python_cosine():
    rng = random.Random(2)
    for _ in range(50):
        window = [{"v": con.quantise(unit(rng))} for _ in range(32)]
        q = unit(rng)
        fast = con.similarities(window, q)
        slow = [con.cosine(q, con.dequantise(m["v"])) for m in window]
        assert fast == pytest.approx(slow, abs=1e-12)
    assert con.similarities([], unit(rng)) == []
    assert con.similarities([{"v": con.quantise([0.0] * 384)}], unit(rng)) == [0.0]


def test_neighbours_are_the_same_in_both_modes():
    rng = random.Random(3)
    base = unit(rng)
    state = con.empty_state()
    for i in range(40):  # more than the window: the window keeps the newest 32
        near = [b + 0.05 * x for b, x in zip(base, unit(rng))]
        con.remember(state, {"memory_id": f"m{i}", "ts": i, "content": f"text {i}", "embedding": near}, 32)
    fast = con.neighbours(state, base, threshold=0.3)
    slow = con.neighbours(state, base, threshold=0.3, mode="python")
    assert [m["id"] for _, m in fast] == [m["id"] for _, m in slow] and len(fast) == con.NEIGHBOURS
    assert [s for s, _ in fast] == pytest.approx([s for s, _ in slow], abs=1e-12)


Col = namedtuple("Col", "keyspace_name table_name name type")


def prepared(table: str, query: str, keys: list[int]) -> PreparedStatement:
    stmt = PreparedStatement.__new__(PreparedStatement)
    stmt.column_metadata = [Col("ks", table, "c", None)]
    stmt.routing_key_indexes = keys
    stmt.query_string = query
    return stmt


class FakeBatch:
    """Records what would be bound (binding needs a live session's types)."""

    def __init__(self, batch_type=None):
        self.batch_type = batch_type
        self.rows: list = []

    def add(self, stmt, params):
        self.rows.append((stmt, params))


@pytest.fixture(autouse=True)
def fake_batches(monkeypatch):
    monkeypatch.setattr(cs, "BatchStatement", FakeBatch)


def test_partition_batches_group_hot_inserts_by_partition_only():
    mem = prepared("memories_by_agent", "INSERT INTO ks.memories_by_agent (...) VALUES (...)", [0, 1])
    tl = prepared("timeline_by_sim", "INSERT INTO ks.timeline_by_sim (...) VALUES (...)", [0])
    verdict = prepared("verdicts_by_sim", "INSERT INTO ks.verdicts_by_sim (...) VALUES (...)", [0])
    sup = prepared("memories_by_agent", "UPDATE ks.memories_by_agent SET valid_to = ? ...", [2, 3])
    writes = [(mem, ("s", f"a{i % 3}", i, "x" * 10)) for i in range(40)]
    writes += [(tl, ("s", i, f"m{i}")) for i in range(20)]
    writes += [(verdict, ("s", 1, 0.5)), (verdict, ("s", 1, 0.6)), (sup, (1, "m2", "s", "a0"))]
    out = cs.partition_batches(writes, rows=16)
    singles = [(s, p) for s, p in out if not isinstance(s, FakeBatch)]
    batches = [s for s, _ in out if isinstance(s, FakeBatch)]
    # Re-emitted verdicts and the supersede update keep one request each, in order.
    assert singles == [(verdict, ("s", 1, 0.5)), (verdict, ("s", 1, 0.6)), (sup, (1, "m2", "s", "a0"))]
    # memories: 3 partitions of 14/13/13 rows -> 3 batches; timeline: 20 rows -> 16 + 4.
    sizes = sorted(len(b.rows) for b in batches)
    assert sizes == [4, 13, 13, 14, 16] and sum(sizes) == 60
    assert all(b.batch_type == BatchType.UNLOGGED for b in batches)
    for b in batches:  # one partition per batch
        assert len({(s.column_metadata[0].table_name, tuple(p[i] for i in s.routing_key_indexes))
                    for s, p in b.rows}) == 1


def test_partition_batches_stay_under_the_byte_budget():
    mem = prepared("memories_by_agent", "INSERT INTO ks.memories_by_agent (...) VALUES (...)", [0, 1])
    writes = [(mem, ("s", "a", i, "y" * 1500)) for i in range(10)]
    out = cs.partition_batches(writes, rows=16, max_bytes=4096)
    assert [len(b.rows) for b, _ in out] == [2, 2, 2, 2, 2]


def test_write_and_cosine_modes_are_settings(monkeypatch):
    from pydantic import ValidationError

    from streams.settings import Settings

    monkeypatch.setenv("MURMUR_CASSANDRA_WRITES", "fast")
    with pytest.raises(ValidationError, match="cassandra_writes"):
        Settings()
    monkeypatch.setenv("MURMUR_CASSANDRA_WRITES", "single")
    monkeypatch.setenv("MURMUR_CONTRADICTION_COSINE", "python")
    assert (Settings().cassandra_writes, Settings().contradiction_cosine) == ("single", "python")
