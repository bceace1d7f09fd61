"""Property-based fuzzing of what crosses the edge: the publisher's parsers
and the processors' decoder. Nothing raises; every input is accounted for
(published, skipped or dead-lettered; processed or dead-lettered)."""

import json
import shutil
import sqlite3
from pathlib import Path
from types import SimpleNamespace

import pytest
from hypothesis import HealthCheck, example, given, settings, strategies as st

from connectors import jsonl, mirofish, oasis
from connectors.events import BadLine, OutEvent, Skipped
from connectors.sources import LineSource
from streams.runtime import Runtime
from streams.errors import DecodeError
from streams.serde import AvroSerde
from tests.fuzzing import examples
from tests.paths import SHARED

pytestmark = pytest.mark.fuzz
# 150 examples a test in CI; the fuzz profile's 10,000 in the long run (make fuzz).
FUZZ = settings(max_examples=examples(150), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])

json_scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                         st.text(max_size=50))
json_values = st.recursive(json_scalars, lambda c: st.lists(c, max_size=4) | st.dictionaries(st.text(max_size=10), c, max_size=4),
                           max_leaves=12)
action_like = st.fixed_dictionaries({}, optional={
    "round": json_values | st.integers(-5, 100), "timestamp": json_values | st.just("2026-03-02T08:00:05"),
    "agent_id": json_values | st.integers(0, 50), "agent_name": json_values,
    "action_type": st.sampled_from(["CREATE_POST", "LIKE_POST", "REPOST", "QUOTE_POST", "DO_NOTHING", "FOLLOW", "??"]) | json_values,
    "action_args": json_values | st.fixed_dictionaries({}, optional={"content": st.text(max_size=200), "post_id": json_values}),
    "event_type": st.sampled_from(["round_start", "round_end", "simulation_end", "nope"]),
})
weird_text = st.text(alphabet=st.characters(blacklist_categories=("Cs",)), max_size=300)


def line_bytes(obj) -> bytes:
    return obj if isinstance(obj, bytes) else json.dumps(obj, ensure_ascii=False).encode("utf-8", "surrogatepass")


