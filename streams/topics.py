"""Every Kafka topic Murmur uses, declared once.

Nothing else in the code base spells a topic name: import the spec and call
:func:`topic_name`. Keys decide ordering: per-agent state needs every event
of one agent on one partition (key ``sim_id/agent_id``); per-simulation
aggregation needs one simulation on one partition (key ``sim_id``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Cleanup = Literal["delete", "compact"]
DAY_MS = 24 * 3600 * 1000

# A compacted topic (the tables' changelogs above all) is compacted only in
# its closed segments, and Kafka's defaults close one at 1 GiB or after 7
# days: a changelog written for hours kept every version of every key, and a
# restarted worker read them all back. Measured on the soak's changelogs
# after 30 minutes: 267,144 agent-state records (1.08 GB) for 7,000 keys
# (40 MB live), and the worker's RSS after recovery grew with each restart.
# Closing a segment every 10 minutes or 64 MiB lets the cleaner keep the
# latest value per key, so recovery reads about the live state.
COMPACT_CONFIG = {"min.cleanable.dirty.ratio": "0.1", "segment.ms": str(10 * 60 * 1000),
                  "segment.bytes": str(64 * 1024 * 1024)}


@dataclass(frozen=True)
class TopicSpec:
    name: str
    key: str  # what the Kafka key holds, for humans and docs
    value: str  # Avro schema name (schemas/<value>.avsc)
    cleanup: Cleanup = "delete"
    retention_ms: int = -1  # -1: keep forever (topics are the source of truth)
    partitions: int | None = None  # None: settings.topic_partitions
    derived: bool = False  # written by processors: isolated per namespace on replay
    doc: str = ""
    values: tuple[str, ...] = ()  # every Avro record type the topic carries, when more than ``value``

    @property
    def types(self) -> tuple[str, ...]:
        return self.values or (self.value,)

    def config(self) -> dict[str, str]:
        cfg = {"cleanup.policy": self.cleanup, "retention.ms": str(self.retention_ms)}
        if self.cleanup == "compact":
            cfg.update(COMPACT_CONFIG)
        return cfg


def changelog_config() -> dict[str, str]:
    """A table's changelog: compacted, closed into segments as above."""
    return {"cleanup.policy": "compact", **COMPACT_CONFIG}


AGENT_LOG = TopicSpec("sim.agent-log.v1", "sim_id/agent_id", "Post", values=("Persona", "Post", "Observation"),
                      doc="one agent's persona, posts and observations, in the order they happened")
PERSONAS = TopicSpec("sim.personas.v1", "sim_id/agent_id", "Persona", cleanup="compact", doc="latest persona per agent")
ROUNDS = TopicSpec("sim.rounds.v1", "sim_id", "RoundMarker", doc="round boundaries; drive cadence")
SIMULATIONS = TopicSpec("sim.simulations.v1", "sim_id", "Simulation", cleanup="compact", doc="question and config used")
SCORED = TopicSpec("memory.scored.v1", "sim_id/agent_id", "ScoredMemory", derived=True, doc="importance + embedding")
REFLECTIONS = TopicSpec("memory.reflections.v1", "sim_id/agent_id", "Reflection", derived=True, doc="beliefs with sources")
CONFLICTS = TopicSpec("memory.conflicts.v1", "sim_id/agent_id", "Conflict", derived=True, doc="new -> old contradiction edges")
STANCES = TopicSpec("sim.stances.v1", "sim_id", "Stance", derived=True, doc="per-post verdict contributions, by sim")
VERDICTS = TopicSpec("sim.verdicts.v1", "sim_id", "Verdict", derived=True, doc="forecast per round")
LLM_CALLS = TopicSpec("ops.llm-calls.v1", "role", "LlmCall", derived=True, retention_ms=30 * DAY_MS, doc="LLM cost and latency")
CHECKPOINTS = TopicSpec("ops.checkpoints.v1", "checkpoint_id", "Checkpoint", cleanup="compact", doc="offset snapshots (zstd)")
DEAD_LETTER = TopicSpec("ops.dead-letter.v1", "source topic (publisher: \"publisher\")", "DeadLetter", doc="bad input with its reason")
SIM_STARTS = TopicSpec("sim.starts.v1", "sim_id/session", "SimStart", cleanup="compact", partitions=1,
                        doc="when each publisher session began sending a simulation: where a replay starts reading")
