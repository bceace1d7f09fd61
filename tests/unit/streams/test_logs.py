"""Logs (streams/logs.py): one JSON object a line with timestamp, level,
logger and event, the libraries' lines too, and the processor, simulation
and agent on the lines logged while an agent's events are processed."""

from __future__ import annotations

import io
import json
import logging

import pytest

from processors import agent as agent_stage
from streams import logs
from streams.llm import DeterministicLlm
from streams.topics import agent_key
from tests.unit.streams.test_batch_loop import feed, no_question, post, runtime

KEYS = {"timestamp", "level", "logger", "event"}


@pytest.fixture
def captured():
    """The process's logging set up as a worker's, writing to a buffer; the
    root and Murmur's levels put back afterwards."""
    root = logging.getLogger()
    before = root.level, {n: logging.getLogger(n).level for n in logs.OWN}
    buf = io.StringIO()
    handler = logs.configure(fmt="json", level="info", others="warning", stream=buf)
    yield buf
    root.removeHandler(handler)
    root.setLevel(before[0])
    for name, level in before[1].items():
        logging.getLogger(name).setLevel(level)


def lines(buf: io.StringIO) -> list[dict]:
    out = [json.loads(line) for line in buf.getvalue().splitlines()]  # raises on a line that is not JSON
    for row in out:
        assert KEYS <= row.keys(), row
    return out


def test_every_line_is_one_json_object_with_the_standard_keys(captured):
    logging.getLogger("streams.anything").info("own line %d", 1, extra={"rows": 3})
    logging.getLogger("aiokafka.consumer").info("a library's info: below its level")
    logging.getLogger("aiokafka.consumer").warning("a library's warning")
    try:
        raise RuntimeError("bad")
    except RuntimeError:
        logging.getLogger("faust.worker").exception("failed")
    rows = lines(captured)
    assert [r["event"] for r in rows] == ["own line 1", "a library's warning", "failed"]
    assert rows[0]["level"] == "info" and rows[0]["logger"] == "streams.anything" and rows[0]["rows"] == 3
    assert rows[2]["level"] == "error" and "RuntimeError: bad" in rows[2]["exception"]  # the traceback in one field


def test_bound_context_is_on_every_line_until_it_ends(captured):
    with logs.bound_contextvars(processor="verdict", sim="s1"):
        logging.getLogger("cassandra.cluster").warning("driver line")
    logging.getLogger("streams.x").warning("after")
    during, after = lines(captured)
    assert (during["processor"], during["sim"]) == ("verdict", "s1")
    assert "processor" not in after and "sim" not in after


class LoggingLlm(DeterministicLlm):
    """The deterministic backend, logging each call as a client would log a
    failed one: the line must say whose event it was."""

    async def complete_json(self, role, prompt, **kw):
        logging.getLogger("streams.llm.test").warning("call %s", prompt.task)
        return await super().complete_json(role, prompt, **kw)


def test_lines_logged_during_an_agents_pass_name_the_processor_sim_and_agent(captured, tmp_path):
    app, rt, _rec = runtime(tmp_path)
    rt._llm = LoggingLlm(rt.settings)
    stage = agent_stage.register(app, rt, within=0.1, question=no_question)
    app.loop.run_until_complete(feed(stage, [(agent_key("s", "a"), post("e1")), (agent_key("s", "b"), post("e2", "b")),
                                             (agent_key("s", "a"), b"\x00junk")]))
    rows = lines(captured)
    calls = [r for r in rows if r["logger"] == "streams.llm.test"]
    assert sorted(r["agent"] for r in calls) == ["a", "b"]  # one memory call per post, each in its agent's context
    assert all(r["processor"] == "agent" and r["sim"] == "s" for r in calls)
    junk = [r for r in rows if r["event"].startswith("undecodable input dead-lettered")]
    assert len(junk) == 1 and junk[0]["processor"] == "agent" and junk[0]["topic"].endswith("agent-log.v1")


def test_auto_is_json_off_a_terminal_and_console_on_one():
    class Tty(io.StringIO):
        def isatty(self) -> bool:
            return True

    assert logs.wants_json("auto", io.StringIO()) and not logs.wants_json("auto", Tty())
    assert logs.wants_json("json", Tty()) and not logs.wants_json("console", io.StringIO())


def test_an_unknown_level_is_refused_before_anything_changes():
    handlers = list(logging.getLogger().handlers)
    with pytest.raises(ValueError, match="debug, info, warning, error"):
        logs.configure(fmt="json", level="loud", stream=io.StringIO())
    assert logging.getLogger().handlers == handlers
