"""The soak: a simulation stream published for a long time through every
processor while faults come in rotation, then the verifier.

A writer appends synthetic simulations to a Murmur JSONL file at a steady
rate (one after another, as a service running many sees them); ``murmur publish --follow`` publishes it; one worker runs every
processor against the local vLLM-like server; the soak itself is the
supervisor (a killed worker or publisher is started again, as systemd or
Kubernetes would). Every ``every`` seconds one fault, kinds in rotation
(``bench/soak_plan.py``): worker SIGKILL, broker restart, Cassandra away,
worker SIGTERM, LLM server away, publisher SIGKILL.

At the end, once the input stopped and the group drained:
* lost 0, duplicated 0, unexpected 0: every post and observation written is
  one row of the read model;
* degraded 0: no memory kept the fallback importance or lacks its vector;
* the read model of the replayed simulations equals a replay of the log
  (``murmur replay --journal strict`` into a namespace of its own);
* the worker's memory (RSS) over each of its lives, its CPU, and the lag,
  sampled every ``sample`` seconds, in the JSON and plotted (PNG beside it).

    python -m bench.soak                                # 30 min at 300 events/s, every kind twice (make soak)
    python -m bench.soak --minutes 3 --rate 60 --every 25 --outage 8 --agents 150 --rounds 8

Writes bench/results/soak.json and soak.png (``--out`` elsewhere).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from bench import soak_plan
from bench.common import ROOT, BenchError, machine, wait_until
from connectors import synthetic
from deploy import jvm, local
from deploy.pipeline import process_log, start_process, stop_process, worker_report
from eval.compare import differences, same, snapshot
from sinks.cassandra_store import CassandraStore
from streams.app import group_id
from streams.kafka import create_topics, group_lag, start_group_at_end
from streams.settings import Settings, get_settings
from streams.topology import input_topics, resolve

CASE = ROOT / "eval" / "cases" / "uk_sugar_levy_2018"
MEMORY_TYPES = ("Post", "Observation")


@dataclass
class Config:
    minutes: float = 30.0
    rate: float = 300.0  # events/s written
    every: float = 0.0  # seconds between faults; 0: every kind twice in the run
    outage: float = 30.0  # how long Cassandra and the LLM server stay away
    # Per simulation: 1,000 agents x 60 rounds is some 79,000 events, so the
    # full run writes seven one after another (as a service running many sees
    # them). One simulation of 3,000 agents outlasting the run crashed the
    # worker at round 70 before the verdict-authors table (processors/verdict.py).
    agents: int = 1000
    rounds: int = 60
    sample: float = 2.0
    # Simulations replayed and compared, the ones most faults fell on first
    # (-1: all; a replay takes about 2 min per 79,000 events here).
    replays: int = 2
    # The worker's group session timeout (MURMUR_FAUST_SESSION_TIMEOUT_S): how
    # long a SIGKILLed worker's partitions wait before its restart gets them.
    session_timeout: float = 15.0
    drain_timeout: float = 1200.0
    out: Path = ROOT / "bench" / "results" / "soak.json"
    kinds: tuple[str, ...] = soak_plan.KINDS


@dataclass
class Written:
    """What the writer put in the file, per simulation: what to expect."""
    memories: dict[str, set[str]] = field(default_factory=dict)
    spans: dict[str, list[float]] = field(default_factory=dict)  # sim -> [first, last] second written
    events: int = 0
    done: threading.Event = field(default_factory=threading.Event)


class Soak:
    def __init__(self, cfg: Config, settings: Settings | None = None, log=print):
        self.cfg, self.log = cfg, log
        self.base = settings or get_settings()
        self.ns = f"soak{uuid.uuid4().hex[:6]}"
        self.settings = self.base.model_copy(update={"namespace": self.ns})
        self.work = self.base.state_dir / "soak" / self.ns
        self.input = self.work / f"{self.ns}.jsonl"  # the name keys the publisher's stored position
        self.llm_port = _free_port()
        self.written = Written()
        self.samples: list[dict] = []
        self.faults: list[dict] = []
        self.unplanned: list[dict] = []  # processes found dead that no fault killed
        self.publisher_summaries: list[dict] = []
        self.t0 = time.monotonic()
        self._stop = threading.Event()
        self._busy = threading.Lock()  # a fault in progress: the supervisor keeps off
        self.group = group_id(self.settings, "all")
        self.inputs = input_topics(self.settings, resolve("all"))

    # -- the processes ---------------------------------------------------------

    def now(self) -> float:
        return time.monotonic() - self.t0

    @property
    def worker_name(self) -> str:
        return f"soak-worker-{self.ns}"

    @property
    def publisher_name(self) -> str:
        return f"soak-publisher-{self.ns}"

    @property
    def llm_name(self) -> str:
        return f"soak-llm-{self.ns}"

    def llm_env(self) -> dict[str, str]:
        url = f"http://127.0.0.1:{self.llm_port}/v1"
        env = {"MURMUR_LLM__BACKEND": "vllm", "MURMUR_LLM__EMBED_BACKEND": "vllm"}
        env.update({f"MURMUR_LLM__{role}__URL": url for role in ("FAST", "BALANCED", "HEAVY", "EMBED")})
        return env

    def llm_settings(self, namespace: str) -> Settings:
        """The worker's LLM settings, for the replay (same models: the journal's fingerprints)."""
        url = f"http://127.0.0.1:{self.llm_port}/v1"
        llm = self.base.llm.model_copy(update={
            "backend": "vllm", "embed_backend": "vllm",
            **{r: getattr(self.base.llm, r).model_copy(update={"url": url}) for r in ("fast", "balanced", "heavy", "embed")}})
        return self.base.model_copy(update={"namespace": namespace, "llm": llm})

    def pid(self, name: str) -> int | None:
        pid = jvm.read_pid(self.base.state_dir / "run" / f"{name}.pid")
        return pid if pid is not None and jvm.alive(pid) else None

    def start_llm(self) -> None:
        run = self.base.state_dir / "run"
        run.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "streams.llm.devserver", "--port", str(self.llm_port), "--latency-ms", "20",
               "--capacity", "256"]
        jvm.start_detached(cmd, log_file=run / f"{self.llm_name}.log", pid_file=run / f"{self.llm_name}.pid",
                           cwd=ROOT, env=dict(os.environ))
        wait_until(lambda: _http_ok(f"http://127.0.0.1:{self.llm_port}/health"), timeout=60, what="the LLM server",
                   every=1.0)

    def start_worker(self) -> int:
        env = {**os.environ, "MURMUR_NAMESPACE": self.ns, "MURMUR_METRICS_PORT": "0",
               "MURMUR_FAUST_SESSION_TIMEOUT_S": str(self.cfg.session_timeout), **self.llm_env()}
        return start_process(self.base, self.worker_name, ["worker", "--processors", "all", "--loglevel", "info"], env=env)

    def start_publisher(self) -> int:
        # The idle timeout ends it once the writer stops (a JSONL run has no end marker).
        args = ["publish", str(self.input), "--follow", "--poll-interval", "0.2", "--idle-timeout",
                str(max(15.0, self.cfg.outage)), "--format", "json"]
        return start_process(self.base, self.publisher_name, args, env=dict(os.environ))

    # -- the input ---------------------------------------------------------------

    def write(self) -> None:
        """Simulations one after another, ``rate`` events a second, until the run's end."""
        end = self.cfg.minutes * 60
        sims = 0
        with self.input.open("ab") as fh:
            while not self._stop.is_set() and self.now() < end:
                sim = f"{self.ns}-s{sims}"
                run = synthetic.generate(CASE, sim_id=sim, seed=sims, agents=self.cfg.agents, rounds=self.cfg.rounds)
                sims += 1
                self.written.memories[sim] = {e.record["event_id"] for e in run.events if e.type_name in MEMORY_TYPES}
                self.written.spans[sim] = [self.now(), self.now()]
                lines = [json.dumps({"type": e.type_name, **e.record}).encode() + b"\n" for e in run.events]
                i = 0
                while i < len(lines) and self.now() < end:
                    due = int(self.cfg.rate * self.now()) - self.written.events
                    if due > 0:
                        chunk = lines[i:i + due]
                        fh.write(b"".join(chunk))
                        fh.flush()
                        i += len(chunk)
                        self.written.events += len(chunk)
                        self.written.spans[sim][1] = self.now()
                    time.sleep(0.05)
                if i < len(lines):  # the run ended mid-simulation: expect only what was written
                    self.written.memories[sim] = {e.record["event_id"] for e in run.events[:i]
                                                  if e.type_name in MEMORY_TYPES}
        self.written.done.set()

    # -- sampling and supervision ---------------------------------------------------

    def sample_loop(self) -> None:
        import psutil

        procs: dict[int, psutil.Process] = {}
        last_lag_at = 0.0
        while not self._stop.is_set():
            lag, by_topic = None, None  # measured in this sample, or none (never the last figure again)
            pid = self.pid(self.worker_name)
            rss = cpu = None
            if pid is not None:
                try:
                    p = procs.get(pid) or procs.setdefault(pid, psutil.Process(pid))
                    rss = p.memory_info().rss / 2**20
                    cpu = p.cpu_percent(None)  # since the last sample of this process (first: 0)
                except psutil.Error:
                    pid = None
            if self.now() - last_lag_at >= max(self.cfg.sample, 5.0):  # an admin round trip: not every sample
                last_lag_at = self.now()
                try:
                    # Quiet: while the broker restarts, librdkafka would log every refused connect.
                    parts = group_lag(self.settings, self.group, self.inputs, log_level=0, error_cb=lambda err: None)
                    lag = sum(p.lag for p in parts)
                    by_topic = {}
                    for p in parts:
                        if p.lag:
                            by_topic[p.topic] = by_topic.get(p.topic, 0) + p.lag
                except Exception:  # the broker is away: no figure, not a zero
                    lag = None
            self.samples.append({"t": round(self.now(), 2), "pid": pid, "rss_mb": None if rss is None else round(rss, 1),
                                 "cpu_pct": cpu, "lag": lag, "lag_by_topic": by_topic,
                                 "written": self.written.events})
            self._stop.wait(self.cfg.sample)

    def supervise(self) -> None:
        """Start again what died without a fault (and record it: it should not happen)."""
        if not self._busy.acquire(blocking=False):
            return
        try:
            self.supervise_worker()
            if self.pid(self.publisher_name) is None and not self.written.done.is_set():
                self.unplanned.append({"t": round(self.now(), 1), "process": "publisher",
                                       "log": process_log(self.base, self.publisher_name, 40)})
                self.log(f"[{self.now():7.1f}s] publisher found dead: restarting it")
                self._collect_summary()
                stop_process(self.base, self.publisher_name, timeout=5)
                self.start_publisher()
        finally:
            self._busy.release()

    def _collect_summary(self) -> None:
        """The publisher's last JSON line on stdout (its summary), if it printed one."""
        for line in reversed(process_log(self.base, self.publisher_name, 400).splitlines()):
            try:
                found = json.loads(line)
            except ValueError:
                continue
            if isinstance(found, dict) and "stopped_by" in found:
                if found not in self.publisher_summaries:
                    self.publisher_summaries.append(found)
                return

    # -- faults ------------------------------------------------------------------

    def inject(self, kind: str) -> dict:
        started = self.now()
        detail: dict = {}
        with self._busy:
            pid = self.pid(self.worker_name)
            if kind.startswith("worker_") and pid is None:  # died on its own: the supervisor's restart is late
                self.supervise_worker()
                pid = self.pid(self.worker_name)
            if kind == "worker_sigkill":
                os.kill(pid, signal.SIGKILL)
                jvm.wait_for(lambda: not jvm.alive(pid), 10)
                time.sleep(3)  # a supervisor's restart delay
                stop_process(self.base, self.worker_name, timeout=5)
                detail["new_pid"] = self.start_worker()
            elif kind == "worker_sigterm":
                t = time.monotonic()
                os.kill(pid, signal.SIGTERM)
                exited = jvm.wait_for(lambda: not jvm.alive(pid), 60)
                detail.update(exited_cleanly=exited, exit_s=round(time.monotonic() - t, 1))
                stop_process(self.base, self.worker_name, timeout=5)  # SIGKILL when the grace period is over
                detail["new_pid"] = self.start_worker()
            elif kind == "broker_restart":
                local.restart(self.base, "kafka", log=lambda m: None)
            elif kind == "cassandra_away":
                local.down(self.base, ["cassandra"], log=lambda m: None)
                time.sleep(self.cfg.outage)
                local.up(self.base, ["cassandra"], log=lambda m: None)
            elif kind == "llm_away":
                stop_process(self.base, self.llm_name, timeout=5)
                time.sleep(self.cfg.outage)
                self.start_llm()
            elif kind == "publisher_kill":
                pid = self.pid(self.publisher_name)
                if pid is not None:
                    os.kill(pid, signal.SIGKILL)
                    jvm.wait_for(lambda: not jvm.alive(pid), 10)
                    detail["written_at_kill"] = self.written.events
                stop_process(self.base, self.publisher_name, timeout=5)
                self.start_publisher()
            else:
                raise ValueError(f"unknown fault {kind!r}")
        out = {"kind": kind, "at_s": round(started, 1), "took_s": round(self.now() - started, 1), **detail}
        self.log(f"[{started:7.1f}s] {kind}: back after {out['took_s']} s {detail or ''}")
        return out

    # -- the run ---------------------------------------------------------------

    def run(self) -> dict:
        cfg = self.cfg
        every = cfg.every or soak_plan.interval_for(cfg.minutes * 60, kinds=cfg.kinds)
        plan = soak_plan.schedule(cfg.minutes * 60, every, cfg.kinds)
        self.work.mkdir(parents=True, exist_ok=True)
        local.up(self.base, ["kafka", "cassandra"], log=lambda m: None)
        info = machine(self.base)
        create_topics(self.settings, namespace=self.ns)
        start_group_at_end(self.settings, self.group, self.inputs)
        self.input.touch()
        self.start_llm()
        self.start_worker()
        self.start_publisher()
        self.log(f"soak {self.ns}: {cfg.minutes} min at {cfg.rate:.0f} events/s, {len(plan)} faults every {every:.0f} s")
        self.t0 = time.monotonic()
        threads = [threading.Thread(target=self.write, daemon=True), threading.Thread(target=self.sample_loop, daemon=True)]
        for t in threads:
            t.start()
        try:
            for at, kind in plan:
                while self.now() < at:
                    self.supervise()
                    time.sleep(1)
                self.faults.append(self.inject(kind))
            while not self.written.done.is_set():
                self.supervise()
                time.sleep(1)
            input_end = self.now()
            self.wait_end()
            caught_up = self.now()
            verdict = self.verify(every, plan, info, input_end, caught_up)
        finally:
            self._stop.set()
            for name in (self.publisher_name, self.worker_name, self.llm_name):
                stop_process(self.base, name, timeout=30)
        self.write_results(verdict)
        return verdict

    def wait_end(self) -> None:
        """The publisher stops by itself (idle timeout); the worker drains."""
        name = self.publisher_name
        wait_until(lambda: self.pid(name) is None, timeout=self.cfg.drain_timeout,
                   what="the publisher to stop at its idle timeout", every=1.0, alive=self.supervise_worker)
        self._collect_summary()
        streak = [0]

        def drained() -> bool:
            lag = group_lag(self.settings, self.group, self.inputs, log_level=0, error_cb=lambda err: None)
            streak[0] = streak[0] + 1 if lag and all(p.lag == 0 for p in lag) else 0
            return streak[0] >= 3

        try:
            wait_until(drained, timeout=self.cfg.drain_timeout, what="the worker's group to drain", every=2.0,
                       alive=self.supervise_worker)
        except BenchError as exc:
            # The worker's books and stacks (SIGUSR1): why it did not drain.
            report = worker_report(self.base, self.worker_name, self.pid(self.worker_name))
            raise BenchError(f"{exc}; the worker's log read:\n{report}") from exc

    def supervise_worker(self) -> None:
        if self.pid(self.worker_name) is None:
            self.unplanned.append({"t": round(self.now(), 1), "process": "worker",
                                   "log": process_log(self.base, self.worker_name, 40)})
            stop_process(self.base, self.worker_name, timeout=5)
            self.start_worker()

    # -- the verifier ---------------------------------------------------------------

    def verify(self, every: float, plan, info: dict, input_end: float, caught_up: float) -> dict:
        store = CassandraStore(self.settings)
        per_sim, totals = {}, {"expected": 0, "rows": 0, "lost": 0, "duplicated": 0, "unexpected": 0, "degraded": 0}
        try:
            for sim, want in self.written.memories.items():
                rows = [m for a in store.agents(sim) for m in store.memories(sim, a, limit=1_000_000)
                        if m["kind"] in ("post", "observation")]
                got = {m["memory_id"] for m in rows}
                r = {"expected": len(want), "rows": len(rows), "lost": len(want - got),
                     "duplicated": len(rows) - len(got), "unexpected": len(got - want),
                     "degraded": sum(1 for m in rows if m["importance_fallback"] or (not m["embedder"] and m["content"]))}
                per_sim[sim] = r
                for k in totals:
                    totals[k] += r[k]
            replayed = self.replay_and_compare(store, plan)
        finally:
            store.close()
        kinds = {k: sum(1 for f in self.faults if f["kind"] == k) for k in self.cfg.kinds}
        ok = (totals["lost"] == 0 and totals["duplicated"] == 0 and totals["unexpected"] == 0
              and totals["degraded"] == 0 and all(r["same"] for r in replayed) and not self.unplanned)
        return {
            "namespace": self.ns, "ok": ok, "config": {**{k: v for k, v in self.cfg.__dict__.items() if k not in ("out", "kinds")},
                                                      "every_s": round(every, 1), "kinds": list(self.cfg.kinds)},
            "machine": info, "events_written": self.written.events, "simulations": len(self.written.memories),
            "input_end_s": round(input_end, 1), "caught_up_s": round(caught_up, 1),
            "catch_up_after_input_end_s": round(caught_up - input_end, 1),
            "faults": self.faults, "faults_by_kind": kinds, "unplanned_restarts": self.unplanned,
            "publisher_summaries": self.publisher_summaries,
            "verifier": totals, "per_sim": per_sim, "replays": replayed,
            **memory_figures(self.samples),
            "cpu_pct_median": _median([s["cpu_pct"] for s in self.samples if s["cpu_pct"]]),
            "lag_max": max((s["lag"] for s in self.samples if s["lag"] is not None), default=None),
            "samples": self.samples,
        }

    def replay_and_compare(self, store: CassandraStore, plan) -> list[dict]:
        """Replay the simulations the most faults fell on, compare their read models."""
        from eval.replay import replay_sim

        def hits(sim: str) -> int:
            first, last = self.written.spans[sim]
            return sum(1 for f in self.faults if first <= f["at_s"] <= last + 60)

        sims = sorted(self.written.memories, key=lambda s: (-hits(s), s))
        if self.cfg.replays >= 0:
            sims = sims[:self.cfg.replays]
        out = []
        for i, sim in enumerate(sims):
            ns = f"{self.ns}r{i}"
            t = time.monotonic()
            summary = replay_sim(self.llm_settings(self.ns), sim, namespace=ns, journal="strict")
            replay_store = CassandraStore(self.base.model_copy(update={"namespace": ns}))
            try:
                diff = differences(snapshot(replay_store, sim), snapshot(store, sim))
            finally:
                replay_store.close()
            out.append({"sim": sim, "faults_during": hits(sim), "namespace": ns, "same": same(diff),
                        "replay_s": round(time.monotonic() - t, 1), "journal": summary.get("journal"),
                        "events": summary["events"], "differences": diff})
            self.log(f"replay of {sim} ({hits(sim)} faults during it): read model "
                     f"{'equal' if same(diff) else 'DIFFERENT'} ({summary['events']} events, {out[-1]['replay_s']} s)")
        return out

    def write_results(self, verdict: dict) -> None:
        out = self.cfg.out
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(json.dumps(verdict, indent=1, default=str))
        plot(verdict, out.with_suffix(".png"))
        self.log(f"wrote {out} and {out.with_suffix('.png')}")


