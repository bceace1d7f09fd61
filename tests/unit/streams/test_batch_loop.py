"""The one batch loop (streams/runtime.py) in Faust's in-memory test mode, no
broker: a stage's agent decodes, decides, produces and flushes its outputs
and dead letters, and only then writes its table state. The same loop runs
against the real broker in every integration test (tests/integration/
test_faults.py kills workers between these steps)."""

from __future__ import annotations

import asyncio

from processors import agent as agent_stage
from processors import contradiction as con
from streams.app import create_app
from streams.llm import DeterministicLlm
from streams.runtime import Effects, Runtime, register_batches
from streams.serde import AvroSerde
from streams.settings import Settings
from streams.topics import POSTS, agent_key

SERDE = AvroSerde()


class Recorder:
    """The runtime's producer, in memory: what was sent, and when it flushed."""

    def __init__(self) -> None:
        self.log: list[tuple] = []

    def send(self, topic, key, value, partition=None) -> None:
        self.log.append(("send", topic, key, value, partition))

    async def flush(self) -> None:
        self.log.append(("flush",))

    def sent(self, topic_suffix: str) -> list[dict]:
        return [SERDE.decode(e[3])[1] for e in self.log if e[0] == "send" and e[1].endswith(topic_suffix)]


def runtime(tmp_path) -> tuple:
    settings = Settings(kafka_bootstrap="127.0.0.1:9", topic_partitions=1, state_dir=tmp_path)
    app = create_app(settings, "loop-test")
    rec = Recorder()
    rt = Runtime(settings, producer=rec)
    rt._llm = DeterministicLlm(settings)
    write_state = rt.write_state

    def logged_write(table, key, value, carrier):  # state writes, in order with sends and flushes
        rec.log.append(("state", key))
        return write_state(table, key, value, carrier)

    rt.write_state = logged_write
    return app, rt, rec


def post(event_id: str, agent: str = "a", content: str = "The plan is a disaster, I oppose it") -> bytes:
    return SERDE.encode("Post", {"event_id": event_id, "sim_id": "s", "round": 1, "ts": 5, "agent_id": agent,
                                 "action": "CREATE_POST", "content": content})


async def no_question(_sim: str) -> str:  # no broker, so no simulations topic to read questions from
    return ""


async def feed(agent, values: list[tuple[bytes, bytes]]) -> None:
    async with agent.test_context() as ctx:
        for key, value in values:
            await ctx.put(value, key=key)
        await asyncio.sleep(0.6)  # take_events: within=0.25
        if ctx._crash_reason is not None:  # the agent crashed: the test fails with its error
            raise ctx._crash_reason


def test_the_agent_pass_scores_an_event_id_once(tmp_path):
    app, rt, rec = runtime(tmp_path)
    agent = agent_stage.register(app, rt, within=0.1, question=no_question)
    app.loop.run_until_complete(feed(agent, [(agent_key("s", "a"), post("e1")), (agent_key("s", "a"), b"\x00junk"),
                                             (agent_key("s", "b"), post("e2", "b")), (agent_key("s", "a"), post("e1"))]))
    scored = rec.sent("memory.scored.v1")
    assert sorted(m["memory_id"] for m in scored) == ["e1", "e2"]  # e1 once: the copy in the batch is skipped
    assert len(rec.sent("ops.dead-letter.v1")) == 1
    assert sorted(s["memory_id"] for s in rec.sent("sim.stances.v1")) == ["e1", "e2"]  # the pass's last step
    # e1 again, in a later batch: already scored, no call, no output
    before = len(rec.sent("memory.scored.v1"))
    app.loop.run_until_complete(feed(agent, [(agent_key("s", "a"), post("e1"))]))
    assert len(rec.sent("memory.scored.v1")) == before


def test_a_failing_handler_dead_letters_its_batch_and_writes_no_state(tmp_path):
    app, rt, rec = runtime(tmp_path)

    class Broken(DeterministicLlm):
        async def embed(self, texts):
            raise RuntimeError("embedder bug")

    rt._llm = Broken(rt.settings)
    agent = agent_stage.register(app, rt, within=0.1, question=no_question)
    app.loop.run_until_complete(feed(agent, [(agent_key("s", "a"), post("e1")), (agent_key("s", "b"), post("e2", "b"))]))
    dead = rec.sent("ops.dead-letter.v1")
    assert len(dead) == 2 and all("RuntimeError: embedder bug" in d["reason"] for d in dead)
    assert rec.sent("memory.scored.v1") == [] and not any(e[0] == "state" for e in rec.log)


