"""One vocabulary for what simulation engines log: MiroFish's action lines and
OASIS's trace rows name the same actions (MiroFish upper-cases OASIS's), and
both readers turn them into Murmur events here.

* Posts (public): CREATE_POST, QUOTE_POST, REPOST, CREATE_COMMENT.
* Observations (private to the acting agent): every other action, written as
  the agent would remember it ("I liked a post by Ana: ...").
* Skipped, with the reason counted: DO_NOTHING, EXIT, UPDATE_REC_TABLE.
* An action type not listed here is still published as an observation, and
  reported by type in the publish summary, so a new engine version never
  loses data silently.

Quotes and reposts often carry ids only (older MiroFish versions, OASIS's
trace). :class:`PostIndex` remembers every post of the simulation by its
platform id, so a quote or repost names the text and author it refers to;
when the post is unknown the event says "quote of post N" rather than invent
text.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Callable

from connectors.events import OutEvent
from streams.topics import AGENT_LOG, agent_key

POST_ACTIONS = frozenset({"CREATE_POST", "QUOTE_POST", "REPOST", "CREATE_COMMENT"})
SKIP_ACTIONS = {
    "DO_NOTHING": "DO_NOTHING (the agent chose not to act)",
    "EXIT": "EXIT (the agent left)",
    "UPDATE_REC_TABLE": "UPDATE_REC_TABLE (recommender bookkeeping, no agent action)",
}
OBSERVATION_ACTIONS = frozenset({
    "LIKE_POST", "UNLIKE_POST", "DISLIKE_POST", "UNDO_DISLIKE_POST", "LIKE_COMMENT", "UNLIKE_COMMENT",
    "DISLIKE_COMMENT", "UNDO_DISLIKE_COMMENT", "FOLLOW", "UNFOLLOW", "MUTE", "UNMUTE", "SEARCH_POSTS",
    "SEARCH_USER", "TREND", "REFRESH", "INTERVIEW", "REPORT_POST", "PURCHASE_PRODUCT", "JOIN_GROUP",
    "LEAVE_GROUP", "CREATE_GROUP", "SEND_TO_GROUP", "LISTEN_FROM_GROUP",
})
KNOWN_ACTIONS = POST_ACTIONS | OBSERVATION_ACTIONS | frozenset(SKIP_ACTIONS)
TEXT_CAP = 500  # chars of a referenced post kept inside another event's text


class ActionError(ValueError):
    """An action that cannot be published faithfully; names the field."""

    def __init__(self, reason: str, field: str | None = None) -> None:
        super().__init__(reason)
        self.field = field


@dataclass(frozen=True)
class Ref:
    """What an action points at, resolved to text where the source knows it."""

    kind: str  # post, comment, user
    id: str
    author: str | None = None
    text: str | None = None


@dataclass(frozen=True)
class Action:
    """One agent action, source-neutral. ``text`` is the agent's own words
    (a post's content, a quote's comment, a search query); ``target`` what it
    acted on."""

    event_id: str
    sim_id: str
    platform: str
    agent: str  # platform-qualified, e.g. twitter-3
    agent_name: str
    action: str  # upper-case action type
    round: int
    ts: int
    text: str | None = None
    target: Ref | None = None
    post_id: str | None = None  # the platform id of the post or comment this action created
    args: dict | None = None  # the source's own arguments, kept on observations
    source: str = ""
    source_ref: str = ""


class PostIndex:
    """Every post and comment seen so far in a simulation, by platform and id:
    the text a later quote, repost, like or comment refers to. A fallback
    (e.g. the OASIS database beside a MiroFish log) answers what the log
    itself never said; it returns ``(author, text, root_id)``, where
    ``root_id`` names the reposted post when the id is a repost's."""

    Entry = tuple[str | None, str, str | None]  # author, text, id of the reposted post (reposts only)

    def __init__(self, fallback: Callable[[str, str, str], "PostIndex.Entry | None"] | None = None) -> None:
        self._known: dict[tuple[str, str, str], PostIndex.Entry] = {}
        self._fallback = fallback
        self.fallback_hits = 0

    def add(self, platform: str, kind: str, id_: str | None, author: str | None, text: str,
            root: str | None = None) -> None:
        if id_ is not None and text:
            self._known[(platform, kind, id_)] = (author, text, root)

    def _entry(self, platform: str, kind: str, id_: str) -> "PostIndex.Entry | None":
        hit = self._known.get((platform, kind, id_))
        if hit is None and self._fallback is not None:
            hit = self._fallback(platform, kind, id_)
            if hit is not None and hit[1]:
                self.fallback_hits += 1
                self._known[(platform, kind, id_)] = hit
            else:
                hit = None
        return hit

    def resolve(self, platform: str, kind: str, id_: str | None) -> Ref | None:
        """The post or comment ``id_``, with its text when known."""
        if id_ is None:
            return None
        hit = self._entry(platform, kind, id_)
        return Ref(kind, id_, hit[0], hit[1]) if hit is not None else Ref(kind, id_)

    def original_of(self, platform: str, repost_id: str) -> Ref | None:
        """The post a repost (known by its own id) shared, if known."""
        hit = self._entry(platform, "post", repost_id)
        if hit is None or hit[2] is None:
            return None
        return Ref("post", hit[2], hit[0], hit[1])


def _clip(text: str) -> str:
    text = " ".join(text.split())
    return text if len(text) <= TEXT_CAP else text[: TEXT_CAP - 1] + "…"


def _by(ref: Ref | None) -> str:
    return f" by {ref.author}" if ref is not None and ref.author else ""


