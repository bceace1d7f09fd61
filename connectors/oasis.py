"""CAMEL-AI OASIS's SQLite database -> Murmur events.

OASIS writes one row per agent action to ``trace(user_id, created_at,
action, info)``; ``info`` is JSON holding ids more than text, so the text
comes from the ``post``, ``comment``, ``user``, ``follow`` and ``report``
tables. Rows are read in insertion order (``rowid``), which is how a running
simulation grows, so a follower asks only for rows after the last one it
published.

What each action becomes (the vocabulary is :mod:`connectors.actions`):
* ``sign_up`` -> a Persona (name, bio; archetype from the bio). A user acting
  without a ``sign_up`` row (some forks) gets one from the ``user`` table.
* ``create_post``, ``quote_post`` (its own words from ``post.quote_content``,
  plus the quoted text), ``repost`` (the reposted text and author),
  ``create_comment`` (the post it answers, from ``comment.post_id``) -> Posts.
* likes, dislikes, reports (the post or comment and its author), follows and
  mutes (the other user's name), searches (the query), ``refresh`` and
  ``trend`` (the first posts the agent was shown), interviews -> Observations
  of the acting agent: what it did and saw, in the first person.
* ``do_nothing``, ``exit``, ``update_rec_table`` -> skipped, counted.

Time: Twitter's clock is an integer step (round = step; event time = step x
``round_minutes``, counted from the Unix epoch: OASIS gives no date). Reddit's
is a datetime of the simulated clock (event time as written; round =
whole ``round_minutes`` since the first trace row). Round markers are derived:
a round ends when a row of a later round appears, and the last round when the
input ends (a finished database, or a follower stopping at its idle timeout).

Schemas differ between OASIS versions and forks; a missing table or column
only means less text (the event then names the id it could not resolve). A
database without a ``trace(user_id, created_at, action, info)`` table is not
OASIS and is refused with the tables it does have.
"""

from __future__ import annotations

import json
import sqlite3
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any, Iterator

from connectors.actions import (KNOWN_ACTIONS, SKIP_ACTIONS, TEXT_CAP, Action, ActionError, PostIndex, Ref, to_event)
from connectors.events import BadLine, Item, OutEvent, Skipped
from connectors.profiles import persona
from connectors.timeparse import to_ms
from streams.errors import MurmurError
from streams.ids import stable_id
from streams.topics import PERSONAS, ROUNDS, agent_key, sim_key

SOURCE = "oasis"
TRACE_COLUMNS = ("user_id", "created_at", "action", "info")
SHOWN_POSTS = 3  # of a refresh or trend, kept in the observation's text
DEFAULT_ROUND_MINUTES = 60


class NotOasis(MurmurError):
    """The file is not an OASIS database; says what it is instead."""


def connect(path: Path) -> sqlite3.Connection:
    """Read-only: a publisher never writes the simulation's database, and a
    running simulation may be writing it."""
    try:
        conn = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=10)
        conn.execute("SELECT name FROM sqlite_master LIMIT 1").fetchall()
    except sqlite3.DatabaseError as exc:
        raise NotOasis(f"{path}: not an SQLite database ({exc})") from None
    return conn


class Schema:
    """The tables and columns this database has."""

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.tables: dict[str, set[str]] = {}
        for (name,) in conn.execute("SELECT name FROM sqlite_master WHERE type = 'table'"):
            cols = conn.execute(f'PRAGMA table_info("{name}")').fetchall()
            self.tables[name] = {c[1] for c in cols}

    def has(self, table: str, *columns: str) -> bool:
        return table in self.tables and all(c in self.tables[table] for c in columns)


def check(path: Path, conn: sqlite3.Connection) -> Schema:
    schema = Schema(conn)
    if not schema.has("trace", *TRACE_COLUMNS):
        what = (f"its trace table lacks {sorted(set(TRACE_COLUMNS) - schema.tables['trace'])}" if "trace" in schema.tables
                else f"no trace table; tables: {', '.join(sorted(schema.tables)) or 'none'}")
        raise NotOasis(f"{path}: not an OASIS database ({what})")
    return schema


def is_oasis_file(path: Path) -> bool:
    """An SQLite file (by its header); whether it is OASIS is :func:`check`'s call."""
    try:
        with path.open("rb") as fh:
            return fh.read(16) == b"SQLite format 3\x00"
    except OSError:
        return False


