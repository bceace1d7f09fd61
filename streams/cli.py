"""The ``murmur`` command: a thin dispatcher to each part of the pipeline.

Imports of the parts happen inside the commands so ``murmur --help`` is fast
and a missing optional piece only affects the command that needs it.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Optional

import typer

from streams.cli_common import fail, kafka_error_hint, kafka_errors, needs_kafka  # noqa: F401 - used by commands below
from streams.errors import MurmurError
from streams.settings import get_settings

app = typer.Typer(help="Murmur: social-simulation memory and forecasts as an event-sourced Kafka pipeline.",
                  no_args_is_help=True, pretty_exceptions_enable=False)
services_app = typer.Typer(help="Local Kafka and Cassandra (JVM, from Maven Central) on 127.0.0.1.", no_args_is_help=True)
topics_app = typer.Typer(help="Kafka topics, declared once in streams/topics.py.", no_args_is_help=True)
db_app = typer.Typer(help="The Cassandra read model.", no_args_is_help=True)
checkpoint_app = typer.Typer(help="Topic-offset snapshots (zstd-compressed Avro on the checkpoints topic).", no_args_is_help=True)
app.add_typer(checkpoint_app, name="checkpoint")
eval_app = typer.Typer(help="Eval by replay: score verdicts against truth, ablate features.", no_args_is_help=True)
app.add_typer(eval_app, name="eval")
app.add_typer(services_app, name="services")
app.add_typer(topics_app, name="topics")
app.add_typer(db_app, name="db")
sink_app = typer.Typer(help="Sinks that run as processes of their own.", no_args_is_help=True)
app.add_typer(sink_app, name="sink")
from streams.cli_estimate import estimate as estimate_command  # noqa: E402 - a command of its own module
app.command("estimate")(estimate_command)
from streams.cli_keys import api_keys_app  # noqa: E402 - a command group of its own module
app.add_typer(api_keys_app, name="api-keys")
from streams.cli_deadletters import dead_letters_app  # noqa: E402 - a command group of its own module
app.add_typer(dead_letters_app, name="dead-letters")
from streams.cli_sim import sim_app  # noqa: E402
app.add_typer(sim_app, name="sim")


# Commands that run until stopped: their Kafka clients log through Python
# logging; a short command's are quiet (kafka_errors).
LONG_RUNNING = ("worker", "api", "sink")


def spool_stdin() -> Path:
    """Standard input, kept in a file so it publishes like any other (lines
    named by their line number there); the input's format is detected from
    its first line or given by --input-format."""
    import tempfile

    folder = get_settings().state_dir / "stdin"
    folder.mkdir(parents=True, exist_ok=True)
    with tempfile.NamedTemporaryFile("wb", dir=folder, prefix="stdin-", suffix=".jsonl", delete=False) as fh:
        for chunk in iter(lambda: sys.stdin.buffer.read(1 << 20), b""):
            fh.write(chunk)
    return Path(fh.name)


def version_callback(value: bool) -> None:
    if value:
        from importlib.metadata import version

        typer.echo(f"murmur {version('murmur')}")
        raise typer.Exit()


@app.callback()
def root(ctx: typer.Context,
         version: bool = typer.Option(False, "--version", callback=version_callback, is_eager=True,
                                      help="Print the version and exit")):
    """Murmur: social-simulation memory and forecasts as an event-sourced Kafka pipeline."""
    from pydantic import ValidationError

    from streams import logs

    try:
        logs.configure_from(get_settings())
    except ValidationError:
        logs.configure()  # the command that reads the settings reports what is wrong
    if ctx.invoked_subcommand in LONG_RUNNING:
        import logging

        from streams import kafka

        kafka.log_through(logging.getLogger("librdkafka"))  # their log stays one JSON object a line


def _names(names: Optional[list[str]]) -> tuple[str, ...]:
    from deploy.local import KNOWN, SERVICES

    chosen = tuple(names) if names else SERVICES
    bad = [n for n in chosen if n not in KNOWN]
    if bad:
        fail(f"unknown service(s) {bad}; known: {', '.join(KNOWN)}", 2)
    return chosen


# -- services ---------------------------------------------------------------
SERVICE_NAMES = ("kafka, cassandra (the default: both); qdrant (a Qdrant server), registry (a schema registry), "
                 "kafka-cluster (a 3-broker KRaft cluster) when named")


@services_app.command("up")
def services_up(names: Optional[list[str]] = typer.Argument(None, help=SERVICE_NAMES)):
    """Fetch, configure, start and health-check the services (idempotent)."""
    from deploy import local

    try:
        for name, state in local.up(get_settings(), _names(names)).items():
            typer.echo(f"{name}: {state}")
    except MurmurError as exc:
        fail(str(exc))
    except Exception as exc:  # deploy errors carry their own advice
        fail(str(exc))


@services_app.command("down")
def services_down(names: Optional[list[str]] = typer.Argument(None, help=SERVICE_NAMES)):
    """Stop the services cleanly (their data stays in the state folder); with
    no names, also the worker and API processes that `murmur demo` started."""
    from deploy import local
    from deploy.pipeline import stop_all_processes

    if not names:
        for proc in stop_all_processes(get_settings()):
            typer.echo(f"{proc}: stopped")

    for name, state in local.down(get_settings(), _names(names)).items():
        typer.echo(f"{name}: {state}")


@services_app.command("status")
def services_status(names: Optional[list[str]] = typer.Argument(None, help=SERVICE_NAMES)):
    """Whether each local service runs and answers; exit 1 unless all do."""
    from deploy import local

    status = local.status(get_settings(), _names(names))
    for name, st in status.items():
        typer.echo(f"{name}: {'running' if st['running'] else 'stopped'}, {'healthy' if st['healthy'] else 'not healthy'}"
                   f" (pid {st['pid']}, port {st['port']}) {st.get('detail', '')}")
    if not all(st["healthy"] for st in status.values()):
        raise typer.Exit(1)


# -- topics -----------------------------------------------------------------
@topics_app.command("create")
@needs_kafka
def topics_create(namespace: str = typer.Option("", help="Prefix for derived topics (replay/eval isolation)")):
    """Create every declared topic that does not exist yet (idempotent)."""
    from streams.kafka import create_topics

    try:
        for name, state in create_topics(get_settings(), namespace=namespace).items():
            typer.echo(f"{name}: {state}")
    except MurmurError as exc:
        fail(str(exc))


@topics_app.command("list")
@needs_kafka
def topics_list():
    """The declared topics: key, value schema, cleanup policy."""
    from streams.topics import ALL

    for s in ALL:
        typer.echo(f"{s.name:26} key={s.key:16} value={'|'.join(s.types):13} cleanup={s.cleanup:7} {s.doc}")


# -- db ---------------------------------------------------------------------
@db_app.command("init")
def db_init():
    """Create the keyspace and tables (idempotent)."""
    from sinks.cassandra_store import CassandraStore

    store = CassandraStore(get_settings())
    try:
        store.apply_schema()
        typer.echo(f"keyspace {store.keyspace}: ready")
    except MurmurError as exc:
        fail(str(exc))
    finally:
        store.close()


# -- publish ----------------------------------------------------------------
@app.command()
def publish(
    paths: Optional[list[Path]] = typer.Argument(None, help="MiroFish simulation folders or actions.jsonl files, OASIS "
                                                            "databases (*.db) or folders of them, Murmur JSONL files; "
                                                            "- reads JSONL from standard input"),
    sim: Optional[str] = typer.Option(None, "--sim", envvar="MURMUR_SIM", help="Simulation id (default: from the path)"),
    input_format: str = typer.Option("auto", "--input-format", help="auto, mirofish, oasis or jsonl"),
    platform: Optional[str] = typer.Option(None, help="Platform of a MiroFish log or OASIS database (default: its "
                                                      "folder or file name; a line's own platform field wins)"),
    question: Optional[str] = typer.Option(None, help="The question the verdict answers (default: the simulation "
                                                      "config's simulation_requirement)"),
    round_minutes: int = typer.Option(60, min=1, max=100_000, help="OASIS: simulated minutes per round (datetime "
                                                                     "clocks) and per step (integer clocks)"),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep reading as the simulation writes; resume where an "
                                                               "earlier run stopped; stop at simulation_end, Ctrl-C "
                                                               "or --idle-timeout"),
    idle_timeout: Optional[float] = typer.Option(None, min=0.1, help="With --follow: stop after this many seconds "
                                                                     "without new input"),
    poll_interval: float = typer.Option(0.5, min=0.05, max=60, help="With --follow: seconds between reads"),
    resume: bool = typer.Option(False, "--resume", help="Skip what an earlier run stored as published (--follow "
                                                         "always does)"),
    dry_run: bool = typer.Option(False, "--dry-run", help="Parse and validate only: no broker, nothing sent"),
    max_dead_letters: Optional[str] = typer.Option(None, help="Exit 3 when more lines than this are dead-lettered: "
                                                              "a count (10) or a share of lines read (5%)"),
    out_format: str = typer.Option("text", "--format", help="Summary as text or as one JSON object (json)"),
    synthetic: Optional[Path] = typer.Option(None, "--synthetic", help="Eval case folder (seed.md, question.md) to build a population from"),
    seed: int = typer.Option(42, help="Seed of the synthetic population"),
    agents: int = typer.Option(40, min=1, max=100_000, help="Synthetic agents"),
    rounds: int = typer.Option(6, min=1, max=10_000, help="Synthetic rounds"),
):
    """Publish simulation events to Kafka. Bad lines are reported with file, line and field
    and go to the dead-letter topic; publishing goes on. Exit 0 when something was
    published, 1 when nothing was, 3 when dead letters exceed --max-dead-letters."""
    from connectors.publish_cli import INPUT_FORMATS, Options, run_publish
    from connectors.summary import dead_letter_limit, exit_code, render_text

    if not paths and synthetic is None:
        fail("give files to publish or --synthetic CASE_DIR", 2)
    if out_format not in ("text", "json"):
        fail(f"--format must be text or json, not {out_format!r} (the input's format is --input-format)", 2)
    if input_format not in INPUT_FORMATS:
        fail(f"--input-format must be one of {', '.join(INPUT_FORMATS)}, not {input_format!r}", 2)
    try:
        dead_letter_limit(max_dead_letters, 0)
    except ValueError as exc:
        fail(str(exc), 2)
    shown = [0]

    def on_error(message: str) -> None:
        shown[0] += 1
        if shown[0] <= 50:
            typer.echo(message, err=True)
        elif shown[0] == 51:
            typer.echo("error: ... more bad lines: see the summary and `murmur tail dead-letter`", err=True)

    if paths and Path("-") in paths:
        if follow or resume:
            fail("stdin (-) is read once to its end: --follow and --resume need files", 2)
        paths = [spool_stdin() if p == Path("-") else p for p in paths]
    opts = Options(sim=sim, input_format=input_format, platform=platform, question=question,
                   round_minutes=round_minutes, follow=follow, resume=resume, idle_timeout=idle_timeout,
                   poll_interval=poll_interval, dry_run=dry_run)
    with kafka_errors():
        try:
            summary = run_publish(get_settings(), paths or [], opts, synthetic=synthetic, seed=seed, agents=agents,
                                  rounds=rounds, on_error=on_error)
        except (FileNotFoundError, ValueError) as exc:
            fail(str(exc), 2)
        except MurmurError as exc:
            fail(str(exc), 2 if type(exc).__name__ == "NotOasis" else 1)
    code, why = exit_code(summary.counts, max_dead_letters)
    typer.echo(json.dumps(summary.as_dict(), ensure_ascii=False) if out_format == "json" else render_text(summary))
    if code:
        fail(why, code)


# -- tail -------------------------------------------------------------------
def topic_aliases(incomplete: str) -> list[str]:
    """Shell completion of `tail`'s topics: the short aliases (no broker asked)."""
    from connectors.tail import ALIASES

    return [a for a in sorted(ALIASES) if a.startswith(incomplete)]


