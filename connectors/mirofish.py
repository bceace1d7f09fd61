"""MiroFish's ``actions.jsonl`` -> Murmur events.

Action lines ``{round, timestamp, agent_id, agent_name, action_type,
action_args, result, success}`` become Posts, Observations or a counted skip
(see :mod:`connectors.actions`); event lines (``event_type``) become
RoundMarkers.

* Platform: a line's own ``platform`` field (older loggers and forks write
  one file for both platforms), else the file's folder
  (``<sim>/<platform>/actions.jsonl``). Agent ids are per platform.
* Quotes and reposts that carry ids only are resolved against the posts seen
  earlier in the simulation (and an OASIS database beside the log, if any).
* Event ids hash the line itself: an exact duplicate line is the same event,
  skipped and counted; republishing a file re-sends the same ids.

Liberal in what it accepts, strict in what it publishes: a line that cannot be
read faithfully is a BadLine naming the field, never a guess.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from connectors.actions import (KNOWN_ACTIONS, SKIP_ACTIONS, Action, ActionError, PostIndex, Ref, to_event)
from connectors.events import BadLine, Item, OutEvent, Skipped
from connectors.timeparse import to_ms
from streams.ids import stable_id
from streams.topics import ROUNDS, sim_key

MARKER_KINDS = {"round_start", "round_end", "simulation_start", "simulation_end"}
PLATFORMS = {"twitter", "reddit"}
SOURCE = "mirofish"

LineError = ActionError  # a line's error names its field like an action's


def platform_of(path: Path, explicit: str | None = None) -> str:
    """MiroFish writes ``<sim>/<platform>/actions.jsonl``."""
    if explicit:
        return explicit
    parent = path.parent.name.lower()
    return parent if parent in PLATFORMS else "unknown"


class LineParser:
    """The lines of one file, in order. Keeps what later lines depend on: the
    last event time (markers without a timestamp take it) and the lines seen
    (exact duplicates); posts go to the simulation's shared ``index``."""

    def __init__(self, *, sim_id: str, platform: str, index: PostIndex | None = None, label: str = "") -> None:
        self.sim_id = sim_id
        self.platform = platform
        self.index = index if index is not None else PostIndex()
        self.label = label
        self.last_ts = 0
        self._seen: dict[bytes, int] = {}
        self.ended: set[str] = set()  # platforms whose simulation_end this file carried

    def line(self, raw: bytes, lineno: int) -> Item | None:
        """One line -> one item (None for a blank line)."""
        ref = f"{self.label}:{lineno}"
        stripped = raw.strip()
        if not stripped:
            return None
        try:
            obj = json.loads(stripped)
            if not isinstance(obj, dict):
                raise LineError(f"expected a JSON object, got {type(obj).__name__}")
            return self.obj(obj, ref, lineno=lineno)
        except json.JSONDecodeError as exc:
            return BadLine(ref, f"invalid JSON: {exc.msg} at column {exc.colno}", bytes(raw), sim_id=self.sim_id)
        except UnicodeDecodeError as exc:
            return BadLine(ref, f"invalid UTF-8 at byte {exc.start}", bytes(raw), sim_id=self.sim_id)
        except LineError as exc:
            return BadLine(ref, str(exc), bytes(raw), field=exc.field, sim_id=self.sim_id)

    def obj(self, obj: dict, ref: str, *, lineno: int | None = None) -> Item:
        """One parsed line (also what the engine client sends). Raises
        LineError for a line that cannot be published faithfully."""
        plat = self._platform(obj)
        canonical = json.dumps(obj, sort_keys=True, ensure_ascii=False)
        digest = hashlib.blake2b(canonical.encode(), digest_size=16).digest()
        if digest in self._seen:
            return Skipped(ref, "duplicate line")
        self._seen[digest] = None
        event_id = stable_id(SOURCE, self.sim_id, plat, canonical)
        if "event_type" in obj:
            item = self._marker(obj, plat, event_id, ref)
        else:
            item = self._action(obj, plat, event_id, ref)
        if isinstance(item, OutEvent):
            self.last_ts = item.record["ts"]
        return item

    def _platform(self, obj: dict) -> str:
        value = obj.get("platform")
        if value is None:
            return self.platform
        if not isinstance(value, str) or not value.strip():
            raise LineError(f"expected a platform name, got {value!r:.40}", "platform")
        return value.strip().lower()

    def _marker(self, obj: dict, plat: str, event_id: str, ref: str) -> OutEvent:
        kind = obj.get("event_type")
        if not isinstance(kind, str) or kind not in MARKER_KINDS:
            raise LineError(f"unknown event_type {kind!r}; expected one of {sorted(MARKER_KINDS)}", "event_type")
        if kind in ("round_start", "round_end"):
            rnd = _round(obj)
        else:
            rnd = (_opt_int(obj, "total_rounds") or 0) if kind == "simulation_end" else 0
        record = {
            "event_id": event_id, "sim_id": self.sim_id, "round": rnd,
            # Some versions omit timestamps on event lines: the last action's
            # time keeps event time monotonic and deterministic.
            "ts": _ts(obj, fallback=self.last_ts), "kind": kind, "platform": plat,
            "simulated_hour": _opt_int(obj, "simulated_hour"),
            "actions_count": _opt_int(obj, "actions_count") if "actions_count" in obj else _opt_int(obj, "total_actions"),
            "agents_count": _opt_int(obj, "agents_count"), "total_rounds": _opt_int(obj, "total_rounds"),
            "source": SOURCE, "source_ref": ref,
        }
        if kind == "simulation_end":
            self.ended.add(plat)
        return OutEvent(ROUNDS, sim_key(self.sim_id), record, ref)

    def _action(self, obj: dict, plat: str, event_id: str, ref: str) -> OutEvent | Skipped:
        action = _req(obj, "action_type", str).strip().upper()
        if not action:
            raise LineError("empty action type", "action_type")
        rnd = _round(obj)
        agent = _agent(obj, plat)
        ts = _ts(obj)
        if action in SKIP_ACTIONS:
            return Skipped(ref, SKIP_ACTIONS[action])
        args = obj.get("action_args") or {}
        if not isinstance(args, dict):
            raise LineError(f"expected an object, got {type(args).__name__}", "action_args")
        name = obj.get("agent_name")
        text, target, post_id = interpret(action, args, plat, self.index)
        a = Action(event_id=event_id, sim_id=self.sim_id, platform=plat, agent=agent,
                   agent_name=name if isinstance(name, str) else "", action=action, round=rnd, ts=ts, text=text,
                   target=target, post_id=post_id, args=args, source=SOURCE, source_ref=ref)
        event = to_event(a, self.index)
        if action not in KNOWN_ACTIONS:
            return replace(event, unknown_action=action)
        return event