class Lookup:
    """Text behind the ids, from the database's own tables (each optional)."""

    def __init__(self, conn: sqlite3.Connection, schema: Schema) -> None:
        self.conn, self.schema = conn, schema
        self._users: dict[Any, tuple[str, str, str] | None] = {}

    def _one(self, sql: str, *args: Any) -> tuple | None:
        try:
            return self.conn.execute(sql, args).fetchone()
        except (sqlite3.Error, OverflowError):
            # OverflowError: an id in a trace's info beyond SQLite's 64-bit
            # INTEGER (found by fuzzing) names no row; the action still counts.
            return None

    def user(self, user_id: Any) -> tuple[str, str, str] | None:
        """(name, user_name, bio) of a user."""
        if user_id not in self._users:
            s = self.schema
            if not s.has("user", "user_id"):
                self._users[user_id] = None
            else:
                cols = [c if s.has("user", c) else "NULL" for c in ("name", "user_name", "bio")]
                row = self._one(f"SELECT {', '.join(cols)} FROM user WHERE user_id = ?", user_id)
                self._users[user_id] = tuple("" if v is None else str(v) for v in row) if row else None
        return self._users[user_id]

    def agent_number(self, user_id: Any) -> str:
        """OASIS sets user_id = agent_id at sign-up; a fork may not."""
        if self.schema.has("user", "user_id", "agent_id"):
            row = self._one("SELECT agent_id FROM user WHERE user_id = ?", user_id)
            if row and row[0] is not None:
                return str(row[0])
        return str(user_id)

    def user_name(self, user_id: Any) -> str | None:
        u = self.user(user_id)
        return (u[0] or u[1] or None) if u else None

    def post(self, post_id: Any) -> PostIndex.Entry | None:
        """(author, text, root id): a repost's row has no text of its own, so
        it answers with the post it shared."""
        s = self.schema
        if post_id is None or not s.has("post", "post_id"):
            return None
        cols = [c if s.has("post", c) else "NULL" for c in ("user_id", "content", "quote_content", "original_post_id")]
        row = self._one(f"SELECT {', '.join(cols)} FROM post WHERE post_id = ?", post_id)
        if row is None:
            return None
        user_id, content, quote, original = row
        if original is not None and not quote:  # a repost (or an old-style one, whose content says so)
            root = self.post(original) if original != post_id else None
            if root is not None:
                return root[0], root[1], str(original)
        text = quote or content
        return (self.user_name(user_id), str(text), None) if text else None

    def quote_text(self, post_id: Any) -> str | None:
        if post_id is None or not self.schema.has("post", "post_id", "quote_content"):
            return None
        row = self._one("SELECT quote_content FROM post WHERE post_id = ?", post_id)
        return str(row[0]) if row and row[0] else None

    def original_id(self, post_id: Any) -> str | None:
        if post_id is None or not self.schema.has("post", "post_id", "original_post_id"):
            return None
        row = self._one("SELECT original_post_id FROM post WHERE post_id = ?", post_id)
        return str(row[0]) if row and row[0] is not None else None

    def comment(self, comment_id: Any) -> tuple[str | None, str | None, str | None]:
        """(author, text, post id) of a comment."""
        s = self.schema
        if comment_id is None or not s.has("comment", "comment_id"):
            return None, None, None
        cols = [c if s.has("comment", c) else "NULL" for c in ("user_id", "content", "post_id")]
        row = self._one(f"SELECT {', '.join(cols)} FROM comment WHERE comment_id = ?", comment_id)
        if row is None:
            return None, None, None
        return self.user_name(row[0]), (str(row[1]) if row[1] else None), (str(row[2]) if row[2] is not None else None)

    def followee(self, follow_id: Any) -> str | None:
        if follow_id is None or not self.schema.has("follow", "follow_id", "followee_id"):
            return None
        row = self._one("SELECT followee_id FROM follow WHERE follow_id = ?", follow_id)
        return str(row[0]) if row and row[0] is not None else None

    def report_reason(self, report_id: Any) -> str | None:
        if report_id is None or not self.schema.has("report", "report_id", "report_reason"):
            return None
        row = self._one("SELECT report_reason FROM report WHERE report_id = ?", report_id)
        return str(row[0]) if row and row[0] else None

    def index_fallback(self, platform: str):
        """For a MiroFish log beside this database: resolve its id-only quotes
        and reposts (``PostIndex`` fallback)."""

        def fallback(plat: str, kind: str, id_: str) -> PostIndex.Entry | None:
            if plat != platform:
                return None
            if kind == "comment":
                author, text, _ = self.comment(id_)
                return (author, text, None) if text else None
            return self.post(id_)

        return fallback


