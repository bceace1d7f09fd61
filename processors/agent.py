"""agent: everything that happens to one agent, in one pass, in the order
it happened.

The agent log (``AGENT_LOG``, keyed ``sim_id/agent_id``) holds an
agent's persona, posts and observations in the order its simulation
produced them, on one partition. This stage reads it and, per agent, event
by event:

  1. importance and contradiction: the event becomes a ScoredMemory (its
     embedding: stateless, so every new event of the batch is embedded at
     once first), and one LLM call (``processors/memory_call.py``) rates it,
     judges it against its nearest memories in the agent's recent window
     and, on a model backend, reads a post's stance valence;
  3. reflection: the memory counted toward the agent's next reflection; a
     reflection due is written and embedded, and its beliefs are read in one
     call (valence and contradictions) too;
  4. stance: the post's (and reflection's) contribution to the verdict, and
     the retractions its conflicts cause.

Each step's decisions are the pure functions of its own module
(``importance``, ``contradiction``, ``reflection``, ``stance``, and the
one call they share, ``memory_call``); this module
fixes the order they run in. Because every input of one agent comes from one
partition in log order, and nothing here depends on how events are batched
or on other agents, a live run, a second live run and a replay of the log
(``processors/batch.py`` runs this same pass over a plain consumer's events)
give the same outputs to the byte. The verdict then meets the agents'
contributions keyed by simulation (``processors/verdict.py``), whose result
does not depend on their arrival order.

State per agent (one Faust table): the three steps' states side by side,
bounded (each keeps a fixed window), packed as zstd-compressed JSON.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Awaitable, Callable, Mapping

import faust

from processors import contradiction as con
from processors import importance as imp
from processors import memory_call as mc
from processors import reflection as ref
from processors import stance
from processors.questions import Questions
from processors.stance_model import load_language_model
from streams import logs
from streams.llm.fanout import together
from streams.metrics import IMPORTANCE_REPEATS
from streams.overlap import EarlierBatchFailed, turn
from streams.runtime import Effects, Incoming, Output, Runtime, by_agent, register_batches
from streams.state_codec import Unpacked, pack_state, unpack_state
from streams.topics import CONFLICTS, REFLECTIONS, SCORED, STANCES, TopicSpec, agent_key, sim_key
from streams.topology import stage
from streams.vectors import pack_rows

STAGE = "agent"
INPUTS, TABLES = stage(STAGE).inputs, stage(STAGE).tables  # declared in streams/topology.py
EXPECTED = ("Persona", "Post", "Observation")


def empty_state() -> dict:
    return {"reflection": ref.empty_state(), "contradiction": con.empty_state(), "stance": stance.empty_state()}


def load_state(raw: bytes | None) -> dict:
    """An agent's state from its table value (:mod:`streams.state_codec`)."""
    stored = unpack_state(raw) or {}
    return {"reflection": ref.load_state(stored.get("reflection")),
            "contradiction": con.load_state(stored.get("contradiction")),
            "stance": stance.load_state(stored.get("stance"))}


@dataclass
class Derived:
    """What one agent's events produced, in the order produced."""

    events: list[tuple[TopicSpec, dict]] = field(default_factory=list)
    stance_inputs: list[Incoming] = field(default_factory=list)  # what the stance step read, in order

    def of(self, spec: TopicSpec) -> list[dict]:
        return [r for s, r in self.events if s is spec]

    def outputs(self) -> list[Output]:
        return [(s, sim_key(r["sim_id"]) if s is STANCES else agent_key(r["sim_id"], r["agent_id"]), r)
                for s, r in self.events]


StateOf = Callable[[bytes, list[Incoming]], Awaitable[dict]]


def derived_input(record: dict, origin: Incoming, type_name: str = "ScoredMemory") -> Incoming:
    """A derived record as the next step's input; its provenance is the log
    event it came from."""
    return Incoming(type_name, record, origin.topic, origin.partition, origin.offset, origin.key, origin.event)


