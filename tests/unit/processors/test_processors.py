"""Decision functions of the processors, without Kafka."""

import asyncio
from types import SimpleNamespace

import pytest

from processors import contradiction as con
from processors import importance as imp
from processors import reflection as ref
from processors.agent import AgentPass
from processors.agent import empty_state as agent_empty_state
from streams.llm import DeterministicLlm, DeterministicEmbedder, LlmUnavailable
from streams.runtime import Incoming, by_agent
from streams.settings import LlmSettings, Settings
from streams.topics import CONFLICTS, SCORED, STANCES
from streams.vectors import vector_of

EMB = DeterministicEmbedder(384)


def memory(mid, content, *, importance=5, round_=1, ts=None, kind="post", agent="a"):
    return {"event_id": f"s-{mid}", "memory_id": mid, "sim_id": "s", "round": round_, "ts": ts or round_ * 1000,
            "agent_id": agent, "kind": kind, "public": kind == "post", "action": "CREATE_POST", "platform": "",
            "content": content, "importance": importance, "importance_fallback": False, "scorer": "t",
            "embedding": EMB.embed_sync([content])[0], "embedder": "t", "source_topic": "memory.scored.v1",
            "source_partition": 0, "source_offset": 0}


def inc(record, offset=0, type_name="ScoredMemory"):
    return Incoming(type_name, record, "t", 0, offset, b"s/" + record["agent_id"].encode())


def runtime(settings=None, llm=None):
    settings = settings or Settings()
    return SimpleNamespace(settings=settings, llm=llm or DeterministicLlm(settings), embedder_name="deterministic-hash-v1")


# -- importance, contradiction and the one memory call ---------------------------
def post_rec(eid, content, *, agent="a", action="CREATE_POST", round_=1, ts=None):
    return {"event_id": eid, "sim_id": "s", "round": round_, "ts": ts or round_ * 1000, "agent_id": agent,
            "action": action, "content": content, "platform": "x"}


class Counting(DeterministicLlm):
    """The deterministic answers, each call's task counted."""

    def __init__(self, settings, down=False):
        super().__init__(settings)
        self.tasks, self.down = [], down

    async def complete_json(self, role, prompt, **kw):
        self.tasks.append(prompt.task)
        if self.down:
            raise LlmUnavailable("down")
        return await super().complete_json(role, prompt, **kw)


def one_pass(rt, items, question="Is the Riverside plan good?"):
    """The agent pass over one agent's inputs -> what it derived."""
    async def the_question(_sim):
        return question

    async def go():
        (_, state, derived), = await AgentPass(rt, the_question).batch({b"k": agent_empty_state()}, {b"k": items})
        return derived
    return asyncio.run(go())


def test_importance_scores_embeds_and_keeps_order():
    posts = [post_rec("e1", "I liked a post by Bo", action="LIKE_POST"),
             post_rec("e2", "The Riverside plan is a disaster! 200 parking spaces gone, I will fight it.", ts=1001)]
    items = [inc(p, i, "Post" if i else "Observation") for i, p in enumerate(posts)]
    rt = runtime(llm=Counting(Settings()))
    out = one_pass(rt, items).of(SCORED)
    assert [m["memory_id"] for m in out] == ["e1", "e2"]
    assert out[0]["importance"] < out[1]["importance"] and out[0]["kind"] == "observation" and not out[0]["public"]
    assert all(len(vector_of(m)) == 384 and m["embedding"] == [] and m["scorer"] == "deterministic" for m in out)
    assert all(m["valence"] is None for m in out)  # the deterministic backend: stance reads posts offline
    assert rt.llm.tasks == ["memory", "memory"]  # one call per memory
    again = one_pass(runtime(llm=Counting(Settings())), items).of(SCORED)
    assert again == out  # deterministic ids and values


def test_importance_falls_back_to_5_and_says_so():
    rt = runtime(llm=Counting(Settings(), down=True))
    derived = one_pass(rt, [inc(post_rec("e1", "hello"), 0, "Post")])
    (m,) = derived.of(SCORED)
    assert m["importance"] == 5 and m["importance_fallback"] is True and derived.of(CONFLICTS) == []