def memory_figures(samples: list[dict]) -> dict:
    """The worker's RSS judged per life (``rss``) and over the whole run
    across its restarts (``rss_run``), from the samples (bench/soak_plan.py)."""
    from bench.soak_plan import flat, run_flat, run_trend, trends

    run = run_trend(samples)
    return {"rss": [dict(t.as_dict(), flat=flat(t)) for t in trends(samples)],
            "rss_run": dict(run.as_dict(), flat=run_flat(run)) if run else None}


def reanalyse(path: Path) -> dict:
    """A results file's memory figures recomputed from its samples by this
    version of the analysis (the file and its plot are rewritten)."""
    result = json.loads(path.read_text())
    result.update(memory_figures(result["samples"]))
    path.write_text(json.dumps(result, indent=1, default=str))
    plot(result, path.with_suffix(".png"))
    return result


def plot(result: dict, path: Path) -> None:
    """Lag, worker RSS and CPU over time, one panel each, faults marked."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    s = result["samples"]
    minutes = [x["t"] / 60 for x in s]
    fig, axes = plt.subplots(3, 1, figsize=(11, 8), sharex=True)
    panels = (("lag", "consumer lag (messages)"), ("rss_mb", "worker RSS (MiB)"), ("cpu_pct", "worker CPU (%)"))
    for ax, (key, label) in zip(axes, panels):
        if key == "lag":  # measured every few samples, and not while the broker was away
            ax.plot([x["t"] / 60 for x in s if x[key] is not None], [x[key] for x in s if x[key] is not None], lw=0.9)
        else:
            ax.plot(minutes, [x[key] if x[key] is not None else float("nan") for x in s], lw=0.9)
        ax.set_ylabel(label)
        ax.grid(alpha=0.3)
        for f in result["faults"]:
            ax.axvline(f["at_s"] / 60, color="tab:red", alpha=0.35, lw=0.8)
    for f in result["faults"]:
        axes[0].annotate(f["kind"].replace("_", " "), (f["at_s"] / 60, 1), xycoords=("data", "axes fraction"),
                         rotation=90, fontsize=7, va="top", ha="right", color="tab:red")
    axes[-1].set_xlabel("minutes")
    v = result["verifier"]
    fig.suptitle(f"soak {result['config']['minutes']} min at {result['config']['rate']:.0f} events/s: "
                 f"lost {v['lost']}, duplicated {v['duplicated']}, degraded {v['degraded']}", fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _median(values: list[float]) -> float | None:
    import statistics

    return round(statistics.median(values), 1) if values else None


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _http_ok(url: str) -> bool:
    import httpx

    try:
        return httpx.get(url, timeout=2).status_code == 200
    except httpx.HTTPError:
        return False


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    d = Config()
    p.add_argument("--minutes", type=float, default=d.minutes)
    p.add_argument("--rate", type=float, default=d.rate, help="events/s written")
    p.add_argument("--every", type=float, default=d.every, help="seconds between faults (0: every kind twice)")
    p.add_argument("--outage", type=float, default=d.outage, help="seconds Cassandra and the LLM server stay away")
    p.add_argument("--agents", type=int, default=d.agents, help="agents per simulation")
    p.add_argument("--rounds", type=int, default=d.rounds, help="rounds per simulation")
    p.add_argument("--replays", type=int, default=d.replays, help="simulations replayed and compared (-1: all)")
    p.add_argument("--out", type=Path, default=d.out)
    p.add_argument("--reanalyse", type=Path, metavar="RESULTS",
                   help="recompute the memory figures of a results file from its samples; no run")
    a = p.parse_args(argv)
    if a.reanalyse:
        try:
            result = reanalyse(a.reanalyse)
        except (OSError, ValueError, KeyError, TypeError) as exc:  # a missing file, not JSON, no samples
            p.error(f"--reanalyse {a.reanalyse}: not a soak results file ({type(exc).__name__}: {exc})")
        print(json.dumps({k: result[k] for k in ("rss", "rss_run")}, indent=1))
        return 0
    if a.minutes <= 0 or a.rate <= 0 or a.every < 0 or a.outage < 0 or a.agents < 1 or a.rounds < 1:
        p.error("--minutes, --rate, --agents and --rounds must be positive; --every and --outage not negative")
    cfg = Config(minutes=a.minutes, rate=a.rate, every=a.every, outage=a.outage, agents=a.agents, rounds=a.rounds,
                 replays=a.replays, out=a.out)
    result = Soak(cfg).run()
    keep = ("ok", "events_written", "simulations", "faults_by_kind", "verifier", "catch_up_after_input_end_s", "rss",
            "rss_run", "cpu_pct_median", "lag_max")
    print(json.dumps({k: result[k] for k in keep}, indent=1))
    print(json.dumps([{k: r[k] for k in ("sim", "faults_during", "same", "replay_s", "events")} for r in result["replays"]]))
    return 0 if result["ok"] else 1


if __name__ == "__main__":
    sys.exit(main())