def _quoted(ref: Ref | None) -> str:
    return f': "{_clip(ref.text)}"' if ref is not None and ref.text else ""


def post_content(a: Action) -> str:
    """The public text of a post action. A quote or repost whose own text the
    source did not give says what it refers to instead of inventing words."""
    t = a.target
    if a.action in ("CREATE_POST", "CREATE_COMMENT"):
        if not a.text:
            raise ActionError(f"{a.action} without content", "action_args.content")
        return a.text
    if a.action == "QUOTE_POST":
        if t is None and not a.text:
            raise ActionError("QUOTE_POST without quote text or quoted post id", "action_args.quoted_id")
        head = a.text or f"Quote of post {t.id}{_by(t)}"
        if t is not None and t.text:
            return f"{head}\n> {t.author + ': ' if t.author else ''}{_clip(t.text)}"
        return head if a.text or t is None else f"{head} (text not in the log)"
    # REPOST: the reposted text is what the agent amplifies.
    if t is None:
        if a.post_id is None:
            raise ActionError("REPOST without the reposted post's id or text", "action_args.post_id")
        return f"RT of a post the log does not name (this repost is post {a.post_id})"
    if t.text:
        return f"RT {t.author + ': ' if t.author else ''}{t.text}"
    return f"RT post {t.id} (text not in the log)"


def observation_content(a: Action) -> str:
    """The observation as the agent would remember it, in the first person."""
    t, text = a.target, a.text
    target_user = (t.author or f"user {t.id}") if t is not None else "a user the log does not name"
    verbs = {
        "LIKE_POST": f"I liked a post{_by(t)}{_quoted(t)}",
        "UNLIKE_POST": f"I took back my like of a post{_by(t)}{_quoted(t)}",
        "DISLIKE_POST": f"I disliked a post{_by(t)}{_quoted(t)}",
        "UNDO_DISLIKE_POST": f"I took back my dislike of a post{_by(t)}{_quoted(t)}",
        "LIKE_COMMENT": f"I liked a comment{_by(t)}{_quoted(t)}",
        "UNLIKE_COMMENT": f"I took back my like of a comment{_by(t)}{_quoted(t)}",
        "DISLIKE_COMMENT": f"I disliked a comment{_by(t)}{_quoted(t)}",
        "UNDO_DISLIKE_COMMENT": f"I took back my dislike of a comment{_by(t)}{_quoted(t)}",
        "REPORT_POST": f"I reported a post{_by(t)}{_quoted(t)}" + (f" because {text}" if text else ""),
        "FOLLOW": f"I followed {target_user}",
        "UNFOLLOW": f"I unfollowed {target_user}",
        "MUTE": f"I muted {target_user}",
        "UNMUTE": f"I unmuted {target_user}",
        "SEARCH_POSTS": f"I searched posts for {text or '(nothing)'!r}",
        "SEARCH_USER": f"I searched users for {text or '(nothing)'!r}",
        "TREND": f"I looked at what is trending{': ' + text if text else ''}",
        "REFRESH": f"I refreshed my feed{' and saw: ' + text if text else ''}",
        "INTERVIEW": f"I was interviewed{': ' + text if text else ''}",
        "PURCHASE_PRODUCT": f"I bought {text or 'a product'}",
        "JOIN_GROUP": f"I joined group {t.id if t else ''}".rstrip(),
        "LEAVE_GROUP": f"I left group {t.id if t else ''}".rstrip(),
        "CREATE_GROUP": f"I created a group{': ' + text if text else ''}",
        "SEND_TO_GROUP": f"I wrote to a group{': ' + text if text else ''}",
        "LISTEN_FROM_GROUP": f"I read my groups{': ' + text if text else ''}",
    }
    if a.action in verbs:
        return verbs[a.action]
    detail = json.dumps(a.args or {}, sort_keys=True, ensure_ascii=False)[:TEXT_CAP]
    return f"I did {a.action.lower().replace('_', ' ')} {detail}".strip()


def _target_id(a: Action) -> str | None:
    return a.target.id if a.target is not None and a.target.id != "?" else None


def to_event(a: Action, index: PostIndex | None = None) -> OutEvent:
    """A Post or an Observation; a post is remembered in ``index`` so later
    quotes and reposts of it can name its text."""
    base = {
        "event_id": a.event_id, "sim_id": a.sim_id, "round": a.round, "ts": a.ts, "agent_id": a.agent,
        "agent_name": a.agent_name, "platform": a.platform, "action": a.action, "source": a.source,
        "source_ref": a.source_ref,
    }
    key = agent_key(a.sim_id, a.agent)
    if a.action in POST_ACTIONS:
        content = post_content(a)
        record = {**base, "content": content, "post_id": a.post_id,
                  "parent_id": _target_id(a)}
        if index is not None:
            kind = "comment" if a.action == "CREATE_COMMENT" else "post"
            if a.action == "REPOST":
                # A repost shares the original's words: a quote or repost of
                # the repost names them and the original post.
                t = a.target
                if t is not None and t.text and t.id != "?":
                    index.add(a.platform, kind, a.post_id, t.author, t.text, root=t.id)
            else:
                index.add(a.platform, kind, a.post_id, a.agent_name or None, a.text or content)
        return OutEvent(AGENT_LOG, key, record, a.source_ref, type="Post")
    record = {**base, "content": observation_content(a), "target_id": _target_id(a),
              "args_json": json.dumps(a.args or {}, sort_keys=True, ensure_ascii=False)}
    return OutEvent(AGENT_LOG, key, record, a.source_ref, type="Observation")