def test_on_a_model_backend_one_call_reads_importance_stance_and_contradictions():
    settings = Settings(llm=LlmSettings(backend="vllm"))
    rt = runtime(settings, Counting(settings))
    texts = ["The Riverside bike lane plan is good for our street and I support it.",
             "After the study, the Riverside bike lane plan looks bad for our street. I now oppose it."]
    derived = one_pass(rt, [inc(post_rec(f"p{i}", t, round_=i + 1), i, "Post") for i, t in enumerate(texts)])
    first, second = derived.of(SCORED)
    assert first["valence"] > 0 > second["valence"] and first["scorer"].startswith("vllm:")
    assert [(c["new_memory_id"], c["old_memory_id"]) for c in derived.of(CONFLICTS)] == [("p1", "p0")]
    # the stance step used the valence the memory carries: no call of its own
    assert rt.llm.tasks == ["memory", "memory"]
    assert [s["valence"] for s in derived.of(STANCES) if s["kind"] == "post"] == [first["valence"], second["valence"]]
    # without a question the call reads the post's overall sentiment
    rt = runtime(settings, Counting(settings))
    (m,) = one_pass(rt, [inc(post_rec("p0", texts[0]), 0, "Post")], question="").of(SCORED)
    assert m["valence"] > 0 and rt.llm.tasks == ["memory"]


def test_importance_scores_each_event_id_once():
    recs = [{"event_id": e, "sim_id": "s", "round": 1, "ts": 1, "agent_id": "a", "action": "CREATE_POST",
             "content": "x", "platform": ""} for e in ("e1", "e2", "e1", "e3")]
    batch = [inc(r, i, "Post") for i, r in enumerate(recs)]
    fresh, repeats = imp.split_new(batch, lambda event_id: event_id == "e3")  # e3 was scored in an earlier batch
    assert [i.record["event_id"] for i in fresh] == ["e1", "e2"] and repeats == 2


def test_action_kinds():
    assert imp.kind_of("LIKE_POST") == "like" and imp.kind_of("REPOST") == "repost" and imp.kind_of("ODD") == "odd"


# -- reflection -------------------------------------------------------------------
def test_threshold_trigger_uses_top_k_and_resets():
    state = ref.empty_state()
    dues = []
    for i in range(20):
        dues += ref.step(state, memory(f"m{i}", f"text {i}", importance=(i % 10) + 1, round_=1),
                         threshold=50, every_rounds=5, k=3)
    assert [d.trigger for d in dues] == ["threshold", "threshold"]
    first = dues[0]
    assert first.importance_sum >= 50 and len(first.sources) == 3
    assert [s["importance"] for s in first.sources] == sorted((s["importance"] for s in first.sources), reverse=True)


def test_rounds_trigger_reflects_on_the_window_before_the_new_memory():
    state = ref.empty_state()
    assert ref.step(state, memory("m1", "a", importance=3, round_=1), threshold=150, every_rounds=5, k=10) == []
    assert ref.step(state, memory("m2", "b", importance=3, round_=4), threshold=150, every_rounds=5, k=10) == []
    (due,) = ref.step(state, memory("m3", "c", importance=3, round_=6), threshold=150, every_rounds=5, k=10)
    assert due.trigger == "rounds" and {s["id"] for s in due.sources} == {"m1", "m2"}
    assert state["sum"] == 3 and [m["id"] for m in state["top"]] == ["m3"]


def test_redelivered_memories_and_reflections_do_not_count():
    state = ref.empty_state()
    m = memory("m1", "a", importance=9)
    ref.step(state, m, threshold=150, every_rounds=5, k=10)
    ref.step(state, m, threshold=150, every_rounds=5, k=10)
    ref.step(state, memory("r1", "belief", importance=7, kind="reflection"), threshold=150, every_rounds=5, k=10)
    assert state["sum"] == 9


