"""OASIS databases, as real runs wrote them (../shared/reference/real-runs),
and as other OASIS versions and forks lay them out."""

import shutil
import sqlite3
from collections import Counter
from pathlib import Path

import pytest

from connectors import oasis
from connectors.events import BadLine, OutEvent, Skipped
from streams.serde import AvroSerde
from tests.paths import SHARED

REAL = SHARED / "real-runs"
REDDIT = REAL / "oasis-reddit-qwen" / "reddit_simulation.db"
TWITTER = REAL / "oasis-twitter-gemini" / "twitter_simulation.db"
EMPTY = REAL / "oasis-empty" / "twitter_simulation.db"


@pytest.fixture(scope="module", autouse=True)
def real_runs_present():
    assert REDDIT.is_file() and TWITTER.is_file() and EMPTY.is_file(), f"real OASIS runs missing under {REAL}"


def table_counts(db: Path) -> dict:
    conn = sqlite3.connect(f"file:{db}?mode=ro", uri=True)
    try:
        out = dict(conn.execute("SELECT action, COUNT(*) FROM trace GROUP BY action").fetchall())
        for table in ("post", "comment", "user", "like", "dislike", "comment_like", "comment_dislike"):
            out[f"table:{table}"] = conn.execute(f"SELECT COUNT(*) FROM {table}").fetchone()[0]
        return out
    finally:
        conn.close()


def by_kind(items) -> Counter:
    c = Counter()
    for i in items:
        if isinstance(i, OutEvent):
            c[(i.type_name, i.record.get("action") or i.record.get("kind"))] += 1
        else:
            c[type(i).__name__] += 1
    return c


def test_reddit_run_every_trace_row_published_with_counts_matching_its_tables():
    items = list(oasis.parse_db(REDDIT, sim_id="r"))
    t, c = table_counts(REDDIT), by_kind(items)
    assert c["BadLine"] == 0 and c["Skipped"] == 0
    # every post and comment of the tables is a Post, every reaction an Observation
    assert c[("Post", "CREATE_POST")] == t["create_post"] == t["table:post"]
    assert c[("Post", "CREATE_COMMENT")] == t["create_comment"] == t["table:comment"]
    assert c[("Observation", "LIKE_POST")] == t["like_post"] == t["table:like"]
    assert c[("Observation", "DISLIKE_POST")] == t["dislike_post"] == t["table:dislike"]
    assert c[("Observation", "LIKE_COMMENT")] == t["like_comment"] == t["table:comment_like"]
    assert c[("Observation", "DISLIKE_COMMENT")] == t["dislike_comment"] == t["table:comment_dislike"]
    assert c[("Observation", "REFRESH")] == t["refresh"] and c[("Observation", "SEARCH_POSTS")] == t["search_posts"]
    assert c[("Persona", None)] == t["sign_up"] == t["table:user"]
    rows = sum(v for k, v in t.items() if not k.startswith("table:"))
    assert sum(1 for i in items if not (isinstance(i, OutEvent) and i.derived)) == rows


def test_reddit_comments_answer_their_post_and_reactions_name_what_they_saw():
    items = [i for i in oasis.parse_db(REDDIT, sim_id="r") if isinstance(i, OutEvent)]
    comments = [i.record for i in items if i.record.get("action") == "CREATE_COMMENT"]
    # OASIS's trace gives a comment's id only: its post comes from the comment table
    assert all(c["parent_id"] is not None for c in comments)
    likes = [i.record for i in items if i.record.get("action") == "LIKE_POST"]
    assert all(r["content"].startswith("I liked a post by ") and '"' in r["content"] for r in likes)
    refresh = next(i.record for i in items if i.record.get("action") == "REFRESH")
    assert refresh["content"].startswith("I refreshed my feed and saw: post ")
    serde = AvroSerde()
    for i in items:
        serde.encode(i.type_name, i.record, check=True)