def test_one_failing_agent_does_not_stop_the_others(tmp_path, monkeypatch):
    app, rt, rec = runtime(tmp_path)
    candidates = con.Window.candidates

    def poisoned(self, state, memory):
        if memory["agent_id"] == "bad":
            raise ValueError("poison")
        return candidates(self, state, memory)

    monkeypatch.setattr(con.Window, "candidates", poisoned)
    agent = agent_stage.register(app, rt, within=0.1, question=no_question)
    app.loop.run_until_complete(feed(agent, [(agent_key("s", "good"), post("g1", "good")),
                                             (agent_key("s", "bad"), post("b1", "bad")),
                                             (agent_key("s", "good"), post("g2", "good"))]))
    assert [m["memory_id"] for m in rec.sent("memory.scored.v1")] == ["g1", "g2"]  # one agent's events in order
    assert [d["reason"] for d in rec.sent("ops.dead-letter.v1")] == ["ValueError: poison"]
    assert [e[1] for e in rec.log if e[0] == "state"] == [agent_key("s", "good")]  # the bad agent keeps its state


def test_outputs_and_dead_letters_are_flushed_before_state_and_after_flush_effects(tmp_path):
    app, rt, rec = runtime(tmp_path)
    table = app.Table("order-test", default=None, key_type=bytes)

    async def handle(batch):
        return Effects(outputs=[(POSTS, b"k", {**batch[0].record, "event_id": "out"})],
                       state=[(table, b"k", 1, batch[0])], after_flush=[lambda: rec.log.append(("after_flush",))])

    agent = register_batches(app, rt, stage="order-stage", inputs=(POSTS,), expected=("Post",), handle=handle,
                             within=0.1)
    app.loop.run_until_complete(feed(agent, [(agent_key("s", "a"), post("e1"))]))
    assert [e[0] for e in rec.log] == ["send", "flush", "after_flush", "state"]  # outputs on Kafka, then the rest


def test_an_unreadable_agent_state_dead_letters_that_agent_only(tmp_path, monkeypatch):
    app, rt, rec = runtime(tmp_path)
    bad_key = agent_key("s", "bad")
    agent = agent_stage.register(app, rt, within=0.1, question=no_question)
    table = app.tables["agent-state"]
    original_get = type(table).get
    # The bad agent's stored value is not a packed state (written by something else).
    monkeypatch.setattr(type(table), "get", lambda self, key, default=None: b"corrupt" if key == bad_key
                        else original_get(self, key, default))
    app.loop.run_until_complete(feed(agent, [(agent_key("s", "good"), post("g1", "good")), (bad_key, post("b1", "bad"))]))
    assert [m["memory_id"] for m in rec.sent("memory.scored.v1")] == ["g1"]
    (dead,) = rec.sent("ops.dead-letter.v1")
    assert "unknown format" in dead["reason"] and dead["stage"] == "agent"
    assert [e[1] for e in rec.log if e[0] == "state"] == [agent_key("s", "good")]


def test_agent_state_goes_to_its_changelog_partition_after_the_outputs_and_before_the_ack(tmp_path):
    app, rt, rec = runtime(tmp_path)
    agent = agent_stage.register(app, rt, within=0.1, question=no_question)
    table = app.tables["agent-state"]
    app.loop.run_until_complete(feed(agent, [(agent_key("s", "a"), post("e1"))]))
    changelog = table.changelog_topic.get_topic_name()
    steps = [e[0] if e[0] != "send" else ("changelog" if e[1] == changelog else "send") for e in rec.log]
    # outputs, their flush, then the state record on Kafka before the inputs are acked
    assert steps[-3:] == ["state", "changelog", "flush"] and "send" in steps[:steps.index("state")]
    (record,) = [e for e in rec.log if e[0] == "send" and e[1] == changelog]
    assert record[2] == agent_key("s", "a") and record[4] == 0  # the input's partition
    assert agent_stage.load_state(table.data[agent_key("s", "a")])["contradiction"]["window"][0]["id"] == "e1"


def test_a_batch_that_fails_after_its_handler_crashes_the_overlapped_agent(tmp_path):
    app, rt, rec = runtime(tmp_path)

    async def failing_flush():
        raise RuntimeError("Kafka kept the records")

    rec.flush = failing_flush
    agent = agent_stage.register(app, rt, within=0.1, question=no_question, in_flight=2)
    try:
        app.loop.run_until_complete(feed(agent, [(agent_key("s", "a"), post("e1"))]))
    except RuntimeError as exc:
        assert "Kafka kept the records" in str(exc)
    else:
        raise AssertionError("the agent did not crash")
