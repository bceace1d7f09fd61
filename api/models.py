"""Response models: the API's contract, documented in its OpenAPI spec."""

from __future__ import annotations

from pydantic import BaseModel, Field


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