def test_reflections_cite_only_offered_ids_and_ids_are_deterministic():
    due = ref.Due("threshold", [{"id": "m1", "text": "x", "importance": 9, "ts": 1},
                                {"id": "m2", "text": "y", "importance": 8, "ts": 2}], 150, 3, 99)
    beliefs = [{"text": "I believe A", "sources": ["m1", "nope"]}, {"text": "I believe B", "sources": ["ghost"]},
               {"text": "I believe C", "sources": ["m2", "m2"]}]
    out = ref.reflections_from(beliefs, due, sim_id="s", agent_id="a", backend="deterministic", provenance=inc(memory("m2", "y")))
    assert [r["source_ids"] for r in out] == [["m1"], ["m2"]]
    again = ref.reflections_from(beliefs, due, sim_id="s", agent_id="a", backend="deterministic", provenance=inc(memory("m2", "y")))
    assert [r["event_id"] for r in out] == [r["event_id"] for r in again]
    m = ref.as_memory(out[0], [0.0] * 3, "e")
    assert m["kind"] == "reflection" and m["public"] is False and m["importance"] == 7 and m["memory_id"] == out[0]["event_id"]


def test_agent_crossing_threshold_gets_3_to_5_reflections_citing_real_ids():
    settings = Settings(reflection_threshold=40)
    rt = runtime(settings)
    items = [inc(memory(f"m{i}", t, importance=9, round_=1 + i // 3), offset=i) for i, t in enumerate([
        "The bike lane plan is great for our street", "I support the bike lane plan", "Bike lanes make cycling safe",
        "The plan will help local shops", "Cycling to work is wonderful now"])]
    state, reflections, memories = asyncio.run(ref.Reflector(rt, settings).agent_events(ref.empty_state(), items))
    assert 3 <= len(reflections) <= 5
    ids = {i.record["memory_id"] for i in items}
    assert all(r["source_ids"] and set(r["source_ids"]) <= ids for r in reflections)
    assert len(memories) == len(reflections) and all(len(vector_of(m)) == 384 for m in memories)


# -- contradiction ----------------------------------------------------------------
def test_quantised_vectors_keep_cosine():
    a, b = EMB.embed_sync(["the bike lane plan is good", "the bike lane plan is bad"])
    assert abs(con.cosine(con.dequantise(con.quantise(a)), b) - con.cosine(a, b)) < 0.02


def test_neighbours_are_top_3_above_threshold():
    state = con.empty_state()
    texts = ["bike lane plan good", "bike lane plan great", "bike lane plan fine", "bike lane plan ok", "weather today"]
    for i, t in enumerate(texts):
        con.remember(state, memory(f"m{i}", t, ts=i), window=32)
    near = con.neighbours(state, EMB.embed_sync(["bike lane plan bad"])[0], threshold=0.3)
    assert len(near) == 3 and all(s >= 0.3 for s, _ in near) and "m4" not in {m["id"] for _, m in near}


def test_window_is_bounded():
    state = con.empty_state()
    for i in range(10):
        con.remember(state, memory(f"m{i}", f"text {i}"), window=4)
    assert [m["id"] for m in state["window"]] == ["m6", "m7", "m8", "m9"]


def test_stance_flip_is_a_conflict_with_reason_and_same_stance_is_not():
    texts = ["The Riverside bike lane plan is good for our street and I support it.",
             "The Riverside bike lane plan is great for our street, I support it fully.",
             "After the study, the Riverside bike lane plan looks bad for our street. I now oppose it."]
    recs = [post_rec(f"m{i + 1}", t, round_=i + 1) for i, t in enumerate(texts)]
    derived = one_pass(runtime(), [inc(r, i, "Post") for i, r in enumerate(recs)])
    conflicts = derived.of(CONFLICTS)
    assert {(c["new_memory_id"], c["old_memory_id"]) for c in conflicts} == {("m3", "m1"), ("m3", "m2")}
    c = next(c for c in conflicts if c["old_memory_id"] == "m1")
    assert c["reason"] and c["old_ts"] == recs[0]["ts"] and c["ts"] == recs[2]["ts"] and c["similarity"] >= 0.3


def test_a_redelivered_memory_is_not_compared_again():
    window = con.Window(Settings())
    old, new = memory("m1", "the bike lane plan is good"), memory("m2", "the bike lane plan is bad")
    state = con.empty_state()
    assert window.candidates(state, old) == []
    assert [m["id"] for _, m in window.candidates(state, new)] == ["m1"]
    assert window.candidates(state, old) == [] and [m["id"] for m in state["window"]] == ["m1", "m2"]


