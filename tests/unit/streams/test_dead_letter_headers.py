"""A processor's dead letter keeps the input's headers and the error's class
(what a redrive needs: the record goes back with its headers, the redrive
count among them, and contract failures are told from others). Faust's
in-memory test mode, no broker."""

from __future__ import annotations

import asyncio

from processors import agent as agent_stage
from streams.llm import DeterministicLlm
from streams.redrive import COUNT_HEADER, Filters, decide, redrive_count
from streams.topics import agent_key
from tests.unit.streams.test_batch_loop import no_question, post, runtime


async def feed_with_headers(agent, values) -> None:
    async with agent.test_context() as ctx:
        for key, value, headers in values:
            await ctx.put(value, key=key, headers=headers)
        await asyncio.sleep(0.6)
        if ctx._crash_reason is not None:
            raise ctx._crash_reason


def test_a_failed_input_is_dead_lettered_with_its_headers_and_error_class(tmp_path):
    app, rt, rec = runtime(tmp_path)

    class Broken(DeterministicLlm):
        async def embed(self, texts):
            raise RuntimeError("embedder bug")

    rt._llm = Broken(rt.settings)
    agent = agent_stage.register(app, rt, within=0.1, question=no_question)
    app.loop.run_until_complete(feed_with_headers(agent, [
        (agent_key("s", "a"), post("e1"), {"trace": b"t-1", COUNT_HEADER: b"2"}),
        (agent_key("s", "a"), b"\x00junk", {"trace": b"t-2"}),
    ]))
    dead = {d["error_type"]: d for d in rec.sent("ops.dead-letter.v1")}
    assert set(dead) == {"RuntimeError", "DecodeError"}
    failed = dead["RuntimeError"]
    assert {h["key"]: h["value"] for h in failed["headers"]} == {"trace": b"t-1", COUNT_HEADER: b"2"}
    assert redrive_count(failed) == 2 and failed["key"] == agent_key("s", "a")
    assert decide(failed, Filters(), limit=3) is None and "3 times" in decide({**failed, "headers": [
        {"key": COUNT_HEADER, "value": b"3"}]}, Filters(), limit=3)
    assert "contract" in decide(dead["DecodeError"], Filters(), limit=3)
    assert dead["DecodeError"]["headers"] == [{"key": "trace", "value": b"t-2"}]