@app.command()
def tail(
    topics: list[str] = typer.Argument(..., help="Topic names or short aliases: agent-log, rounds, scored, verdicts, "
                                                 "dead-letter, ...; Faust changelogs (*-changelog) show agent state",
                                       autocompletion=lambda incomplete: topic_aliases(incomplete)),
    sim: Optional[str] = typer.Option(None, "--sim", help="Only this simulation's records"),
    agent: Optional[str] = typer.Option(None, "--agent", help="Only this agent's records"),
    type_: Optional[str] = typer.Option(None, "--type", help="Event type, e.g. Post"),
    offset: Optional[str] = typer.Option(None, "--offset", "-o", help="Where to start in each partition: beginning, "
                                         "end (default), N, -N (N before the end), s@EPOCH_MS or @ISO-TIME"),
    partitions: Optional[list[int]] = typer.Option(None, "--partition", "-p", min=0,
                                                   help="Only this partition (repeat for more)"),
    from_beginning: bool = typer.Option(False, "--from-beginning", help="Same as -o beginning"),
    follow: bool = typer.Option(False, "--follow", "-f", help="Keep waiting for new events"),
    max_events: Optional[int] = typer.Option(None, "--max", "-c", min=1, help="Stop after N matching events"),
    fmt: str = typer.Option("pretty", "--format", help="pretty, json (key, headers and Kafka timestamp as _key, "
                                                      "_headers, _timestamp), avro-json, or raw (value bytes)"),
    properties: Optional[list[str]] = typer.Option(None, "-X", help="A librdkafka property as prop=value (repeat "
                                                   "for more), as kcat's -X; added to MURMUR_KAFKA_CLIENT_PROPERTIES"),
):
    """Decode and print records of Murmur topics (kcat's consumer, for Murmur's events)."""
    from connectors.tail import FORMATS, Start, TailFilter, parse_offset, tail as run_tail
    from streams.kafka_auth import parse_properties

    if fmt not in FORMATS:
        fail(f"--format must be one of {', '.join(FORMATS)}, not {fmt!r}", 2)
    if offset is not None and from_beginning:
        fail("give -o/--offset or --from-beginning, not both", 2)
    try:
        start = parse_offset(offset) if offset is not None else Start("beginning" if from_beginning else "end")
    except ValueError as exc:
        fail(str(exc), 2)
    if fmt == "raw" and (sim or agent or type_):
        fail("--format raw prints values undecoded: --sim, --agent and --type need a decoding format", 2)
    settings = get_settings()
    try:
        extra = parse_properties(properties or [])
    except ValueError as exc:
        fail(str(exc), 2)
    if extra:
        settings = settings.model_copy(update={"kafka_client_properties": {**settings.kafka_client_properties, **extra}})
    with kafka_errors():
        try:
            run_tail(settings, topics, filt=TailFilter(sim, agent, type_), follow=follow,
                     max_events=max_events, fmt=fmt, start=start, partitions=partitions,
                     on_undecodable=lambda m: typer.echo(f"undecodable: {m}", err=True))
        except KeyboardInterrupt:
            pass


