"""Schema registry subject names: Confluent's three naming strategies.

A value schema is registered under a subject; which one decides what the
registry checks compatibility against:

* ``topic`` (TopicNameStrategy, the default): ``<topic>-value``. One
  schema lineage per topic, the usual choice when a topic carries one type.
* ``record`` (RecordNameStrategy): ``<namespace>.<Name>``. One lineage per
  event type, whatever topics it is written to.
* ``topic_record`` (TopicRecordNameStrategy): ``<topic>-<namespace>.<Name>``.

A topic that carries several record types (the agent log: Persona, Post,
Observation, in one order per agent) cannot have one ``<topic>-value``
lineage: the registry would check Post against Persona and refuse it. Under
``topic`` such a shared topic gets ``<topic>-<namespace>.<Name>`` subjects,
as Confluent advises for several event types in one topic.

Pure functions, so they are tested without a registry.
"""

from __future__ import annotations

from typing import Literal

from streams.errors import ConfigError

SubjectStrategy = Literal["topic", "record", "topic_record"]
STRATEGIES: tuple[str, ...] = ("topic", "record", "topic_record")


def needs_topic(strategy: SubjectStrategy) -> bool:
    return strategy != "record"


def subject_name(strategy: SubjectStrategy, *, topic: str | None, record_name: str, shared: bool = False) -> str:
    """The subject the value schema ``record_name`` (full name, e.g.
    ``murmur.v1.Post``) is registered under when written to ``topic``;
    ``shared`` says the topic carries more than one record type."""
    if strategy not in STRATEGIES:
        raise ConfigError(f"unknown subject strategy {strategy!r}; choose from {', '.join(STRATEGIES)}")
    if not record_name:
        raise ConfigError("a subject needs the record's full name")
    if strategy == "record":
        return record_name
    if not topic:
        # Guessing (e.g. falling back to the record name) would register the
        # schema under a subject no consumer of the topic looks at.
        raise ConfigError(
            f"subject strategy {strategy!r} needs the topic the {record_name} record is written to; "
            "pass topic= to the encoder (or use MURMUR_SCHEMA_REGISTRY_SUBJECT_STRATEGY=record)")
    if strategy == "topic" and not shared:
        return f"{topic}-value"
    return f"{topic}-{record_name}"
