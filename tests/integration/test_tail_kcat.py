"""``murmur tail`` against the real broker, as one reads a topic with kcat:
partitions, offsets (absolute, from the end, by time), key, headers and
Kafka timestamp in the output, raw values."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import uuid

import pytest

from connectors.tail import Start, TailFilter, tail
from streams.kafka import admin, ensure_topics, make_producer
from streams.serde import default_serde

pytestmark = pytest.mark.integration
T0 = 1_700_000_000_000


def post(i: int) -> bytes:
    serde = default_serde()
    record = {f["name"]: f.get("default") for f in serde.schema("Post")["fields"]}
    record.update(event_id=f"e{i}", sim_id="kcat", agent_id=f"a{i}", platform="reddit", round=i, ts=T0 + i,
                  action="CREATE_POST", content=f"post {i}", post_id=f"p{i}", source_ref=f"kcat:{i}")
    return serde.encode("Post", record)


@pytest.fixture(scope="module")
def topic(live):
    name = f"kcat-{uuid.uuid4().hex[:8]}"
    ensure_topics(live, {name: (2, {})})
    producer = make_producer(live)
    for i in range(10):  # 5 a partition; record i at Kafka time T0 + i s
        producer.produce(name, value=post(i), key=f"kcat/{i}".encode(), partition=i % 2,
                         headers=[("n", str(i).encode())], timestamp=T0 + i * 1000)
    assert producer.flush(30) == 0
    yield name
    client = admin(live)
    for f in client.delete_topics([name], operation_timeout=30).values():
        f.result()


def read(live, topic, **kw) -> list[dict]:
    out = io.StringIO()
    tail(live, [topic], filt=TailFilter(), follow=False, max_events=kw.pop("max_events", None), fmt="json", out=out,
         **kw)
    return [json.loads(line) for line in out.getvalue().splitlines()]


def test_partition_and_absolute_offset(live, topic):
    rows = read(live, topic, partitions=[1], start=Start("offset", 2))
    assert [(r["_partition"], r["_offset"], r["round"]) for r in rows] == [(1, 2, 5), (1, 3, 7), (1, 4, 9)]


def test_from_the_end_of_each_partition(live, topic):
    rows = read(live, topic, start=Start("from_end", 2))
    assert sorted(r["round"] for r in rows) == [6, 7, 8, 9]


def test_from_a_time_and_what_each_record_carries(live, topic):
    rows = read(live, topic, start=Start("time", T0 + 7_000))
    assert sorted(r["round"] for r in rows) == [7, 8, 9]
    r = next(r for r in rows if r["round"] == 8)
    assert r["_key"] == "kcat/8" and r["_headers"] == {"n": "8"} and r["_timestamp"] == T0 + 8_000
    assert r["type"] == "Post" and r["_topic"] == topic


def test_the_cli_prints_raw_values_and_counts(live, topic):
    raw = subprocess.run([sys.executable, "-m", "streams.cli", "tail", topic, "-p", "0", "-o", "beginning", "-c", "2",
                          "--format", "raw"], capture_output=True, timeout=120, check=True).stdout
    assert raw.split(b"\n")[:2] == [post(0), post(2)]
    wrong = subprocess.run([sys.executable, "-m", "streams.cli", "tail", topic, "-p", "7"], capture_output=True,
                           text=True, timeout=120)
    assert wrong.returncode == 1 and "not [7]" in wrong.stderr and "Traceback" not in wrong.stderr