def test_conflicts_only_for_the_candidates_named():
    new = memory("m3", "the plan is bad")
    near = [(0.9, {"id": "m1", "ts": 1, "t": "the plan is good"}), (0.5, {"id": "m2", "ts": 2, "t": "plan ok"})]
    out = con.conflicts_of(new, near, {2: "A positive, B negative"}, "vllm:m", inc(new))
    assert [(c["old_memory_id"], c["reason"], c["similarity"]) for c in out] == [("m2", "A positive, B negative", 0.5)]


def test_by_agent_keeps_order_within_agent():
    items = [inc(memory("1", "x", agent="a")), inc(memory("2", "x", agent="b")), inc(memory("3", "x", agent="a"))]
    groups = by_agent(items)
    assert [[i.record["memory_id"] for i in g] for g in groups.values()] == [["1", "3"], ["2"]]


# -- stance and verdict (live path) ------------------------------------------------
from processors import stance as stn  # noqa: E402
from processors import verdict as vrd  # noqa: E402
from processors.opinion import Evidence  # noqa: E402
from processors.stance_model import Reading  # noqa: E402


def stance_rec(mid, agent, rnd, v, w, kind="post", flipped=False, agent_stance=1):
    return {"event_id": f"st-{mid}-{kind}", "sim_id": "s", "round": rnd, "ts": rnd * 1000, "agent_id": agent,
            "memory_id": mid, "kind": kind, "valence": v, "weight": w, "agent_stance": agent_stance,
            "flipped": flipped, "backend": "lexicon-v1"}


def marker(rnd):
    return Incoming("RoundMarker", {"event_id": f"m{rnd}", "sim_id": "s", "round": rnd, "ts": rnd * 1000 + 999,
                                    "kind": "round_end"}, "sim.rounds.v1", 0, rnd, b"s")


def never_seen(_):
    return False


def test_verdict_emits_at_round_end_and_again_for_late_contributions():
    state, authors = vrd.empty_state(), {}  # the authors table, kept across batches
    state, out = vrd.sim_events(state, [inc(stance_rec("p1", "a", 0, 0.8, 1.0), 0, "Stance"), marker(0)], never_seen,
                                authors=authors)
    assert [(v["round"], v["support_ratio"], v["post_count"]) for v in out] == [(0, 0.8, 1)]
    state, out = vrd.sim_events(state, [marker(1)], never_seen, authors=authors)
    assert [(v["round"], v["support_ratio"]) for v in out] == [(1, 0.8)]
    # a round-0 contribution arriving late re-emits rounds 0 and 1, same ids
    state, out = vrd.sim_events(state, [inc(stance_rec("p2", "b", 0, -0.4, 1.0), 1, "Stance")], never_seen,
                                authors=authors)
    assert [(v["round"], v["support_ratio"], v["post_count"]) for v in out] == [(0, 0.2, 2), (1, 0.2, 2)]
    assert out[0]["event_id"] == vrd.verdict_record(sim_id="s", question="", round_=0, ts=0, evidence=Evidence(),
                                                    authors=0, stances=[], flips=0, backend="")["event_id"]
    # a retraction takes the superseded post back
    state, out = vrd.sim_events(state, [inc(stance_rec("p1", "a", 0, 0.8, 1.0, kind="retract"), 2, "Stance")], never_seen,
                                authors=authors)
    assert out[-1]["support_ratio"] == -0.4 and out[-1]["post_count"] == 1


def test_applied_keeps_one_number_per_author_and_skips_what_it_applied():
    table: dict[str, object] = {}  # the applied table of one simulation, across batches

    def batch(records):
        applied = vrd.Applied(table.get)
        skipped = [applied(r) for r in records]
        table.update(applied.writes())
        return skipped

    a1, a2, a3 = ({**stance_rec(f"p{i}", "a", 0, 0.5, 1.0), "seq": i} for i in (1, 2, 3))
    b1 = {**stance_rec("q1", "b", 0, 0.5, 1.0), "seq": 1}
    assert batch([a1, a2, b1]) == [False, False, False]
    assert table == {"@a": 2, "@b": 1}  # one entry per author, however many contributions
    # a redelivery repeats numbers already applied, in this batch or an earlier one
    assert batch([a2, a1, a3, a3, b1]) == [True, True, False, True, True]
    assert table == {"@a": 3, "@b": 1}
    # written before there was a seq: told apart by id, as before
    old = stance_rec("p0", "a", 0, 0.5, 1.0)
    assert batch([old, old]) == [False, True] and batch([old]) == [True]
    assert table["st-p0-post"] is True
    # applied by id before the upgrade, redelivered with a seq after it: still once
    assert batch([{**old, "seq": 9}]) == [True] and table["@a"] == 3


