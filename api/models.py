"""Response models: the API's contract, documented in its OpenAPI spec."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class FieldError(BaseModel):
    loc: list[str | int] = Field(description="Where: body, query or path, then the field")
    msg: str
    type: str


class Problem(BaseModel):
    """An error, as RFC 9457 problem details (``application/problem+json``)."""

    type: str = Field("about:blank", description="about:blank: the status code says what kind of error it is")
    title: str = Field(description="The status code's phrase")
    status: int
    detail: str = Field(description="What was wrong, and where")
    instance: str | None = Field(None, description="The request path")
    errors: list[FieldError] | None = Field(None, description="Validation errors only: one per bad field")


class Dependency(BaseModel):
    ok: bool
    detail: str


class Health(BaseModel):
    status: str = Field(description="ok, or degraded when a dependency does not answer")
    dependencies: dict[str, Dependency]


class TimelineEntry(BaseModel):
    sim_id: str
    ts: int = Field(description="Event time, epoch ms")
    memory_id: str
    agent_id: str
    round: int
    action: str | None
    platform: str | None
    content: str
    importance: int | None


class Memory(BaseModel):
    sim_id: str
    agent_id: str
    ts: int = Field(description="Event time, epoch ms")
    memory_id: str
    kind: str
    public: bool
    action: str | None
    platform: str | None
    round: int
    content: str
    importance: int
    importance_fallback: bool | None
    scorer: str | None
    embedder: str | None
    valid_to: int | None = Field(description="Event time from which a later memory contradicts this one")
    superseded_by: str | None
    source_topic: str | None
    source_partition: int | None
    source_offset: int | None


class Reflection(BaseModel):
    sim_id: str
    agent_id: str
    ts: int = Field(description="Event time of the memory that triggered it, epoch ms")
    reflection_id: str
    round: int
    content: str
    source_ids: list[str] = Field(description="memory_ids the belief rests on")
    importance: int
    trigger: str
    importance_sum: int | None
    backend: str


class Conflict(BaseModel):
    sim_id: str
    ts: int
    conflict_id: str
    agent_id: str
    round: int
    new_memory_id: str
    old_memory_id: str
    old_ts: int | None
    new_content: str | None
    old_content: str | None
    similarity: float
    reason: str
    confidence: float | None
    backend: str


class RetrieveWeights(BaseModel):
    model_config = ConfigDict(extra="forbid")

    relevance: float = Field(1.0, ge=0, le=1000)
    recency: float = Field(1.0, ge=0, le=1000)
    importance: float = Field(1.0, ge=0, le=1000)


class RetrieveRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    query: str = Field(min_length=1, max_length=4000, description="What to remember")
    top_k: int = Field(10, ge=1, le=100)
    weights: RetrieveWeights = RetrieveWeights()
    include_public: bool = Field(True, description="Also search the public timeline (never other agents' private memories)")
    at_ts: int | None = Field(None, ge=0, le=253402300799999, description="Reference event time for recency (default: the agent's newest memory)")
    half_life_s: float = Field(3600.0, gt=0, le=10 * 365 * 86400, description="Recency half-life in event-time seconds")


class ScoreParts(BaseModel):
    relevance: float
    recency: float
    importance: float
    total: float


class Retrieved(BaseModel):
    memory_id: str
    agent_id: str
    kind: str
    public: bool
    round: int
    ts: int
    importance: int
    content: str
    scores: ScoreParts


class Persona(BaseModel):
    name: str | None
    archetype: str | None
    openness: float | None
    conscientiousness: float | None
    extraversion: float | None
    agreeableness: float | None
    neuroticism: float | None
    conviction: float | None
    credibility: float | None
    initial_stance: float | None
    bio: str | None
    source: str | None


class Agent(BaseModel):
    agent_id: str
    persona: Persona | None = Field(description="From the personas topic, when one was published")


class Verdict(BaseModel):
    sim_id: str
    round: int
    ts: int
    question: str | None
    support_ratio: float
    direction: str
    magnitude: float
    confidence: float
    post_count: int
    author_count: int
    stance_positive: int | None
    stance_negative: int | None
    stance_neutral: int | None
    flips: int | None
    rationale: str | None
    backend: str | None = Field(None, description="Stance models that read the posts")
    reflection_count: int | None = Field(None, description="Reflections in the support ratio")
    posts_read: int | None = Field(None, description="Posts read with a stance signal")
    posts_no_signal: int | None = Field(None, description="Posts read without a stance signal (neutral)")
    posts_unreadable: int | None = Field(None, description="Posts the stance model could not read: left out")
    coverage: float | None = Field(None, description="Share of posts the stance model could read (-1: not measured)")
    reflections_excluded: int | None = Field(None, description="Template reflections left out of the verdict")
    stance_reliability: float | None = Field(None, description="Measured accuracy of the least reliable stance model "
                                                               "(macro-F1 / 100); scales confidence")


class EvalResultRow(BaseModel):
    case: str
    result_id: str
    sim_id: str
    composite: float
    direction_match: float
    magnitude_error: float
    calibration: float
    predicted_direction: str
    support_ratio: float
    confidence: float
    truth_direction: str
    truth_magnitude: float
    features: list[str]
    result: dict


class ContextReflection(BaseModel):
    reflection_id: str
    round: int
    ts: int = Field(description="Event time, epoch ms")
    content: str


class ContextSuperseded(BaseModel):
    conflict_id: str
    round: int
    ts: int = Field(description="Event time of the newer memory, epoch ms")
    old_memory_id: str
    new_memory_id: str
    old_content: str
    new_content: str
    reason: str | None


class ContextLeftOut(BaseModel):
    reflections: int
    superseded: int
    memories: int


class Context(BaseModel):
    """A bounded memory block for an agent's next prompt."""

    sim_id: str
    agent_id: str
    query: str
    budget_tokens: int
    used_tokens: int = Field(description="Estimated at 4 characters a token, rounded up line by line; never above the budget")
    text: str = Field(description="The block to put in the agent's prompt, sections in this order: beliefs, changed beliefs, memories")
    reflections: list[ContextReflection] = Field(description="Its latest beliefs in the block, newest first")
    superseded: list[ContextSuperseded] = Field(description="Beliefs it gave up for newer ones, newest first")
    memories: list[Retrieved] = Field(description="Its memories in the block, best first by the retrieval score")
    rests_on: list[str] = Field(description="Every reflection, conflict and memory id the block was built from")
    left_out: ContextLeftOut = Field(description="Items that did not fit the budget (or the section's cap of 3)")


class ContextAsk(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agent_id: str = Field(min_length=1, max_length=200)
    query: str = Field(min_length=1, max_length=4000, description="What the agent is about to do or answer")


class ContextsRequest(BaseModel):
    model_config = ConfigDict(extra="forbid")

    agents: list[ContextAsk] = Field(min_length=1, max_length=1000, description="One entry per agent of the round")
    budget: int = Field(512, ge=16, le=32768, description="Token budget of each agent's block")
    top_k: int = Field(10, ge=1, le=100, description="Memories considered per agent, best first")
    include_public: bool = Field(True, description="Also recall the public timeline (never other agents' private memories)")
    half_life_s: float = Field(3600.0, gt=0, le=10 * 365 * 86400, description="Recency half-life in event-time seconds")


class Contexts(BaseModel):
    contexts: list[Context] = Field(description="In the order asked")
    missing: list[str] = Field(description="Agents asked for that have no memory in the simulation (no block for them)")
