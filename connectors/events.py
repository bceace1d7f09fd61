"""What a parser yields: an event ready to publish, or a bad line to dead-letter."""

from __future__ import annotations

from dataclasses import dataclass, field

from streams.topics import TopicSpec


@dataclass(frozen=True)
class OutEvent:
    spec: TopicSpec
    key: bytes
    record: dict
    source_ref: str = ""

    @property
    def type_name(self) -> str:
        return self.spec.value


@dataclass(frozen=True)
class BadLine:
    source_ref: str  # file:line
    reason: str
    raw: bytes
    field: str | None = None
    sim_id: str | None = None

    def message(self) -> str:
        where = f" [{self.field}]" if self.field else ""
        return f"{self.source_ref}:{where} {self.reason}"


@dataclass(frozen=True)
class Skipped:
    source_ref: str
    reason: str


@dataclass
class Counts:
    read: int = 0
    published: dict[str, int] = field(default_factory=dict)
    dead_lettered: int = 0
    skipped: int = 0

    def add(self, type_name: str) -> None:
        self.published[type_name] = self.published.get(type_name, 0) + 1

    @property
    def total_published(self) -> int:
        return sum(self.published.values())