@FUZZ
@given(st.lists(st.one_of(action_like, json_values, st.binary(max_size=200)), min_size=1, max_size=20))
def test_mirofish_parser_accounts_for_every_line(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("m") / "twitter" / "actions.jsonl"
    path.parent.mkdir()
    raw = [line_bytes(l).replace(b"\n", b" ").replace(b"\r", b" ") for l in lines]
    path.write_bytes(b"\n".join(raw) + b"\n")
    items = list(mirofish.parse_file(path, sim_id="fz"))
    non_blank = sum(1 for r in raw if r.strip())
    assert len(items) == non_blank
    serde = AvroSerde()
    for item in items:
        assert isinstance(item, (OutEvent, BadLine, Skipped))
        if isinstance(item, OutEvent):
            serde.encode(item.type_name, item.record)  # what it publishes is valid Avro
        if isinstance(item, BadLine):
            assert item.reason and item.source_ref.startswith(str(path))


@FUZZ
@given(st.lists(st.one_of(json_values, st.fixed_dictionaries({"type": st.sampled_from(["Post", "Observation", "Persona", "RoundMarker", "Verdict"])},
                                                                optional={"sim_id": json_values, "round": json_values, "ts": json_values,
                                                                          "agent_id": json_values, "content": weird_text, "action": json_values,
                                                                          "kind": json_values})), min_size=1, max_size=15))
def test_jsonl_parser_accounts_for_every_line(tmp_path_factory, lines):
    path = tmp_path_factory.mktemp("j") / "events.jsonl"
    raw = [line_bytes(l).replace(b"\n", b" ").replace(b"\r", b" ") for l in lines]
    path.write_bytes(b"\n".join(raw) + b"\n")
    items = list(jsonl.parse_file(path))
    assert len(items) == sum(1 for r in raw if r.strip())
    for item in items:
        if isinstance(item, OutEvent):
            AvroSerde().encode(item.type_name, item.record, check=True)


@FUZZ
@given(st.binary(max_size=400))
def test_decoder_raises_only_decode_error(data):
    try:
        AvroSerde().decode(data)
    except DecodeError:
        pass


@FUZZ
@given(st.integers(0, 300), st.binary(max_size=8))
def test_truncated_and_corrupted_records_are_decode_errors(cut, noise):
    serde = AvroSerde()
    good = serde.encode("Post", {"event_id": "e", "sim_id": "s", "round": 1, "ts": 5, "agent_id": "a", "action": "CREATE_POST",
                                 "content": "ü" * 200})
    for data in (good[:cut], good[:cut] + noise + good[cut:]):
        try:
            serde.decode(data, "Post")
        except DecodeError:
            pass


class FakeProducer:
    def __init__(self):
        self.sent = []

    def send(self, topic, key, value):
        self.sent.append((topic, key, value))


def fake_event(value, offset):
    return SimpleNamespace(value=value, key=b"k", message=SimpleNamespace(topic="sim.posts.v1", partition=0, offset=offset))


@FUZZ
@given(st.lists(st.one_of(st.binary(max_size=100), st.just(None), st.sampled_from(["good", "huge", "wrong", "range"])), max_size=30))
def test_processor_decoder_reconciles_counts(values):
    serde = AvroSerde()
    post = {"event_id": "e", "sim_id": "s", "round": 1, "ts": 5, "agent_id": "a", "action": "CREATE_POST", "content": "x"}
    samples = {
        "good": serde.encode("Post", post),
        "huge": serde.encode("Post", {**post, "content": "y" * (1 << 20)}),  # a 1 MiB post is still a post
        "wrong": serde.encode("Verdict", {"event_id": "v", "sim_id": "s", "round": 1, "ts": 1, "support_ratio": 0.0,
                                          "direction": "neutral", "magnitude": 0.0, "confidence": 0.0, "post_count": 0,
                                          "author_count": 0}),
        "range": serde.encode("Post", {**post, "round": -7}),
    }
    rt = Runtime.__new__(Runtime)
    rt.serde, rt.producer = serde, FakeProducer()
    events = [fake_event(samples.get(v, v) if isinstance(v, str) else v, i) for i, v in enumerate(values)]
    ok = rt.decode_events(events, expected=("Post", "Observation"), stage="fuzz")
    dead = [s for s in rt.producer.sent if s[0] == "ops.dead-letter.v1"]
    assert len(ok) + len(dead) == len(values)  # in = processed + dead-lettered
    assert len(ok) == sum(1 for v in values if v in ("good", "huge"))
    for _, _, value in dead:
        _, record = serde.decode(value, "DeadLetter")
        assert record["reason"] and record["stage"] == "fuzz"


# -- OASIS databases and growing logs ------------------------------------------------
OASIS_EMPTY = SHARED / "real-runs" / "oasis-empty" / "twitter_simulation.db"
oasis_actions = st.sampled_from(["create_post", "quote_post", "repost", "create_comment", "like_post", "follow", "refresh",
                                 "sign_up", "do_nothing", "interview", "teleport", "", "LIKE_COMMENT"])
oasis_info = st.one_of(
    st.dictionaries(st.sampled_from(["content", "post_id", "quoted_id", "new_post_id", "reposted_id", "comment_id",
                                     "follow_id", "query", "posts", "prompt", "name", "bio"]), json_values, max_size=5)
    .map(lambda d: json.dumps(d)),
    json_values.map(lambda v: json.dumps(v)), weird_text, st.none())
oasis_rows = st.tuples(st.one_of(st.integers(0, 5), st.none(), st.text(max_size=3)),
                       st.one_of(st.integers(0, 4), st.sampled_from(["2024-08-06 08:00:09.372620", "3", "soon", ""])),
                       oasis_actions, oasis_info)


@FUZZ
@given(st.lists(oasis_rows, min_size=1, max_size=25))
# A post_id beyond SQLite's 64-bit INTEGER raised OverflowError in the lookup
# (found by the 10,000-example run).
@example(rows=[(0, 0, "create_post", json.dumps({"post_id": 2**63}))])
def test_oasis_reader_accounts_for_every_trace_row(tmp_path_factory, rows):
    db = tmp_path_factory.mktemp("o") / "twitter_simulation.db"
    shutil.copy(OASIS_EMPTY, db)
    conn = sqlite3.connect(db)
    conn.execute("INSERT INTO post (post_id, user_id, content, created_at) VALUES (1, 0, 'seed', 0)")
    # trace's primary key collapses identical rows, as OASIS's does
    stored = sum(conn.execute("INSERT OR IGNORE INTO trace (user_id, created_at, action, info) VALUES (?, ?, ?, ?)",
                              r).rowcount for r in rows)
    conn.commit()
    conn.close()
    items = list(oasis.parse_db(db, sim_id="fz"))
    assert sum(1 for i in items if not (isinstance(i, OutEvent) and i.derived)) == stored
    serde = AvroSerde()
    for item in items:
        assert isinstance(item, (OutEvent, BadLine, Skipped))
        if isinstance(item, OutEvent):
            serde.encode(item.type_name, item.record, check=True)
        if isinstance(item, BadLine):
            assert item.reason and "trace rowid" in item.source_ref


@FUZZ
@given(st.lists(action_like, min_size=1, max_size=12), st.lists(st.integers(1, 400), max_size=8))
def test_a_log_read_while_it_grows_gives_what_it_gives_read_at_once(tmp_path_factory, lines, cuts):
    data = b"".join(line_bytes(l).replace(b"\n", b" ").replace(b"\r", b" ") + b"\n" for l in lines)
    folder = tmp_path_factory.mktemp("g")
    whole = folder / "whole" / "twitter" / "actions.jsonl"
    whole.parent.mkdir(parents=True)
    whole.write_bytes(data)
    once = list(mirofish.parse_file(whole, sim_id="g", platform="twitter"))
    growing = folder / "twitter" / "actions.jsonl"
    growing.parent.mkdir()
    growing.write_bytes(b"")
    src = LineSource(growing, name="t", sim_id="g", parser=mirofish.LineParser(sim_id="g", platform="twitter"))
    got, at = [], 0
    for cut in sorted(set(min(c, len(data)) for c in cuts)) + [len(data)]:
        with growing.open("ab") as fh:
            fh.write(data[at:cut])
        at = max(at, cut)
        got += src.poll(complete=False).items
    got += src.poll(complete=True).items

    def ids(items):
        return [(type(i).__name__, i.record["event_id"] if isinstance(i, OutEvent) else i.reason) for i in items]

    assert ids(got) == ids(once)