def interpret(action: str, args: dict, platform: str, index: PostIndex) -> tuple[str | None, Ref | None, str | None]:
    """MiroFish's ``action_args`` -> (the agent's own text, what it acted on,
    the id of what it created). Text the line gives wins over the index."""
    if action == "CREATE_POST":
        return _text(args, "content"), None, _ident(args, "post_id", "new_post_id")
    if action == "CREATE_COMMENT":
        target = _post_ref(args, platform, index, ("post_id",), ("post_content",), ("post_author_name",))
        return _text(args, "content", "comment_content"), target, _ident(args, "comment_id", "new_comment_id")
    if action == "QUOTE_POST":
        target = _post_ref(args, platform, index, ("quoted_id", "original_post_id", "post_id"),
                           ("original_content", "post_content"), ("original_author_name", "post_author_name"))
        return _text(args, "quote_content", "content"), target, _ident(args, "new_post_id")
    if action == "REPOST":
        new_id = _ident(args, "new_post_id")
        target = _post_ref(args, platform, index, ("reposted_id", "original_post_id", "post_id"),
                           ("original_content", "post_content"), ("original_author_name", "post_author_name"))
        if target is None and new_id is not None:
            # Only the repost's own id: the index (or the database beside the
            # log) may know which post that row reposted.
            target = index.original_of(platform, new_id)
        return None, target, new_id
    if action in ("LIKE_POST", "UNLIKE_POST", "DISLIKE_POST", "UNDO_DISLIKE_POST", "REPORT_POST"):
        target = _post_ref(args, platform, index, ("post_id",), ("post_content", "content"), ("post_author_name",))
        return _text(args, "report_reason", "reason"), target, None
    if action in ("LIKE_COMMENT", "UNLIKE_COMMENT", "DISLIKE_COMMENT", "UNDO_DISLIKE_COMMENT"):
        cid = _ident(args, "comment_id")
        given = _text(args, "comment_content", "content")
        ref = Ref("comment", cid, _text(args, "comment_author_name"), given) if given else index.resolve(platform, "comment", cid)
        return None, ref, None
    if action in ("FOLLOW", "UNFOLLOW", "MUTE", "UNMUTE"):
        # OASIS's follow_id is the follow record's id, not the followed user's.
        uid = _ident(args, "followee_id", "mutee_id", "user_id", "target_user_id")
        name = _text(args, "target_user_name", "user_name")
        return None, (Ref("user", uid or "?", name) if uid or name else None), None
    if action in ("SEARCH_POSTS", "SEARCH_USER", "TREND"):
        return _text(args, "query", "keyword"), None, None
    if action == "INTERVIEW":
        return _text(args, "prompt", "question", "content"), None, None
    ident = _ident(args, "post_id", "comment_id", "follow_id", "like_id", "dislike_id", "user_id", "group_id")
    return _text(args, "content", "message", "query"), (Ref("item", ident) if ident else None), None