# -- processing -------------------------------------------------------------
@app.command()
def worker(
    processors: str = typer.Option("all", help="Comma-separated names from streams/topology.py STAGES "
                                               "(agent, verdict, cassandra-sink, checkpointer), or all"),
    group: Optional[str] = typer.Option(None, help="Consumer group suffix (default: the processor names)"),
    loglevel: str = typer.Option("warning"),
):
    """Run stream processors as a Faust worker (Ctrl-C to stop)."""
    from processors.worker import run
    from streams.topology import resolve

    try:
        names = resolve(processors)
    except ValueError as exc:
        fail(str(exc), 2)
    from streams.errors import ConfigError

    sys.argv = [sys.argv[0], "worker"]  # Faust's worker parses argv itself
    try:
        run(get_settings(), names, group or processors, loglevel)
    except ConfigError as exc:
        fail(f"invalid setting {exc}", 2)


@app.command()
def api(host: Optional[str] = typer.Option(None), port: Optional[int] = typer.Option(None)):
    """Serve the read-model HTTP API."""
    import uvicorn

    from api.app import create_app

    from api.exposure import refusal

    settings = get_settings()
    why_not = refusal(host or settings.api_host, settings.api_published_host,
                      bool(settings.api_key_sha256) or settings.api_require_key, settings.api_allow_anonymous)
    if why_not:
        fail(why_not, code=2)
    # Logging is Murmur's (streams/logs.py, set up by the callback): uvicorn
    # keeps its own lines at warning and leaves request lines to
    # api/request_log.py, which knows the request id and the key.
    uvicorn.run(create_app(settings), host=host or settings.api_host, port=port or settings.api_port,
                log_level="warning", log_config=None, access_log=False)