PUBLISHER_POSITIONS = TopicSpec("ops.publisher-positions.v1", "sim_id/source", "PublisherPosition", cleanup="compact",
                                partitions=1, doc="how far publishers have read each input")
EVAL_RESULTS = TopicSpec("eval.results.v1", "case", "EvalResult", doc="scores of eval replays")

# Before the agent log (ADR 0005): posts and observations on two topics, which
# gave one agent's events no order. Nothing reads them now; they stay for what
# was published before (docs/adr/0005-agent-log.md).
POSTS = TopicSpec("sim.posts.v1", "sim_id/agent_id", "Post", doc="(before the agent log) public timeline")
OBSERVATIONS = TopicSpec("sim.observations.v1", "sim_id/agent_id", "Observation",
                         doc="(before the agent log) private to one agent")
LEGACY: tuple[TopicSpec, ...] = (POSTS, OBSERVATIONS)

ALL: tuple[TopicSpec, ...] = (
    AGENT_LOG,
    PERSONAS,
    ROUNDS,
    SIMULATIONS,
    SCORED,
    REFLECTIONS,
    CONFLICTS,
    STANCES,
    VERDICTS,
    LLM_CALLS,
    CHECKPOINTS,
    DEAD_LETTER,
    PUBLISHER_POSITIONS,
    SIM_STARTS,
    EVAL_RESULTS,
)
SOURCES: tuple[TopicSpec, ...] = (AGENT_LOG, PERSONAS, ROUNDS, SIMULATIONS)

# Where a publisher sends each record type. A persona goes to the agent log
# (so the agent's pass reads it before the agent's first post) and to the
# compacted persona topic (the latest per agent, for the read model).
ROUTES: dict[str, tuple[TopicSpec, ...]] = {
    "Persona": (AGENT_LOG, PERSONAS), "Post": (AGENT_LOG,), "Observation": (AGENT_LOG,),
    "RoundMarker": (ROUNDS,), "Simulation": (SIMULATIONS,),
}


def topic_name(spec: TopicSpec, namespace: str = "") -> str:
    """Physical name; derived topics of a replay namespace get a prefix so a
    replay never writes into the live pipeline's topics."""
    if namespace and spec.derived:
        return f"{namespace}.{spec.name}"
    return spec.name


def by_name(name: str) -> TopicSpec:
    """Spec of a physical topic name (namespaced or not)."""
    for spec in ALL + LEGACY:
        if name == spec.name or name.endswith("." + spec.name):
            return spec
    raise KeyError(f"unknown topic {name!r}; known: {', '.join(s.name for s in ALL)}")


def agent_key(sim_id: str, agent_id: str) -> bytes:
    return f"{sim_id}/{agent_id}".encode()


def sim_key(sim_id: str) -> bytes:
    return sim_id.encode()


def may_be_of_sim(key: bytes | None, sim_id: str) -> bool:
    """Whether a record keyed ``key`` can hold an event of ``sim_id``: the
    simulation topics are keyed ``sim_id`` or ``sim_id/agent_id`` (what puts
    one agent's events on one partition, in order). A reader after one
    simulation decodes only these; a record without a key may be of any.
    (A necessary condition only: ``a/b/c`` passes for sim ``a``, and its
    record's ``sim_id`` says it is ``a/b``'s.)"""
    if key is None:
        return True
    sim = sim_id.encode()
    return key == sim or key.startswith(sim + b"/")