def test_stance_events_are_numbered_per_author_in_emission_order():
    state = stn.empty_state()
    persona = {"event_id": "pe", "sim_id": "s", "agent_id": "a", "credibility": 0.8, "conviction": 0.2,
               "initial_stance": 0.5, "round": 0, "ts": 0}
    stn.apply(state, Incoming("Persona", persona, "t", 0, 0, None), None)
    reading = Reading(0.6, "read", "en", "lexicon-v2")
    seqs = []
    for i in range(3):
        mem = {"event_id": f"m{i}", "memory_id": f"m{i}", "sim_id": "s", "agent_id": "a", "round": i, "ts": i,
               "kind": "post", "importance": 0.5, "content": "x"}
        seqs.append(stn.apply(state, Incoming("ScoredMemory", mem, "t", 0, i + 1, None), reading)["seq"])
        assert stn.apply(state, Incoming("ScoredMemory", mem, "t", 0, i + 1, None), reading) is None  # redelivered
    assert seqs == [1, 2, 3] and state["emitted"] == 3


def test_a_verdict_re_emitted_later_counts_the_stances_of_its_own_round():
    # Found by the checkpoint-restore comparison: a catch-up that reads
    # rounds 0-2 in one batch must give round 0 the same verdict as a run
    # that closed round 0 before round 2's posts existed.
    def run(batches):
        state, last, authors = vrd.empty_state(), {}, {}
        for batch in batches:
            state, out = vrd.sim_events(state, batch, never_seen, authors=authors)
            last.update({v["round"]: v for v in out})
        return last

    a0 = inc(stance_rec("p1", "a", 0, 0.8, 1.0, agent_stance=1), 0, "Stance")
    a2 = inc(stance_rec("p2", "a", 2, -0.8, 1.0, flipped=True, agent_stance=-1), 1, "Stance")
    late = inc(stance_rec("p3", "b", 0, 0.2, 1.0, agent_stance=1), 2, "Stance")  # re-emits rounds 0..2
    live = run([[a0, marker(0)], [marker(1)], [a2, marker(2)], [late]])
    catch_up = run([[a0, marker(0), marker(1), a2, marker(2), late]])
    assert live == catch_up
    assert (live[0]["stance_positive"], live[0]["stance_negative"]) == (2, 0)
    assert (live[2]["stance_positive"], live[2]["stance_negative"]) == (1, 1)


def test_stance_stage_applies_persona_inertia_and_retracts():
    state = stn.empty_state()
    persona = {"event_id": "pe", "sim_id": "s", "agent_id": "a", "credibility": 0.8, "conviction": 0.2,
               "initial_stance": 0.5, "round": 0, "ts": 0}
    neg = Reading(-0.6, "read", "en", "lexicon-v2")
    assert stn.apply(state, Incoming("Persona", persona, "t", 0, 0, b"s/a"), None) is None
    p1 = memory("m1", "The plan is bad", importance=5)
    e1 = stn.apply(state, inc(p1), neg)
    assert e1["weight"] == pytest.approx(0.8 * 1.0 * 0.5)  # against the held + stance: half weight
    assert e1["agent_stance"] == 1 and not e1["flipped"] and e1["reading"] == "read"
    e2 = stn.apply(state, inc(memory("m2", "Still bad", importance=5)), neg)
    assert e2["flipped"] and e2["agent_stance"] == -1  # ceil(10*0.2) = 2 opposing posts
    assert stn.apply(state, inc(p1), neg) is None  # redelivered
    conflict = {"event_id": "c1", "sim_id": "s", "agent_id": "a", "old_memory_id": "m1", "ts": 5, "round": 2}
    r = stn.apply(state, Incoming("Conflict", conflict, "t", 0, 9, b"s/a"), None)
    assert r["kind"] == "retract" and r["memory_id"] == "m1" and r["valence"] == -0.6 and r["round"] == 2  # retracted from the conflict's round on
    assert r["retracted_kind"] == "post" and r["reading"] == "read"
    # a post the model cannot read weighs nothing and moves no stance
    e3 = stn.apply(state, inc(memory("m3", "太糟糕了", importance=5)), Reading(0.0, "unreadable", "zh", "lexicon-v2"))
    assert e3["weight"] == 0 and e3["reading"] == "unreadable" and e3["agent_stance"] == -1