@sink_app.command("qdrant")
def sink_qdrant():
    """ScoredMemory embeddings -> a Qdrant server (MURMUR_QDRANT_URL). In local
    mode the API runs this loop itself (docs/adr/0001)."""
    from sinks.vector_stores import open_vector_store
    from sinks.qdrant_writer import QdrantSink
    from streams.metrics import serve_metrics

    settings = get_settings()
    if not settings.qdrant_url:
        fail("murmur sink qdrant needs MURMUR_QDRANT_URL: with local Qdrant the API process runs the sink", 2)
    serve_metrics(settings)
    store = open_vector_store(settings)
    try:
        QdrantSink(settings, store).run()
    except KeyboardInterrupt:
        pass
    finally:
        store.close()


@app.command("hash-key")
def hash_key(key: str = typer.Argument(..., help="The API key to require")):
    """Print the SHA-256 to put in MURMUR_API_KEY_SHA256 (the key itself is never stored)."""
    from api.auth import hash_key as h

    typer.echo(h(key))


@app.command()
@needs_kafka
def lag(processors: str = typer.Option("all", help="As given to `murmur worker`"),
        group: Optional[str] = typer.Option(None, help="As given to `murmur worker`")):
    """Consumer lag of a processor group on its input topics."""
    from streams.topology import input_topics, resolve
    from streams.app import group_id
    from streams.kafka import group_lag

    settings = get_settings()
    try:
        names = resolve(processors)
    except ValueError as exc:
        fail(str(exc), code=2)
    for p in group_lag(settings, group_id(settings, group or processors), input_topics(settings, names)):
        committed = p.committed if p.committed >= 0 else "none"  # librdkafka's -1001: nothing committed yet
        typer.echo(f"{p.topic} p{p.partition}: committed={committed} end={p.end} lag={p.lag}")


