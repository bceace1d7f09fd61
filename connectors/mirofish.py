"""MiroFish's per-platform ``actions.jsonl`` -> Murmur events.

Action lines ``{round, timestamp, agent_id, agent_name, action_type,
action_args, result, success}`` become Posts (CREATE_POST, QUOTE_POST, REPOST,
CREATE_COMMENT), Observations of the acting agent (every other action) or
nothing (DO_NOTHING). Event lines (``event_type``) become RoundMarkers.

Liberal in what it accepts (older versions give only ids for quotes and
reposts; unknown action types become observations), strict in what it
publishes: a line that cannot be read faithfully is a BadLine naming the
field, never a guess.
"""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path
from typing import Any, Iterator

from connectors.events import BadLine, OutEvent, Skipped
from connectors.timeparse import to_ms
from streams.ids import stable_id
from streams.topics import OBSERVATIONS, POSTS, ROUNDS, agent_key, sim_key

POST_ACTIONS = {"CREATE_POST", "QUOTE_POST", "REPOST", "CREATE_COMMENT"}
SKIP_ACTIONS = {"DO_NOTHING"}
MARKER_KINDS = {"round_start", "round_end", "simulation_start", "simulation_end"}
PLATFORMS = {"twitter", "reddit"}


class LineError(ValueError):
    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.field = field


def platform_of(path: Path, explicit: str | None = None) -> str:
    """MiroFish writes ``<sim>/<platform>/actions.jsonl``."""
    if explicit:
        return explicit
    parent = path.parent.name.lower()
    return parent if parent in PLATFORMS else "unknown"


def parse_file(path: Path, *, sim_id: str, platform: str | None = None) -> Iterator[OutEvent | BadLine | Skipped]:
    plat = platform_of(path, platform)
    seen: Counter[str] = Counter()
    last_ts = 0
    with path.open("rb") as fh:
        for lineno, raw in enumerate(fh, start=1):
            ref = f"{path}:{lineno}"
            stripped = raw.strip()
            if not stripped:
                continue
            try:
                obj = json.loads(stripped)
                if not isinstance(obj, dict):
                    raise LineError(f"expected a JSON object, got {type(obj).__name__}")
                canonical = json.dumps(obj, sort_keys=True, ensure_ascii=False)
                # Identical lines are distinct actions only by position among
                # their twins: count them so ids stay deterministic.
                seen[canonical] += 1
                event_id = stable_id("mirofish", sim_id, plat, canonical, seen[canonical])
                if "event_type" in obj:
                    item = _marker(obj, sim_id=sim_id, platform=plat, event_id=event_id, ref=ref, last_ts=last_ts)
                else:
                    item = _action(obj, sim_id=sim_id, platform=plat, event_id=event_id, ref=ref)
                if isinstance(item, OutEvent):
                    last_ts = item.record["ts"]
                yield item
            except json.JSONDecodeError as exc:
                yield BadLine(ref, f"invalid JSON: {exc.msg} at column {exc.colno}", bytes(raw), sim_id=sim_id)
            except UnicodeDecodeError as exc:
                yield BadLine(ref, f"invalid UTF-8 at byte {exc.start}", bytes(raw), sim_id=sim_id)
            except LineError as exc:
                yield BadLine(ref, str(exc), bytes(raw), field=exc.field, sim_id=sim_id)


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


def _marker(obj: dict, *, sim_id: str, platform: str, event_id: str, ref: str, last_ts: int) -> OutEvent:
    kind = obj.get("event_type")
    if kind not in MARKER_KINDS:
        raise LineError(f"unknown event_type {kind!r}; expected one of {sorted(MARKER_KINDS)}", "event_type")
    if kind in ("round_start", "round_end"):
        rnd = _round(obj)
    else:
        rnd = (_opt_int(obj, "total_rounds") or 0) if kind == "simulation_end" else 0
    record = {
        "event_id": event_id,
        "sim_id": sim_id,
        "round": rnd,
        # Some versions omit timestamps on event lines: the last action's time
        # keeps event time monotonic and deterministic.
        "ts": _ts(obj, fallback=last_ts),
        "kind": kind,
        "platform": platform,
        "simulated_hour": _opt_int(obj, "simulated_hour"),
        "actions_count": _opt_int(obj, "actions_count") if "actions_count" in obj else _opt_int(obj, "total_actions"),
        "agents_count": _opt_int(obj, "agents_count"),
        "total_rounds": _opt_int(obj, "total_rounds"),
        "source": "mirofish",
        "source_ref": ref,
    }
    return OutEvent(ROUNDS, sim_key(sim_id), record, ref)


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
        if value is not None and not isinstance(value, (dict, list)):
            return str(value)
    return None


