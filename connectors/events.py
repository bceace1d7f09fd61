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
    unknown_action: str | None = None  # an action type the reader does not know: published, and reported
    derived: bool = False  # made by the reader (a round marker from the clock), not one input line or row
    type: str = ""  # the record's Avro type, where the topic carries several (the agent log)

    @property
    def type_name(self) -> str:
        return self.type or self.spec.value


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
    reason: str  # counted by reason in the summary: say why, in a few words


Item = OutEvent | BadLine | Skipped


def _bump(d: dict[str, int], key: str, n: int = 1) -> None:
    d[key] = d.get(key, 0) + n


@dataclass
class Counts:
    """What one publish did with its input: every line or row read is
    published, skipped (with why) or dead-lettered; ``resumed`` counts what an
    earlier run had published already and was not sent again."""

    read: int = 0
    published: dict[str, int] = field(default_factory=dict)  # by event type
    by_action: dict[str, int] = field(default_factory=dict)  # posts and observations by source action
    dead_lettered: int = 0
    dead_letter_reasons: dict[str, int] = field(default_factory=dict)
    skipped: dict[str, int] = field(default_factory=dict)  # by reason
    unknown_actions: dict[str, int] = field(default_factory=dict)  # published as observations, by type
    resumed: int = 0
    derived: int = 0  # published events a reader made (round markers from a clock), not input lines

    def add(self, type_name: str, action: str | None = None, derived: bool = False) -> None:
        _bump(self.published, type_name)
        self.derived += derived
        if action:
            _bump(self.by_action, action)

    def skip(self, reason: str) -> None:
        _bump(self.skipped, reason)

    def dead(self, reason: str, field: str | None = None) -> None:
        self.dead_lettered += 1
        _bump(self.dead_letter_reasons, (f"[{field}] " if field else "") + reason_kind(reason))

    def unknown(self, action: str) -> None:
        _bump(self.unknown_actions, action)

    @property
    def total_published(self) -> int:
        return sum(self.published.values())

    @property
    def skipped_total(self) -> int:
        return sum(self.skipped.values())


def reason_kind(reason: str) -> str:
    """A reason without the details that vary line to line (values, columns),
    so the summary groups like with like."""
    for cut in (": ", ", got ", " at column ", " at byte "):
        reason = reason.split(cut, 1)[0]
    return reason[:80]