@app.command()
def demo(
    example: Optional[Path] = typer.Option(None, help="Folder of a MiroFish simulation (default: the bundled example)"),
    sim: str = typer.Option("example", help="Simulation id"),
    timeout: float = typer.Option(300.0, help="Seconds to wait for the example to be fully processed"),
):
    """The main job end to end: services, topics, publish the example, process it, summarise."""
    from deploy.pipeline import run_demo

    try:
        run_demo(get_settings(), example=example, sim=sim, timeout=timeout, echo=typer.echo)
    except MurmurError as exc:
        fail(str(exc))


# -- replay and eval -----------------------------------------------------------
@app.command()
def replay(
    sim: str = typer.Option(..., "--sim", help="Simulation to replay"),
    namespace: str = typer.Option("replay", help="Where derived events go (topics <ns>.*, keyspace murmur_<ns>)"),
    question: str = typer.Option("", help="The question its verdict answers"),
    journal: str = typer.Option("off", help="strict: answer every LLM request from the live run's LlmCall journal "
                                             "(no model call; misses are counted); fill: ask the model on a miss; "
                                             "off: ask the model"),
    from_beginning: bool = typer.Option(False, "--from-beginning",
                                        help="Read the source topics from their first offsets, not from the "
                                             "simulation's first recorded start (events some other client produced "
                                             "before Murmur's publisher started it)"),
):
    """Re-run one simulation from the log (from where its events begin to
    the end offsets at start) through the processors' functions into an
    isolated namespace; `murmur eval compare` sets it beside the live run."""
    from eval.replay import replay_sim

    try:
        typer.echo(json.dumps(replay_sim(get_settings(), sim, namespace=namespace, question=question,
                                         journal=journal, from_beginning=from_beginning)))
    except MurmurError as exc:
        fail(str(exc))


