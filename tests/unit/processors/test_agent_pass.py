"""The agent pass (processors/agent.py) without Kafka: its outputs depend on
each agent's own events in order, not on how they are batched, and its state
survives the table's packing."""

from __future__ import annotations

import asyncio
from pathlib import Path

import pytest

from connectors import synthetic
from processors import agent
from processors.batch import BatchRuntime
from streams.llm import DeterministicLlm
from streams.runtime import Incoming
from streams.settings import Settings
from streams.state_codec import pack_state, unpack_state
from streams.topics import AGENT_LOG, CONFLICTS, REFLECTIONS, SCORED, STANCES, agent_key, sim_key
from tests.paths import ROOT

CASE = ROOT / "eval" / "cases" / "new_coke_1985"


async def no_question(_sim: str) -> str:
    return ""


def log_of(agents: int = 12, rounds: int = 8) -> dict[bytes, list[Incoming]]:
    run = synthetic.generate(CASE, sim_id="s", seed=4, agents=agents, rounds=rounds)
    groups: dict[bytes, list[Incoming]] = {}
    for i, e in enumerate(run.events):
        if e.type_name in ("Persona", "Post", "Observation"):
            key = agent_key("s", e.record["agent_id"])
            groups.setdefault(key, []).append(Incoming(e.type_name, e.record, AGENT_LOG.name, 0, i, key))
    return groups


def run_in_batches(groups: dict[bytes, list[Incoming]], size: int) -> tuple[dict, list]:
    """Every agent's events through the pass in batches of ``size`` events per
    agent, the state packed and unpacked between batches as the table does."""
    settings = Settings(reflection_every_rounds=2)
    one_pass = agent.AgentPass(BatchRuntime(settings, DeterministicLlm(settings)), no_question)
    stored: dict[bytes, bytes | None] = {k: None for k in groups}
    outputs = []
    longest = max(len(v) for v in groups.values())
    for start in range(0, longest, size):
        chunk = {k: v[start:start + size] for k, v in groups.items() if v[start:start + size]}
        states = {k: agent.load_state(stored[k]) for k in chunk}
        for key, state, derived in asyncio.run(one_pass.batch(states, chunk)):
            assert not isinstance(state, BaseException), state
            stored[key] = pack_state(state)
            outputs += derived.outputs()
    return stored, outputs


def test_outputs_do_not_depend_on_batch_boundaries():
    groups = log_of()
    whole_state, whole = run_in_batches(groups, 10_000)
    split_state, split = run_in_batches(groups, 3)
    kinds = {spec.name for spec, _, _ in whole}
    assert kinds == {SCORED.name, REFLECTIONS.name, STANCES.name} | ({CONFLICTS.name} & kinds)
    def per_agent(outs):  # one agent's outputs in order (agents interleave otherwise with batching)
        out: dict[str, list] = {}
        for spec, key, record in outs:
            out.setdefault(record["agent_id"], []).append((spec.name, key, record))
        return out

    assert per_agent(split) == per_agent(whole)
    assert split_state == whole_state


def test_steps_run_in_order_and_keys_follow_the_topics():
    groups = log_of(agents=3, rounds=6)
    _, outs = run_in_batches(groups, 10_000)
    for spec, key, record in outs:
        assert key == (sim_key("s") if spec is STANCES else agent_key("s", record["agent_id"]))
    # Each post's memory comes before the stance contribution it makes.
    seen_memories: set[str] = set()
    for spec, _, record in outs:
        if spec is SCORED:
            seen_memories.add(record["memory_id"])
        elif spec is STANCES and record["kind"] != "retract":
            assert record["memory_id"] in seen_memories


def test_packed_state_round_trips_and_refuses_other_formats():
    state = agent.empty_state()
    state["reflection"]["sum"] = 42
    packed = pack_state(state)
    assert unpack_state(packed) == state and len(packed) < len(repr(state))
    assert agent.load_state(None) == agent.empty_state()
    with pytest.raises(ValueError, match="unknown format"):
        unpack_state(b'{"reflection": {}}')