class AgentPass:
    """The one pass. ``run_stance=False`` leaves the stance step to the
    caller, which gets the inputs it would have read (the batch path runs it
    later, once per ablation, with these same inputs)."""

    def __init__(self, rt, question: stance.Question, *, run_stance: bool = True) -> None:
        self.rt = rt
        self.question = question
        self.run_stance = run_stance
        self.reflector = ref.Reflector(rt, rt.settings)
        self.window = con.Window(rt.settings)

    async def embed(self, items: list[Incoming]) -> tuple[dict[int, bytes | None], str]:
        """Embeddings of every post and observation given (stateless: one
        call), packed (``streams/vectors.py``) once for the records that carry
        them, by the input's identity, and the embedder's name."""
        todo = [i for i in items if i.type_name in ("Post", "Observation")]
        vectors = await imp.embed(self.rt, [i.record["content"] for i in todo]) if todo else None
        packed = pack_rows(vectors) if vectors else [None] * len(todo)
        return {id(i): packed[n] for n, i in enumerate(todo)}, (self.rt.embedder_name if vectors else "")

    async def agent(self, state: dict, items: list[Incoming], vectors: dict[int, bytes | None],
                    embedder: str) -> tuple[dict, Derived]:
        """One agent's events in log order -> its new state and what it produced."""
        out = Derived()
        for inc in items:
            if inc.type_name == "Persona":
                await self._stance(state, [inc], out)
                continue
            if id(inc) not in vectors:
                continue  # scored before (a re-sent event): its outputs are downstream already
            r = inc.record
            # The deterministic backend's valence is not used (the offline
            # stance model reads posts), so it does not wait for the question.
            question = await self.question(r["sim_id"]) if mc.reads_stance(self.rt) else ""
            near = self.window.candidates(state["contradiction"], imp.window_draft(inc, vectors[id(inc)]))
            # One call: importance, the post's valence and its contradictions.
            reply = await mc.ask(self.rt, [mc.Statement(imp.kind_of(r["action"]), r["content"], [o["t"] for _, o in near])],
                                 question, sim_id=r["sim_id"], round_=r["round"])
            memory = imp.memory_of(self.rt, inc, reply, embedding=vectors[id(inc)], embedder=embedder)
            m = derived_input(memory, inc)
            out.events.append((SCORED, memory))
            conflicts = con.conflicts_of(memory, near, reply.answers[0].contradicts, reply.backend, inc) \
                if reply.answers else []
            out.events += [(CONFLICTS, c) for c in conflicts]
            _, reflections, thoughts = await self.reflector.agent_events(state["reflection"], [m])
            second = await self._thoughts(state, thoughts, question, inc) if thoughts else []
            out.events += [(REFLECTIONS, r) for r in reflections] + [(SCORED, t) for t in thoughts]
            out.events += [(CONFLICTS, c) for c in second]
            thought_inputs = [derived_input(t, inc) for t in thoughts]
            await self._stance(state, [m] + [derived_input(c, inc, "Conflict") for c in conflicts] + thought_inputs
                               + [derived_input(c, inc, "Conflict") for c in second], out)
        return state, out

    async def _thoughts(self, state: dict, thoughts: list[dict], question: str, inc: Incoming) -> list[dict]:
        """The beliefs of one reflection, read in one call: their valence
        (set on them, on a model backend) and the earlier memories they
        contradict. Each is remembered before the next one's candidates are
        chosen, as if they had come one by one."""
        nears = [self.window.candidates(state["contradiction"], t) for t in thoughts]
        reply = await mc.ask(self.rt, [mc.Statement("reflection", t["content"], [o["t"] for _, o in near])
                                       for t, near in zip(thoughts, nears)],
                             question, sim_id=thoughts[0]["sim_id"], round_=thoughts[0]["round"])
        if reply.answers is None:
            return []  # counted by the client; no verdict means no edge, and stance reads them itself
        conflicts = []
        for t, near, answer in zip(thoughts, nears, reply.answers):
            if mc.reads_stance(self.rt):
                t["valence"] = answer.valence
            conflicts += con.conflicts_of(t, near, answer.contradicts, reply.backend, inc)
        return conflicts

    async def _stance(self, state: dict, inputs: list[Incoming], out: Derived) -> None:
        inputs = [i for i in inputs if stance.counts(i)]
        out.stance_inputs += inputs
        if self.run_stance and inputs:
            _, events = await stance.agent_events(self.rt, state["stance"], inputs, self.question)
            out.events += [(STANCES, e) for e in events]

    async def batch(self, states: Mapping[bytes, dict] | StateOf, groups: dict[bytes, list[Incoming]]
                    ) -> list[tuple[bytes, dict | BaseException, Derived | None]]:
        """Many agents: embeddings for all at once, then each agent's pass
        (agents concurrently, their LLM calls overlap). ``states``: by key,
        or ``state_of(key, items)``, which gives an agent's state when its
        pass may start (an overlapped batch waits there for an earlier one,
        ``streams/overlap.py``)."""
        vectors, embedder = await self.embed([i for items in groups.values() for i in items])

        async def one(key: bytes, items: list[Incoming]) -> tuple[dict, Derived]:
            # What is logged during an agent's pass names it. Bound once an
            # agent, not once an event (bench/log_context.py: 4.5 us a bind
            # with bound_contextvars, against 0.4-0.8 ms an event's pass).
            r = items[0].record if items else {}
            with logs.bound_contextvars(sim=r.get("sim_id"), agent=r.get("agent_id")):
                state = states[key] if isinstance(states, Mapping) else await states(key, items)
                return await self.agent(state, items, vectors, embedder)

        results = await together(self.rt.llm, (one(k, items) for k, items in groups.items()), return_exceptions=True)
        for r in results:
            if isinstance(r, EarlierBatchFailed):
                raise r  # the batch is retried, not dead-lettered
        return [(k, r, None) if isinstance(r, BaseException) else (k, r[0], r[1])
                for k, r in zip(groups, results)]