@app.command()
def rescore(sim: str = typer.Option(..., "--sim", help="Simulation whose degraded memories to score again")):
    """Score again the memories stored while the LLM was down (fallback
    importance, or no vector), now that it is back; the corrected records
    replace them in the read model (same memory ids)."""
    from processors.rescore import run

    try:
        typer.echo(json.dumps(run(get_settings(), sim)))
    except MurmurError as exc:
        fail(str(exc))


def _case(case: Path, seed: int, agents: int, rounds: int):
    from eval.runner import CaseSpec

    if not case.is_dir():
        fail(f"{case}: not a folder (an eval case holds seed.md, question.md, truth.json)", 2)
    return CaseSpec(case.resolve(), seed=seed, agents=agents, rounds=rounds)


@eval_app.command("run")
def eval_run(
    case: list[Path] = typer.Option(..., "--case", help="Eval case folder (repeatable)"),
    seed: int = typer.Option(42), agents: int = typer.Option(40, min=2, max=100_000),
    rounds: int = typer.Option(8, min=1, max=10_000),
    out: Optional[Path] = typer.Option(None, help="JSONL file to append results to (default .murmur/eval/results.jsonl)"),
):
    """Publish each case, replay it with the deterministic LLM, score, store."""
    from eval.runner import run_case

    settings = get_settings()
    target = out or settings.state_dir / "eval" / "results.jsonl"
    rows = []
    for c in case:
        try:
            body = run_case(settings, _case(c, seed, agents, rounds), out_file=target)
        except (MurmurError, FileNotFoundError, ValueError) as exc:
            fail(str(exc))
        rows.append(body)
    typer.echo(f"{'case':36} {'verdict':9} {'ratio':>7} {'conf':>6} {'truth':9} {'dir':>4} {'magerr':>7} {'calib':>6} {'composite':>9} {'gen':>7}")
    for b in rows:
        v, s = b["verdict"], b["score"]
        typer.echo(f"{b['case'][:36]:36} {v['direction']:9} {v['support_ratio']:+7.3f} {v['confidence']:6.3f} "
                   f"{b['truth']['direction']:9} {s['direction_match']:4.0f} {s['magnitude_error']:7.3f} "
                   f"{s['calibration']:6.3f} {s['composite']:9.3f} {b['generator']['mean_weighted_stance']:+7.3f}")
    typer.echo(f"results appended to {target}")


