"""Publish from inside a simulation's loop, the way memory layers such as Mem0
and Zep are called: one object per simulation, a method per thing that
happened.

    from connectors.client import SimulationPublisher

    with SimulationPublisher("town-hall-7", platform="twitter", question="Will the plan pass?") as pub:
        pub.persona(3, name="Ana", bio="local journalist", stance=0.4)
        pub.round_start(1)
        pub.post(3, "The plan is a disaster", round=1, post_id=9)
        pub.action(4, "QUOTE_POST", {"quoted_id": 9, "new_post_id": 10, "quote_content": "agreed"}, round=1)
        pub.observation(5, "LIKE_POST", round=1, post_id=9)
        pub.round_end(1)                           # also waits until Kafka has it all
        pub.sync_oasis("twitter_simulation.db")    # or: every trace row OASIS wrote since the last call

Every call goes through the same path as ``murmur publish`` on a MiroFish log:
the same reader (a call is one action line), the same validation, the same
dead-letter topic for what cannot be published, the same deterministic ids.
Pass ``ts`` (your simulated clock, ISO 8601 or epoch ms) to make a re-run
produce the same ids; without it the wall clock is used. Calls send without
waiting; ``round_end``, ``flush`` and leaving the ``with`` block wait until
Kafka acknowledged everything.
"""

from __future__ import annotations

import json
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable

from connectors import mirofish, mirofish_config, profiles
from connectors.events import Counts, Item, OutEvent
from connectors.publisher import Publisher
from connectors.sources import TraceSource
from streams.settings import Settings, get_settings
from streams.topics import PERSONAS, agent_key