def _post_ref(args: dict, platform: str, index: PostIndex, ids: tuple[str, ...], texts: tuple[str, ...],
              authors: tuple[str, ...]) -> Ref | None:
    pid = _ident(args, *ids)
    given = _text(args, *texts)
    if given:
        return Ref("post", pid or "?", _text(args, *authors), given)
    ref = index.resolve(platform, "post", pid)
    if ref is not None and ref.author is None and _text(args, *authors):
        return Ref(ref.kind, ref.id, _text(args, *authors), ref.text)
    return ref


def parse_file(path: Path, *, sim_id: str, platform: str | None = None,
               index: PostIndex | None = None) -> Iterator[Item]:
    """A finished file, line by line (``connectors.follow`` reads growing ones)."""
    parser = LineParser(sim_id=sim_id, platform=platform_of(path, platform), index=index, label=str(path))
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            item = parser.line(raw, lineno)
            if item is not None:
                yield item


def _req(obj: dict, name: str, kind: type | tuple[type, ...]) -> Any:
    if name not in obj or obj[name] is None:
        raise LineError("missing required field", name)
    value = obj[name]
    if isinstance(value, bool) or not isinstance(value, kind):
        names = kind.__name__ if isinstance(kind, type) else " or ".join(k.__name__ for k in kind)
        raise LineError(f"expected {names}, got {type(value).__name__} {value!r:.40}", name)
    return value


def _round(obj: dict, name: str = "round") -> int:
    value = _req(obj, name, int)
    if value < 0 or value > 10_000_000:
        raise LineError(f"out of range: {value}", name)
    return value


def _ts(obj: dict, fallback: int | None = None) -> int:
    if obj.get("timestamp") is None and fallback is not None:
        return fallback
    try:
        return to_ms(_req(obj, "timestamp", (str, int, float)))
    except ValueError as exc:
        raise LineError(str(exc), "timestamp") from None


def _opt_int(obj: dict, name: str) -> int | None:
    value = obj.get(name)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        raise LineError(f"expected int, got {type(value).__name__}", name)
    return value


def _agent(obj: dict, platform: str) -> str:
    value = _req(obj, "agent_id", (int, str))
    if isinstance(value, str) and not value.strip():
        raise LineError("empty agent id", "agent_id")
    # Agent ids are per platform: twitter 0 and reddit 0 are different records.
    return f"{platform}-{value}"


def _text(args: dict, *names: str) -> str | None:
    for name in names:
        value = args.get(name)
        if isinstance(value, str) and value.strip():
            return value
    return None


def _ident(args: dict, *names: str) -> str | None:
    for name in names:
        value = args.get(name)
        if value is not None and not isinstance(value, (dict, list, bool)):
            return str(value)
    return None