@eval_app.command("ablation")
def eval_ablation(
    case: Path = typer.Option(..., "--case"), seed: int = typer.Option(42),
    agents: int = typer.Option(40, min=2, max=100_000), rounds: int = typer.Option(8, min=1, max=10_000),
):
    """Re-score a case with features switched off; print the change against the baseline."""
    from eval.runner import run_ablation

    try:
        rows = run_ablation(get_settings(), _case(case, seed, agents, rounds))
    except (MurmurError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"{case.name}")
    typer.echo(f"{'variant':28} {'ratio':>8} {'direction':9} {'conf':>6} {'composite':>9} {'d ratio':>8} {'d comp':>8}")
    for r in rows:
        typer.echo(f"{r['variant']:28} {r['support_ratio']:+8.3f} {r['direction']:9} {r['confidence']:6.3f} "
                   f"{r['composite']:9.3f} {r['d_support_ratio']:+8.3f} {r['d_composite']:+8.3f}")


@eval_app.command("compare")
def eval_compare(
    sim: str = typer.Option(..., "--sim", help="The simulation both runs processed"),
    namespace: str = typer.Option(..., "--namespace", help="The run under study: a replay's namespace "
                                                           "(as given to `murmur replay --namespace`)"),
    against: Optional[str] = typer.Option(None, "--against", help="The reference run's namespace (default: the live "
                                                                  "run, MURMUR_NAMESPACE or none)"),
    as_json: bool = typer.Option(False, "--json", help="Print the whole comparison as one JSON object"),
    all_rounds: bool = typer.Option(False, "--all-rounds", help="List every round's verdict, not only the differing "
                                                                "ones, when there are more than 40"),
    examples: int = typer.Option(5, min=0, max=1000, help="Examples of differing rows to show per kind"),
    fail_on_difference: bool = typer.Option(False, "--fail-on-difference", help="Exit 1 when the runs differ "
                                                                                "(default: 0 once compared)"),
):
    """Two runs of one simulation side by side: per-round verdicts, memories,
    reflections and conflicts that differ, LLM calls and tokens of each.
    Exit 0 once compared, 1 with --fail-on-difference when they differ,
    2 when a namespace or the simulation is missing."""
    from eval.run_reader import MissingRun, compare
    from eval.side_by_side import render

    try:
        report = compare(get_settings(), sim, namespace, against, examples=examples)
    except MissingRun as exc:
        fail(str(exc), 2)
    except MurmurError as exc:
        fail(str(exc))
    typer.echo(json.dumps(report, default=str) if as_json else render(report, all_rounds=all_rounds))
    if fail_on_difference and not report["equal"]:
        raise typer.Exit(1)


@eval_app.command("stance")
def eval_stance(
    data: Path = typer.Option(..., "--data", help="TweetEval-format folder: <target>/<split>_text.txt and _labels.txt"),
    split: str = typer.Option("val", help="Split to score (train, val, test)"),
    target: Optional[list[str]] = typer.Option(None, "--target", help="NAME=QUESTION: the question a target's posts "
                                                                       "are read against (default: its folder name)"),
    train: bool = typer.Option(False, "--train", help="First train the linear stance model on the train split"),
    held_out: bool = typer.Option(False, "--held-out", help="With --train: score each target with a model trained "
                                                            "on the other targets only"),
    out_format: str = typer.Option("table", "--format", help="table or json"),
    out: Optional[Path] = typer.Option(None, help="JSONL file to append the result to (default .murmur/eval/results.jsonl)"),
    no_store: bool = typer.Option(False, "--no-store", help="Print only: no Kafka, no Cassandra"),
):
    """Score the configured stance model (MURMUR_VERDICT__STANCE_MODEL, or the LLM's fast role with
    MURMUR_LLM__BACKEND=vllm) on labelled posts: macro-F1 of favor and against per target and pooled,
    and each target's verdict against its true balance."""
    from eval import stance_bench

    if out_format not in ("table", "json"):
        fail(f"--format must be table or json, not {out_format!r}", 2)
    if held_out and not train:
        fail("--held-out needs --train", 2)
    questions = {}
    for t in target or []:
        name, sep, text = t.partition("=")
        if not sep or not name.strip() or not text.strip():
            fail(f"--target must be NAME=QUESTION, not {t!r}", 2)
        questions[name.strip()] = text.strip()
    settings = get_settings()
    try:
        result = stance_bench.run(settings, data, split=split, questions=questions, train=train, held_out=held_out)
        if not no_store:
            stance_bench.store(settings, result, out or settings.state_dir / "eval" / "results.jsonl")
    except (MurmurError, FileNotFoundError, ValueError) as exc:
        fail(str(exc))
    typer.echo(json.dumps(result, ensure_ascii=False) if out_format == "json" else stance_bench.table(result))