def test_reddit_datetime_clock_gives_rounds_and_markers():
    items = [i for i in oasis.parse_db(REDDIT, sim_id="r", round_minutes=60) if isinstance(i, OutEvent)]
    events = [i.record for i in items if i.type_name in ("Post", "Observation")]
    assert events[0]["ts"] == 1722931244361  # 2024-08-06 08:00:44.361450, the simulated clock, as UTC
    assert max(e["round"] for e in events) == 78  # 78 simulated hours after the first row
    markers = [i.record for i in items if i.type_name == "RoundMarker"]
    starts = [m["round"] for m in markers if m["kind"] == "round_start"]
    ends = [m["round"] for m in markers if m["kind"] == "round_end"]
    assert starts == ends and starts == sorted(set(starts))  # every opened round is closed, once
    assert all(i.derived for i in items if i.type_name == "RoundMarker")
    coarse = [i.record for i in oasis.parse_db(REDDIT, sim_id="r", round_minutes=600)
              if isinstance(i, OutEvent) and i.type_name == "Post"]
    assert max(p["round"] for p in coarse) == 7


def test_twitter_integer_clock_and_text_quirks():
    items = list(oasis.parse_db(TWITTER, sim_id="t"))
    t, c = table_counts(TWITTER), by_kind(items)
    assert c[("Post", "CREATE_POST")] == t["create_post"] == t["table:post"] == 75
    assert c[("Persona", None)] == t["sign_up"] == 15
    posts = [i.record for i in items if isinstance(i, OutEvent) and i.type_name == "Post"]
    assert sorted({p["round"] for p in posts}) == [0, 1, 2, 3, 4]  # integer steps are rounds
    assert {p["ts"] for p in posts if p["round"] == 2} == {2 * 3_600_000}
    assert all(p["platform"] == "twitter" and p["agent_id"].startswith("twitter-") for p in posts)
    # a truncated model output is still a post, published as written
    assert any(p["content"] == "It's" for p in posts)


def test_empty_database_publishes_nothing_and_says_why():
    assert list(oasis.parse_db(EMPTY, sim_id="e")) == []


def test_ids_are_deterministic():
    a = [i.record["event_id"] for i in oasis.parse_db(TWITTER, sim_id="t") if isinstance(i, OutEvent)]
    b = [i.record["event_id"] for i in oasis.parse_db(TWITTER, sim_id="t") if isinstance(i, OutEvent)]
    assert a == b and len(set(a)) == len(a)


def test_a_database_that_is_not_oasis_is_refused_by_name(tmp_path):
    other = tmp_path / "shop.db"
    conn = sqlite3.connect(other)
    conn.execute("CREATE TABLE orders (id INTEGER, item TEXT)")
    conn.commit()
    conn.close()
    with pytest.raises(oasis.NotOasis, match=r"shop.db: not an OASIS database \(no trace table; tables: orders\)"):
        list(oasis.parse_db(other, sim_id="x"))
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"not sqlite at all" * 100)
    with pytest.raises(oasis.NotOasis, match="not an SQLite database"):
        list(oasis.parse_db(junk, sim_id="x"))


def make_db(path: Path, schema: str, rows: list[tuple]) -> Path:
    conn = sqlite3.connect(path)
    conn.executescript(schema)
    conn.executemany("INSERT INTO trace (user_id, created_at, action, info) VALUES (?, ?, ?, ?)", rows)
    conn.commit()
    conn.close()
    return path


