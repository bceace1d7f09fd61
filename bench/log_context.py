"""What binding the log context costs the agent stage's hot path.

``python -m bench.log_context`` times, per event, binding ``sim`` and
``agent`` (structlog's contextvars, as processors/agent.py does) around a
do-nothing body, against the bare loop, for three ways of doing it: per
event with the ``bound_contextvars`` context manager, per event with
bind/unbind, and once per agent (what the agent pass does: an agent's
events go through one pass, in one task, so the context is bound once for
all of them). Then the agent pass itself over a synthetic simulation
(deterministic LLM), to put the figure beside what an event costs anyway.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import time

from streams.logs import bind_contextvars, bound_contextvars, unbind_contextvars


def _per_event_cm(items: list[tuple[str, str]]) -> None:
    for sim, agent in items:
        with bound_contextvars(sim=sim, agent=agent):
            pass


def _per_event_bind(items: list[tuple[str, str]]) -> None:
    for sim, agent in items:
        bind_contextvars(sim=sim, agent=agent)
        unbind_contextvars("sim", "agent")


def _per_agent(items: list[tuple[str, str]], events_per_agent: int) -> None:
    for start in range(0, len(items), events_per_agent):
        sim, agent = items[start]
        with bound_contextvars(sim=sim, agent=agent):
            for _ in items[start:start + events_per_agent]:
                pass


def _bare(items: list[tuple[str, str]]) -> None:
    for _ in items:
        pass


def best_ns_per_event(fn, items: list, repeats: int) -> float:
    best = float("inf")
    for _ in range(repeats):
        t0 = time.perf_counter_ns()
        fn(items)
        best = min(best, time.perf_counter_ns() - t0)
    return best / len(items)


def agent_pass_us_per_event(agents: int, rounds: int) -> float:
    """Wall time of the agent pass (processors/agent.py) per post and
    observation, deterministic LLM, one batch."""
    from processors import agent
    from processors.batch import BatchRuntime
    from streams.llm import DeterministicLlm
    from streams.runtime import Incoming
    from streams.settings import PROJECT_ROOT, Settings
    from streams.topics import AGENT_LOG, agent_key
    from connectors import synthetic

    run = synthetic.generate(PROJECT_ROOT / "eval" / "cases" / "new_coke_1985", sim_id="s", seed=4, agents=agents, rounds=rounds)
    groups: dict[bytes, list[Incoming]] = {}
    for i, e in enumerate(run.events):
        if e.type_name in ("Persona", "Post", "Observation"):
            key = agent_key("s", e.record["agent_id"])
            groups.setdefault(key, []).append(Incoming(e.type_name, e.record, AGENT_LOG.name, 0, i, key))
    events = sum(1 for items in groups.values() for i in items if i.type_name != "Persona")
    settings = Settings()

    async def no_question(_sim: str) -> str:
        return ""

    one_pass = agent.AgentPass(BatchRuntime(settings, DeterministicLlm(settings)), no_question)
    states = {k: agent.empty_state() for k in groups}
    t0 = time.perf_counter()
    asyncio.run(one_pass.batch(states, groups))
    return (time.perf_counter() - t0) * 1e6 / events


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--events-per-agent", type=int, default=8, help="events of one agent in one batch")
    parser.add_argument("--repeats", type=int, default=7)
    a = parser.parse_args()
    items = [("sim-0001", f"agent-{i // a.events_per_agent:05d}") for i in range(a.events)]
    bare = best_ns_per_event(_bare, items, a.repeats)
    out = {
        "per_event_bound_contextvars_ns": best_ns_per_event(_per_event_cm, items, a.repeats) - bare,
        "per_event_bind_unbind_ns": best_ns_per_event(_per_event_bind, items, a.repeats) - bare,
        "per_agent_ns_per_event": best_ns_per_event(lambda xs: _per_agent(xs, a.events_per_agent), items,
                                                    a.repeats) - bare,
        "events_per_agent": a.events_per_agent,
        "agent_pass_us_per_event": agent_pass_us_per_event(agents=200, rounds=6),
    }
    out = {k: round(v, 1) if isinstance(v, float) else v for k, v in out.items()}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