# -- checkpoints ----------------------------------------------------------------
@checkpoint_app.command("create")
@needs_kafka
def checkpoint_create(processors: str = typer.Option("all"), group: Optional[str] = typer.Option(None),
                      note: str = typer.Option("")):
    """Record the group's committed input offsets and its tables' changelog offsets."""
    from streams import checkpoints as ck

    try:
        record = ck.create(get_settings(), processors=processors, group=group, note=note)
        ck.save(get_settings(), record)
    except (MurmurError, ValueError) as exc:
        fail(str(exc))
    typer.echo(f"{record['event_id']}: {len(record['group_offsets'])} input partitions, "
               f"{len(record['changelog_offsets'])} changelog partitions")


@checkpoint_app.command("list")
@needs_kafka
def checkpoint_list():
    """Every checkpoint on the checkpoints topic: id, sim, round, what it holds."""
    from streams import checkpoints as ck

    for cid, data in sorted(ck.load_all(get_settings()).items()):
        try:
            r = ck.decode(data)
            typer.echo(f"{cid}  v{r['format_version']}  sim={r['sim_id'] or '-'} round={r['round']} "
                       f"inputs={len(r['group_offsets'])} changelogs={len(r['changelog_offsets'])} {r['note']}")
        except MurmurError as exc:
            typer.echo(f"{cid}  unreadable: {exc}")


@checkpoint_app.command("show")
@needs_kafka
def checkpoint_show(checkpoint_id: str = typer.Argument(..., help="As `checkpoint list` prints it")):
    """One checkpoint in full, as JSON: every group's offsets and changelog ends."""
    from streams import checkpoints as ck

    data = ck.load_all(get_settings()).get(checkpoint_id)
    if data is None:
        fail(f"no checkpoint {checkpoint_id!r}; see `murmur checkpoint list`")
    try:
        typer.echo(json.dumps(ck.decode(data), indent=2))
    except MurmurError as exc:
        fail(str(exc))


@checkpoint_app.command("restore")
@needs_kafka
def checkpoint_restore(checkpoint_id: str):
    """Reset a stopped group to a checkpoint: tables cut back to its changelog
    offsets, inputs to its committed offsets; start the workers to catch up."""
    from streams import checkpoints as ck

    try:
        typer.echo(json.dumps(ck.restore(get_settings(), checkpoint_id)))
    except MurmurError as exc:
        fail(str(exc))


@checkpoint_app.command("export")
@needs_kafka
def checkpoint_export(checkpoint_id: str = typer.Argument(..., help="As `checkpoint list` prints it"),
                      out: Path = typer.Option(..., "--out", help="File to write (zstd-compressed Avro, as stored)")):
    """Write one checkpoint to a file, to keep or move elsewhere."""
    from streams import checkpoints as ck

    try:
        typer.echo(f"{ck.export(get_settings(), checkpoint_id, out)} bytes written to {out}")
    except MurmurError as exc:
        fail(str(exc))


def main() -> None:
    from pydantic import ValidationError

    from streams.settings import SettingsSourceError, setting_errors

    try:
        app()
    except ValidationError as exc:  # a bad MURMUR_* setting: say which, before anything starts
        for line in setting_errors(exc):
            typer.secho(f"error: invalid setting {line}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None
    except SettingsSourceError as exc:
        typer.secho(f"error: {exc}", fg=typer.colors.RED, err=True)
        raise SystemExit(2) from None


if __name__ == "__main__":
    main()