def register(app: faust.App, rt: Runtime, *, batch_size: int = 1000, within: float | None = None,
             question: stance.Question | None = None, in_flight: int | None = None):
    """The stage's Faust agent. ``question`` (sim id -> its question) is read
    from the simulations topic unless given (tests without a broker)."""
    # Values are packed (zstd JSON, streams/state_codec.py): the changelog
    # record per agent and batch is a seventh of its JSON.
    table = app.Table(TABLES[0], default=None, partitions=rt.settings.topic_partitions, key_type=bytes,
                      value_type=bytes)
    one_pass = AgentPass(rt, question or Questions(rt.settings).of)
    load_language_model()
    scored_ids = imp.ScoredIds(rt.settings.importance_seen_ids)
    # Each agent's state as its last batch left it: the next batch takes it
    # back instead of decompressing and parsing the table's value again
    # while the table still holds what that batch stored (streams/state_codec.py).
    unpacked = Unpacked(rt.settings.agent_states_unpacked)

    async def state_of(key: bytes, items: list[Incoming]) -> dict:
        await turn({i.key for i in items})  # an earlier batch in flight holding this agent is through
        # An event re-sent within the batches in flight was scored by the
        # earlier one meanwhile: drop it as split_new would have.
        items[:] = [i for i in items if i.record["event_id"] not in scored_ids]
        stored = table.get(key)
        kept = unpacked.take(key, stored)
        return kept if kept is not None else load_state(stored)  # ValueError: unreadable, its events are dead-lettered

    async def handle(batch: list[Incoming]) -> Effects:
        # A re-sent post or observation (a publisher that resumed, a file
        # published twice) is skipped before it costs an LLM call.
        fresh, repeats = imp.split_new(batch, scored_ids.__contains__)
        IMPORTANCE_REPEATS.inc(repeats)
        groups = by_agent(fresh)
        effects = Effects()
        done: list[str] = []
        for key, result, derived in await one_pass.batch(state_of, groups):
            items = groups[key]
            if isinstance(result, BaseException):
                effects.failed.append((items, result))  # dead-lettered; the agent keeps its state
                continue
            effects.outputs += derived.outputs()
            if items:
                packed = pack_state(result)
                effects.state.append((table, key, packed, items[-1]))
                unpacked.put(key, packed, result)
            done += [i.record["event_id"] for i in items if i.type_name != "Persona"]
        # Only once the outputs are on Kafka does an id count as scored.
        effects.after_flush.append(lambda: scored_ids.add(done))
        return effects

    # One agent's events in log order is what the pass's outputs rest on.
    # Batches overlap (settings.agent_batches_in_flight): while one waits on
    # the LLM the next is read and its other agents start.
    return register_batches(app, rt, stage=STAGE, inputs=INPUTS, expected=EXPECTED, handle=handle,
                            batch_size=batch_size, within=within, strict_order=True,
                            in_flight=in_flight or rt.settings.agent_batches_in_flight)