def _action(obj: dict, *, sim_id: str, platform: str, event_id: str, ref: str) -> OutEvent | Skipped:
    action = _req(obj, "action_type", str).strip().upper()
    if not action:
        raise LineError("empty action type", "action_type")
    rnd = _round(obj)
    agent_id = _agent(obj, platform)
    ts = _ts(obj)
    if action in SKIP_ACTIONS:
        return Skipped(ref, action)
    args = obj.get("action_args") or {}
    if not isinstance(args, dict):
        raise LineError(f"expected an object, got {type(args).__name__}", "action_args")
    name = obj.get("agent_name")
    base = {
        "event_id": event_id,
        "sim_id": sim_id,
        "round": rnd,
        "ts": ts,
        "agent_id": agent_id,
        "agent_name": name if isinstance(name, str) else "",
        "platform": platform,
        "action": action,
        "source": "mirofish",
        "source_ref": ref,
    }
    if action in POST_ACTIONS:
        record = {**base, "content": _post_content(action, args), **_post_ids(action, args)}
        return OutEvent(POSTS, agent_key(sim_id, agent_id), record, ref)
    record = {
        **base,
        "content": _observation_text(action, args),
        "target_id": _ident(args, "post_id", "comment_id", "follow_id", "like_id", "dislike_id", "user_id"),
        "args_json": json.dumps(args, sort_keys=True, ensure_ascii=False),
    }
    return OutEvent(OBSERVATIONS, agent_key(sim_id, agent_id), record, ref)


def _post_content(action: str, args: dict) -> str:
    if action == "CREATE_POST":
        text = _text(args, "content")
        if text is None:
            raise LineError("CREATE_POST without content", "action_args.content")
        return text
    if action == "CREATE_COMMENT":
        text = _text(args, "content", "comment_content")
        if text is None:
            raise LineError("CREATE_COMMENT without content", "action_args.content")
        return text
    original = _text(args, "original_content", "post_content")
    author = _text(args, "original_author_name", "post_author_name")
    if action == "QUOTE_POST":
        quote = _text(args, "quote_content", "content")
        if quote is None:
            raise LineError("QUOTE_POST without quote text", "action_args.quote_content")
        return f'{quote}\n> {author + ": " if author else ""}{original}' if original else quote
    # REPOST: the reposted text is the agent's public statement; older
    # versions give only the id, which we keep rather than invent text.
    if original:
        return f'RT {author + ": " if author else ""}{original}'
    target = _ident(args, "post_id", "new_post_id")
    if target is None:
        raise LineError("REPOST without post_id or original_content", "action_args.post_id")
    return f"RT post {target}"


def _post_ids(action: str, args: dict) -> dict:
    if action == "CREATE_POST":
        return {"post_id": _ident(args, "post_id", "new_post_id"), "parent_id": None}
    if action == "CREATE_COMMENT":
        return {"post_id": _ident(args, "comment_id", "new_comment_id"), "parent_id": _ident(args, "post_id")}
    if action == "QUOTE_POST":
        return {"post_id": _ident(args, "new_post_id"), "parent_id": _ident(args, "quoted_id", "post_id")}
    return {"post_id": _ident(args, "new_post_id"), "parent_id": _ident(args, "post_id")}


def _observation_text(action: str, args: dict) -> str:
    """The observation as the agent would remember it, in the first person."""
    post = _text(args, "post_content", "content", "comment_content")
    author = _text(args, "post_author_name", "comment_author_name", "target_user_name")
    about = f" by {author}" if author else ""
    quoted = f': "{post}"' if post else ""
    verbs = {
        "LIKE_POST": f"I liked a post{about}{quoted}",
        "DISLIKE_POST": f"I disliked a post{about}{quoted}",
        "LIKE_COMMENT": f"I liked a comment{about}{quoted}",
        "DISLIKE_COMMENT": f"I disliked a comment{about}{quoted}",
        "FOLLOW": f"I followed {author or 'user ' + str(_ident(args, 'follow_id', 'user_id'))}",
        "MUTE": f"I muted {author or 'user ' + str(_ident(args, 'mute_id', 'user_id'))}",
        "SEARCH_POSTS": f"I searched posts for {_text(args, 'query') or '(nothing)'!r}",
        "SEARCH_USER": f"I searched users for {_text(args, 'query') or '(nothing)'!r}",
        "TREND": "I looked at what is trending",
        "REFRESH": "I refreshed my feed",
        "INTERVIEW": f"I was interviewed: {_text(args, 'prompt', 'question', 'content') or ''}".rstrip(": "),
    }
    if action in verbs:
        return verbs[action]
    detail = json.dumps(args, sort_keys=True, ensure_ascii=False)[:500]
    return f"I did {action.lower().replace('_', ' ')} {detail}".strip()