def test_a_fork_without_text_tables_still_publishes_every_row(tmp_path):
    # Only a trace table: quotes and reposts name the ids they could not resolve.
    db = make_db(tmp_path / "twitter_simulation.db", "CREATE TABLE trace (user_id INTEGER, created_at DATETIME, "
                 "action TEXT, info TEXT, extra TEXT);", [
                     (1, 0, "create_post", '{"content": "hello", "post_id": 1}'),
                     (2, 0, "quote_post", '{"quoted_id": 1, "new_post_id": 2}'),
                     (3, 1, "repost", '{"reposted_id": 2, "new_post_id": 3}'),
                     (4, 1, "follow", '{"follow_id": 1}'),
                     (4, 1, "teleport", '{"to": "mars"}'),
                     (5, 1, "do_nothing", "{}"),
                     (5, 2, "like_post", "not json"),
                 ])
    items = list(oasis.parse_db(db, sim_id="f"))
    kinds = [(type(i).__name__, getattr(i, "type_name", None)) for i in items if not getattr(i, "derived", False)]
    assert kinds == [("OutEvent", "Post"), ("OutEvent", "Post"), ("OutEvent", "Post"), ("OutEvent", "Observation"),
                     ("OutEvent", "Observation"), ("Skipped", None), ("BadLine", None)]
    posts = [i.record for i in items if isinstance(i, OutEvent) and i.type_name == "Post"]
    assert posts[1]["content"] == "Quote of post 1 (text not in the log)" and posts[1]["parent_id"] == "1"
    assert posts[2]["content"] == "RT post 2 (text not in the log)"
    teleport = next(i for i in items if isinstance(i, OutEvent) and i.record.get("action") == "TELEPORT")
    assert teleport.unknown_action == "TELEPORT"
    bad = items[-1] if isinstance(items[-1], BadLine) else next(i for i in items if isinstance(i, BadLine))
    assert bad.field == "info" and "trace rowid 7" in bad.source_ref
    assert isinstance(next(i for i in items if isinstance(i, Skipped)), Skipped)


def test_current_schema_quote_repost_follow_resolved_from_tables(tmp_path):
    db = tmp_path / "twitter_simulation.db"
    shutil.copy(EMPTY, db)
    conn = sqlite3.connect(db)
    conn.executemany("INSERT INTO user (user_id, agent_id, user_name, name, bio, created_at) VALUES (?, ?, ?, ?, ?, 0)",
                     [(0, 0, "ana", "Ana", "journalist"), (1, 1, "bo", "Bo", "None")])
    conn.execute("INSERT INTO post (post_id, user_id, content, created_at) VALUES (1, 0, 'Tax carbon now', 0)")
    conn.execute("INSERT INTO post (post_id, user_id, original_post_id, content, quote_content, created_at) "
                 "VALUES (2, 1, 1, 'Tax carbon now', 'No way', 1)")
    conn.execute("INSERT INTO post (post_id, user_id, original_post_id, created_at) VALUES (3, 1, 1, 1)")
    conn.execute("INSERT INTO follow (follow_id, follower_id, followee_id, created_at) VALUES (5, 1, 0, 1)")
    conn.executemany("INSERT INTO trace (user_id, created_at, action, info) VALUES (?, ?, ?, ?)", [
        (0, 0, "sign_up", '{"name": "Ana", "user_name": "ana", "bio": "journalist"}'),
        (0, 0, "create_post", '{"content": "Tax carbon now", "post_id": 1}'),
        (1, 1, "quote_post", '{"quoted_id": 1, "new_post_id": 2}'),
        (1, 1, "repost", '{"reposted_id": 1, "new_post_id": 3}'),
        (1, 1, "follow", '{"follow_id": 5}'),
    ])
    conn.commit()
    conn.close()
    items = [i for i in oasis.parse_db(db, sim_id="q") if isinstance(i, OutEvent)]
    persona = [i.record for i in items if i.type_name == "Persona"]
    # Ana signed up; Bo acted without a sign_up row: his persona comes from the user table
    assert [p["agent_id"] for p in persona] == ["twitter-0", "twitter-1"]
    assert persona[0]["archetype"] == "media" and persona[1]["bio"] == ""
    quote, repost = [i.record for i in items if i.type_name == "Post"][1:]
    assert quote["content"] == "No way\n> Ana: Tax carbon now" and quote["parent_id"] == "1" and quote["post_id"] == "2"
    assert repost["content"] == "RT Ana: Tax carbon now" and repost["parent_id"] == "1"
    follow = next(i.record for i in items if i.type_name == "Observation")
    assert follow["content"] == "I followed Ana" and follow["target_id"] == "0"
