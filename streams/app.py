"""The Faust app factory.

One app per processor group (``murmur worker GROUP``): the group id is
``<namespace->murmur-<group>``, so each group keeps its own offsets and can be
scaled by running more workers of it. Values and keys are raw bytes on the
Faust side: processors decode with :mod:`streams.serde` themselves so that an
undecodable record becomes a dead letter instead of crashing the stream.
"""

from __future__ import annotations

import re

import faust

from streams.settings import Settings
from streams.kafka_auth import faust_credentials


def group_id(settings: Settings, group: str) -> str:
    """The consumer group (and Faust app id) of a worker group. Its tables'
    changelog topics are named after it, and a topic name allows only
    letters, digits, '.', '_' and '-': ``importance,cassandra-sink`` becomes
    ``importance_cassandra-sink``."""
    prefix = f"{settings.namespace}-" if settings.namespace else ""
    return re.sub(r"[^A-Za-z0-9._-]", "_", f"{prefix}{settings.app_id}-{group}")


class App(faust.App):
    """faust.App on Faust's Kafka transport with the commit rule fixed
    (see streams/faust_consumer.py)."""

    # Inputs where every offset holds a message (not compacted; Murmur
    # writes nothing transactionally), added by each stage as it registers
    # (streams/runtime.py): Faust's consumer never counts an offset of one
    # that was not handed to a stream as acked.
    gapless_topics: frozenset = frozenset()

    def _new_transport(self):
        from streams.faust_consumer import Transport

        return Transport(self.conf.broker_consumer, self)


def create_app(settings: Settings, group: str, *, web_port: int | None = None,
               app_class: type[faust.App] = App) -> faust.App:
    (settings.state_dir / "faust").mkdir(parents=True, exist_ok=True)  # Faust makes only the last level
    return app_class(
        group_id(settings, group),
        broker=f"kafka://{settings.kafka_bootstrap}",
        broker_credentials=faust_credentials(settings),
        store=settings.faust_store,
        # Faust's own files (its table stores keep none in memory:// mode)
        # under the state dir, never in the working directory.
        datadir=str(settings.state_dir / "faust" / "{conf.name}-data"),
        # Topics are declared once by `murmur topics create`; Faust only
        # creates its own changelog topics.
        topic_partitions=settings.topic_partitions,
        topic_replication_factor=settings.topic_replication,
        topic_disable_leader=True,
        consumer_auto_offset_reset=settings.consumer_offset_reset,
        # At-least-once: inputs are acked only after outputs are flushed (see
        # streams.runtime); exactly-once in faust-streaming is not reliable.
        processing_guarantee="at_least_once",
        producer_acks=-1,
        broker_commit_interval=settings.faust_commit_interval_s,
        broker_session_timeout=settings.faust_session_timeout_s,
        # Records up to settings.max_record_bytes, read and written.
        consumer_max_fetch_size=max(4 * 1024 * 1024, settings.kafka_message_bytes),
        producer_max_request_size=settings.kafka_message_bytes,
        stream_processing_timeout=settings.faust_stall_warning_s,
        broker_commit_livelock_soft_timeout=settings.faust_stall_warning_s,
        broker_max_poll_records=5000,
        stream_buffer_maxsize=65536,
        web_enabled=web_port is not None,
        web_port=web_port or settings.worker_web_port,
        web_host="127.0.0.1",
        key_serializer="raw",
        value_serializer="raw",
    )