class SimulationPublisher:
    def __init__(self, sim: str, *, platform: str = "twitter", question: str | None = None,
                 settings: Settings | None = None, dry_run: bool = False,
                 on_error: Callable[[str], None] | None = None) -> None:
        if not sim:
            raise ValueError("a simulation id is required")
        self.sim = sim
        self.platform = platform
        self._publisher = Publisher(settings or get_settings(), dry_run=dry_run, on_error=on_error)
        self._parser = mirofish.LineParser(sim_id=sim, platform=platform, label=f"client:{sim}")
        self._calls = 0
        self._oasis: dict[Path, TraceSource] = {}
        if question:
            cfg = mirofish_config.SimConfig(None, question=question, question_from="SimulationPublisher(question=...)")
            self._send([mirofish_config.simulation_event(cfg, sim_id=sim, platforms=[platform], source="client")])

    # -- what happened ---------------------------------------------------------
    def action(self, agent_id: int | str, action_type: str, args: dict | None = None, *, round: int,
               agent_name: str = "", ts: str | int | None = None, platform: str | None = None) -> str | None:
        """Any action, as MiroFish logs it (``action_type`` and ``action_args``).
        Returns the event id, or None when it was skipped or dead-lettered."""
        line = {"round": round, "timestamp": ts if ts is not None else _now(), "agent_id": agent_id,
                "agent_name": agent_name, "action_type": action_type, "action_args": args or {}}
        if platform:
            line["platform"] = platform
        return self._line(line)

    def post(self, agent_id: int | str, text: str, *, round: int, post_id: int | str | None = None,
             **kw: Any) -> str | None:
        return self.action(agent_id, "CREATE_POST", _args(content=text, post_id=post_id), round=round, **kw)

    def comment(self, agent_id: int | str, text: str, *, on_post: int | str, round: int,
                comment_id: int | str | None = None, **kw: Any) -> str | None:
        return self.action(agent_id, "CREATE_COMMENT", _args(content=text, post_id=on_post, comment_id=comment_id),
                           round=round, **kw)

    def quote(self, agent_id: int | str, text: str | None, *, quoted: int | str, round: int,
              post_id: int | str | None = None, **kw: Any) -> str | None:
        return self.action(agent_id, "QUOTE_POST", _args(quote_content=text, quoted_id=quoted, new_post_id=post_id),
                           round=round, **kw)

    def repost(self, agent_id: int | str, *, reposted: int | str, round: int, post_id: int | str | None = None,
               **kw: Any) -> str | None:
        return self.action(agent_id, "REPOST", _args(reposted_id=reposted, new_post_id=post_id), round=round, **kw)

    def observation(self, agent_id: int | str, action_type: str, *, round: int, post_id: int | str | None = None,
                    text: str | None = None, **kw: Any) -> str | None:
        """A private experience: LIKE_POST (``post_id``), SEARCH_POSTS (``text``: the query), ..."""
        return self.action(agent_id, action_type, _args(post_id=post_id, query=text), round=round, **kw)

    def persona(self, agent_id: int | str, *, name: str = "", bio: str = "", stance: float = 0.0,
                archetype: str | None = None, mbti: str | None = None, platform: str | None = None) -> str | None:
        """Who the agent is: its stance toward the question (-1..1) and an
        archetype (normal, media, expert, bot, troll) set its weight."""
        agent = f"{platform or self.platform}-{agent_id}"
        over = {"initial_stance": stance, **({"archetype": archetype} if archetype else {})}
        record = profiles.persona(self.sim, agent, name, bio, mbti, "client", over, source="client")
        return self._send([OutEvent(PERSONAS, agent_key(self.sim, agent), record, "client")])

    def round_start(self, round: int, *, ts: str | int | None = None) -> str | None:
        return self._line({"event_type": "round_start", "round": round, "timestamp": ts if ts is not None else _now()})

    def round_end(self, round: int, *, actions_count: int | None = None, ts: str | int | None = None) -> str | None:
        """Closes the round (the verdict is computed at each round end) and
        waits until Kafka has everything sent so far."""
        line = {"event_type": "round_end", "round": round, "timestamp": ts if ts is not None else _now()}
        if actions_count is not None:
            line["actions_count"] = actions_count
        event_id = self._line(line)
        self.flush()
        return event_id

    def end(self, *, total_rounds: int | None = None, ts: str | int | None = None) -> str | None:
        line = {"event_type": "simulation_end", "timestamp": ts if ts is not None else _now()}
        if total_rounds is not None:
            line["total_rounds"] = total_rounds
        event_id = self._line(line)
        self.flush()
        return event_id

    def sync_oasis(self, database: str | Path, *, round_minutes: int = 60) -> int:
        """Publish the trace rows an OASIS database gained since the last
        call (call it after each ``env.step()``); returns how many were read."""
        path = Path(database)
        if path not in self._oasis:
            self._oasis[path] = TraceSource(path, name=path.name, sim_id=self.sim, platform=None,
                                            round_minutes=round_minutes)
        polled = self._oasis[path].poll(complete=False)
        self._publisher.publish(polled.items, flush=False)
        self.flush()
        return sum(1 for i in polled.items if not (isinstance(i, OutEvent) and i.derived))

    # -- delivery --------------------------------------------------------------
    def flush(self) -> None:
        self._publisher.flush()

    @property
    def counts(self) -> Counts:
        """What was published, skipped and dead-lettered so far."""
        return self._publisher.counts

    def close(self) -> None:
        for src in self._oasis.values():
            self._publisher.publish(src.poll(complete=True).items, flush=False)
            src.reader.close()
        self.flush()

    def __enter__(self) -> "SimulationPublisher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _line(self, line: dict) -> str | None:
        self._calls += 1
        item = self._parser.line(json.dumps(line, ensure_ascii=False, default=str).encode(), self._calls)
        return self._send([item] if item is not None else [])

    def _send(self, items: list[Item]) -> str | None:
        before = self._publisher.counts.total_published
        self._publisher.publish(items, flush=False)
        published = self._publisher.counts.total_published > before
        return items[-1].record["event_id"] if published and isinstance(items[-1], OutEvent) else None


def _args(**kw: Any) -> dict:
    return {k: v for k, v in kw.items() if v is not None}


def _now() -> str:
    return datetime.now(timezone.utc).isoformat()