@dataclass
class Clock:
    """Round and event time of a trace row's ``created_at``."""

    kind: str  # "step" or "datetime"
    round_ms: int
    origin_ms: int = 0  # datetime clocks: the first row's time

    @staticmethod
    def detect(first: Any, round_minutes: int) -> "Clock":
        round_ms = round_minutes * 60_000
        if _step(first) is not None:
            return Clock("step", round_ms)
        try:
            return Clock("datetime", round_ms, to_ms(str(first)))
        except ValueError as exc:
            raise ActionError(f"{exc}; expected an integer step or a datetime", "created_at") from None

    def at(self, value: Any) -> tuple[int, int]:
        if self.kind == "step":
            step = _step(value)
            if step is None:
                raise ActionError(f"expected an integer time step (this database's clock), got {value!r:.40}",
                                  "created_at")
            return step, step * self.round_ms
        try:
            ts = to_ms(str(value))
        except ValueError as exc:
            raise ActionError(str(exc), "created_at") from None
        return max(0, (ts - self.origin_ms) // self.round_ms), ts


def _step(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value if value >= 0 else None
    if isinstance(value, str) and value.strip().isdigit():
        return int(value.strip())
    return None


def platform_of(path: Path, clock_kind: str | None) -> str:
    """By file name (OASIS writes twitter_simulation.db, reddit_simulation.db),
    else by clock: only OASIS's Twitter counts integer steps."""
    name = path.name.lower()
    for p in ("twitter", "reddit"):
        if p in name:
            return p
    return {"step": "twitter", "datetime": "reddit"}.get(clock_kind or "", "oasis")


class TraceReader:
    """The trace of one database, row by row, in insertion order. Keeps what
    later rows depend on: the clock, the open round, the agents that have a
    persona."""

    def __init__(self, path: Path, *, sim_id: str, platform: str | None = None,
                 round_minutes: int = DEFAULT_ROUND_MINUTES, label: str | None = None) -> None:
        self.path = path
        self.sim_id = sim_id
        self.label = label or str(path)
        self.round_minutes = round_minutes
        self.conn = connect(path)
        self.schema = check(path, self.conn)
        self.lookup = Lookup(self.conn, self.schema)
        self.clock: Clock | None = None
        self._platform = platform
        self.platform = platform or platform_of(path, None)
        self.round: int | None = None  # the open round
        self.round_last_ts = 0
        self.personas: set[str] = set()

    def close(self) -> None:
        self.conn.close()

    def rows(self, after: int, limit: int = 5000) -> list[tuple]:
        """Trace rows after rowid ``after``. The schema is read again when it
        changed under us (a simulation creating its tables as it starts)."""
        try:
            return self.conn.execute("SELECT rowid, user_id, created_at, action, info FROM trace WHERE rowid > ? "
                                     "ORDER BY rowid LIMIT ?", (after, limit)).fetchall()
        except sqlite3.OperationalError as exc:
            if "locked" in str(exc) or "busy" in str(exc):
                return []  # the writer holds the lock: the next poll reads on
            raise

    def row(self, rowid: int, user_id: Any, created_at: Any, action: Any, info_text: Any) -> list[Item]:
        ref = f"{self.label}:trace rowid {rowid}"
        raw = json.dumps({"user_id": user_id, "created_at": created_at, "action": action, "info": info_text},
                         ensure_ascii=False, default=str).encode()
        try:
            if self.clock is None:
                self.clock = Clock.detect(created_at, self.round_minutes)
                self.platform = self._platform or platform_of(self.path, self.clock.kind)
            rnd, ts = self.clock.at(created_at)
            if user_id is None:
                raise ActionError("missing required field", "user_id")
            if not isinstance(action, str) or not action.strip():
                raise ActionError(f"expected an action name, got {action!r:.40}", "action")
            info = _info(info_text)
            out: list[Item] = self._markers(rnd, ts, ref)
            out += self._action(rowid, user_id, created_at, action.strip(), info, info_text, rnd, ts, ref)
            return out
        except ActionError as exc:
            return [BadLine(ref, str(exc), raw, field=exc.field, sim_id=self.sim_id)]

    def finish(self, ref: str = "end of input") -> list[Item]:
        """Close the open round: the input ended."""
        if self.round is None:
            return []
        return [self._marker("round_end", self.round, self.round_last_ts, f"{self.label}:{ref}")]

    # -- internals ------------------------------------------------------------
    def _markers(self, rnd: int, ts: int, ref: str) -> list[Item]:
        out: list[Item] = []
        if self.round is None or rnd > self.round:
            if self.round is not None:
                out.append(self._marker("round_end", self.round, self.round_last_ts, ref))
            out.append(self._marker("round_start", rnd, ts, ref))
            self.round, self.round_last_ts = rnd, ts
        elif rnd == self.round:
            self.round_last_ts = max(self.round_last_ts, ts)
        # rnd < self.round: a late row of a closed round (Reddit's clock is
        # wall time, agents overlap); its events carry their own round.
        return out

    def _marker(self, kind: str, rnd: int, ts: int, ref: str) -> OutEvent:
        record = {"event_id": stable_id("oasis-marker", self.sim_id, self.platform, kind, rnd), "sim_id": self.sim_id,
                  "round": rnd, "ts": ts, "kind": kind, "platform": self.platform, "simulated_hour": None,
                  "actions_count": None, "agents_count": None, "total_rounds": None, "source": SOURCE,
                  "source_ref": ref}
        return OutEvent(ROUNDS, sim_key(self.sim_id), record, ref, derived=True)

    def _agent(self, user_id: Any) -> str:
        return f"{self.platform}-{self.lookup.agent_number(user_id)}"

    def _persona(self, user_id: Any, name: str, user_name: str, bio: str, rnd: int, ts: int, ref: str,
                 derived: bool = False) -> OutEvent:
        agent = self._agent(user_id)
        self.personas.add(agent)
        text = "" if bio in ("None", "None.") else bio  # OASIS's placeholder for no bio
        record = persona(self.sim_id, agent, name or user_name, text, None, ref, source=SOURCE, round_=rnd, ts=ts)
        return OutEvent(PERSONAS, agent_key(self.sim_id, agent), record, ref, derived=derived)

    def _action(self, rowid: int, user_id: Any, created_at: Any, action: str, info: dict, info_text: Any, rnd: int,
                ts: int, ref: str) -> list[Item]:
        name = action.upper()
        agent = self._agent(user_id)
        if name == "SIGN_UP":
            if agent in self.personas:
                return [Skipped(ref, "sign_up of an agent with a persona already")]
            u = self.lookup.user(user_id) or ("", "", "")
            return [self._persona(user_id, str(info.get("name") or u[0] or ""), str(info.get("user_name") or u[1] or ""),
                                  str(info.get("bio") or u[2] or ""), rnd, ts, ref)]
        if name in SKIP_ACTIONS:
            return [Skipped(ref, SKIP_ACTIONS[name])]
        out: list[Item] = []
        if agent not in self.personas and self.lookup.user(user_id) is not None:
            u = self.lookup.user(user_id)
            out.append(self._persona(user_id, u[0], u[1], u[2], rnd, ts, ref, derived=True))
        text, target, post_id = self._interpret(name, info)
        event_id = stable_id(SOURCE, self.sim_id, self.platform, user_id, created_at, action, info_text)
        a = Action(event_id=event_id, sim_id=self.sim_id, platform=self.platform, agent=agent,
                   agent_name=self.lookup.user_name(user_id) or "", action=name, round=rnd, ts=ts, text=text,
                   target=target, post_id=post_id, args=info, source=SOURCE, source_ref=ref)
        event = to_event(a)
        if name not in KNOWN_ACTIONS:
            event = replace(event, unknown_action=name)
        return out + [event]

    def _post_ref(self, post_id: Any) -> Ref | None:
        if post_id is None:
            return None
        hit = self.lookup.post(post_id)
        return Ref("post", str(post_id), hit[0], hit[1]) if hit else Ref("post", str(post_id))

    def _interpret(self, name: str, info: dict) -> tuple[str | None, Ref | None, str | None]:
        lk = self.lookup
        if name == "CREATE_POST":
            pid = info.get("post_id")
            text = _s(info.get("content")) or (lk.post(pid) or (None, None, None))[1]
            return text, None, _id(pid)
        if name == "QUOTE_POST":
            new = info.get("new_post_id")
            quoted = info.get("quoted_id", info.get("original_post_id")) or lk.original_id(new)
            return _s(info.get("quote_content")) or lk.quote_text(new), self._post_ref(quoted), _id(new)
        if name == "REPOST":
            new = info.get("new_post_id")
            if new is None and "reposted_id" not in info:  # older OASIS: {"post_id": <the new repost>}
                new = info.get("post_id")
            shared = info.get("reposted_id") or lk.original_id(new)
            return None, self._post_ref(shared), _id(new)
        if name == "CREATE_COMMENT":
            cid = info.get("comment_id")
            _, text, post_id = lk.comment(cid)
            return _s(info.get("content")) or text, self._post_ref(info.get("post_id", post_id)), _id(cid)
        if name in ("LIKE_POST", "UNLIKE_POST", "DISLIKE_POST", "UNDO_DISLIKE_POST", "REPORT_POST"):
            reason = lk.report_reason(info.get("report_id")) if name == "REPORT_POST" else None
            return reason, self._post_ref(info.get("post_id")), None
        if name in ("LIKE_COMMENT", "UNLIKE_COMMENT", "DISLIKE_COMMENT", "UNDO_DISLIKE_COMMENT"):
            cid = info.get("comment_id")
            author, text, _ = lk.comment(cid)
            return None, (Ref("comment", str(cid), author, text) if cid is not None else None), None
        if name in ("FOLLOW", "UNFOLLOW", "MUTE", "UNMUTE"):
            # follow's info names the follow record, not the user followed.
            uid = info.get("followee_id", info.get("mutee_id")) or lk.followee(info.get("follow_id"))
            return None, (Ref("user", str(uid), lk.user_name(uid)) if uid is not None else None), None
        if name in ("SEARCH_POSTS", "SEARCH_USER"):
            return _s(info.get("query")), None, None
        if name in ("REFRESH", "TREND"):
            return self._shown(info.get("posts")), None, None
        if name == "INTERVIEW":
            prompt, response = _s(info.get("prompt")), _s(info.get("response"))
            text = f"{prompt} — I answered: {response}" if prompt and response else prompt or response
            return text, None, None
        if name == "PURCHASE_PRODUCT":
            return _s(info.get("product_name")), None, None
        if name in ("JOIN_GROUP", "LEAVE_GROUP", "CREATE_GROUP", "SEND_TO_GROUP"):
            gid = info.get("group_id")
            return _s(info.get("content")) or _s(info.get("group_name")), (Ref("group", str(gid)) if gid is not None else None), None
        ident = next((info[k] for k in ("post_id", "comment_id", "user_id", "group_id") if info.get(k) is not None), None)
        return _s(info.get("content")), (Ref("item", str(ident)) if ident is not None else None), None

    def _shown(self, posts: Any) -> str | None:
        """What a refresh or trend showed the agent: its first few posts."""
        if not isinstance(posts, list) or not posts:
            return None
        parts = []
        for p in posts[:SHOWN_POSTS]:
            if not isinstance(p, dict):
                continue
            who = self.lookup.user_name(p.get("user_id")) or f"user {p.get('user_id')}"
            text = " ".join(str(p.get("content") or "").split())
            parts.append(f'post {p.get("post_id")} by {who}: "{text[:TEXT_CAP // 3]}"')
        more = len(posts) - SHOWN_POSTS
        return "; ".join(parts) + (f" (and {more} more)" if more > 0 else "") if parts else None


def _info(text: Any) -> dict:
    if text is None or text == "":
        return {}
    if not isinstance(text, (str, bytes)):
        raise ActionError(f"expected JSON text, got {type(text).__name__}", "info")
    try:
        value = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise ActionError(f"invalid JSON: {exc}", "info") from None
    if not isinstance(value, dict):
        raise ActionError(f"expected a JSON object, got {type(value).__name__}", "info")
    return value


def _s(value: Any) -> str | None:
    return value if isinstance(value, str) and value.strip() else None


def _id(value: Any) -> str | None:
    return None if value is None or isinstance(value, (dict, list, bool)) else str(value)


def parse_db(path: Path, *, sim_id: str, platform: str | None = None,
             round_minutes: int = DEFAULT_ROUND_MINUTES) -> Iterator[Item]:
    """A finished database, every trace row (``connectors.follow`` reads growing ones)."""
    reader = TraceReader(path, sim_id=sim_id, platform=platform, round_minutes=round_minutes)
    try:
        last = 0
        while rows := reader.rows(last):
            for rowid, user_id, created_at, action, info in rows:
                yield from reader.row(rowid, user_id, created_at, action, info)
                last = rowid
        yield from reader.finish()
    finally:
        reader.close()