def test_questions_wait_only_until_the_reader_has_caught_up():
    import threading
    import time as _time

    from processors.questions import Questions
    from streams.settings import VerdictSettings

    q = Questions(Settings(verdict=VerdictSettings(question_wait_s=2.0)))
    q._thread = threading.current_thread()  # no reader thread: the test plays it
    q.known["s1"] = "Will it pass?"

    async def ask_then_catch_up(sim, delay):
        async def reader():
            await asyncio.sleep(delay)
            q.caught_up = _time.monotonic()
        task = asyncio.create_task(reader())
        started = _time.monotonic()
        answer = await q.of(sim)
        await task
        return answer, _time.monotonic() - started

    assert asyncio.run(q.of("s1")) == "Will it pass?"
    answer, waited = asyncio.run(ask_then_catch_up("s2", 0.1))
    assert answer == "" and waited < 1.0  # the whole topic read after the ask: s2 has no question
    assert asyncio.run(q.of("s2")) == ""  # and is not waited for again
    q2 = Questions(Settings(verdict=VerdictSettings(question_wait_s=0.2)))
    q2._thread = threading.current_thread()
    started = _time.monotonic()
    assert asyncio.run(q2.of("s3")) == "" and _time.monotonic() - started >= 0.2  # a reader that never catches up


def test_the_verdict_state_stays_small_however_many_authors_and_rounds():
    """Authors' posts by round live in their own table: the simulation's value
    grows with rounds, not with agents x rounds (3,000 x 70 of them made a
    1 MB changelog record that crashed the worker); author counts, late
    posts and retractions come out as before."""
    from streams.state_codec import pack_state

    state, authors = vrd.empty_state(), {}
    for rnd in range(60):
        batch = [inc(stance_rec(f"p{rnd}-{a}", f"agent-{a}", rnd, 0.5, 1.0), a, "Stance") for a in range(300)]
        state, out = vrd.sim_events(state, batch + [marker(rnd)], never_seen, authors=authors)
    assert out[-1]["round"] == 59 and out[-1]["author_count"] == 300
    assert len(pack_state(state)) < 20_000 and len(authors) == 300
    # A late author of round 10 counts from round 10 on; its post superseded in round 20 counts up to 19.
    state, out = vrd.sim_events(state, [inc(stance_rec("late", "newcomer", 10, 0.5, 1.0), 0, "Stance")], never_seen,
                                authors=authors)
    assert {v["round"]: v["author_count"] for v in out}[10] == 301 and out[-1]["author_count"] == 301
    state, out = vrd.sim_events(state, [inc(stance_rec("late", "newcomer", 20, 0.5, 1.0, kind="retract"), 1, "Stance")],
                                never_seen, authors=authors)
    counted = {v["round"]: v["author_count"] for v in out}
    assert min(counted) == 20 and counted[20] == 300 and counted[59] == 300  # rounds 10-19 keep 301


def test_an_older_state_with_authors_inside_moves_them_to_the_table():
    older = {**vrd.empty_state(), "authors": {"a": {"0": 1, "2": 1}, "b": 3}}
    older.pop("author_changes")
    state, authors = vrd.load_state(older), {}
    state, out = vrd.sim_events(state, [marker(0), marker(3)], never_seen, authors=authors)
    assert "authors" not in state and authors == {"a": {"0": 1, "2": 1}, "b": {"3": 1}}
    assert state["author_changes"] == {"0": 1, "3": 1}
    assert [(v["round"], v["author_count"]) for v in out] == [(0, 1), (3, 2)]
