"""Writes the bundled example simulation, ``town_hall/``, in MiroFish's
per-platform actions.jsonl format (what the demo publishes).

Deterministic: run it again and the files are byte-identical. The story: a
city debates the Riverside bike-lane plan over 10 rounds; most agents keep
their stance, two change their minds half-way (so their memories contradict),
and some lines are malformed on purpose, as real logs are (they must end in
the dead-letter topic, not crash anything).
"""

from __future__ import annotations

import json
import random
from datetime import datetime, timedelta
from pathlib import Path

HERE = Path(__file__).resolve().parent / "town_hall"
START = datetime(2026, 3, 2, 8, 0, 0)
ROUNDS = 10

PRO = [
    "The Riverside bike lane plan will make my commute safer. I support it!",
    "Finally the council is doing something about traffic on Riverside. Good plan.",
    "Protected bike lanes cut injuries by 40% in other cities. The plan is worth it.",
    "I believe the bike lanes will bring more customers to local shops, not fewer.",
    "My kids could bike to school on Riverside if the plan passes. Love it.",
    "Cleaner air and quieter streets: the bike lane plan is a historic chance for us.",
]
CON = [
    "The bike lane plan removes 200 parking spaces on Riverside. Terrible for shops.",
    "Nobody asked the residents. This bike lane plan is a scandal and I oppose it.",
    "Construction will block Riverside for 8 months. The plan is a disaster for deliveries.",
    "I will never support spending 12 million on bike lanes while potholes stay unfixed.",
    "The council ignored the petition against the plan. I'm furious.",
    "Bike lanes on Riverside will push traffic into our quiet side streets. Bad idea.",
]
NEUTRAL = [
    "Is there a map of where the Riverside bike lanes would go?",
    "Going to the town hall meeting on Thursday to hear both sides.",
    "Has anyone read the traffic study behind the plan?",
]
# Agents who change their minds say so about the very thing they said before,
# so their new memory is close to the old one and of opposite valence.
BEFORE_FLIP = {"con": "The Riverside bike lane plan is good for our street and I support it.",
               "pro": "The Riverside bike lane plan is bad for our street and I oppose it."}
FLIP_TO_CON = "After the traffic study, the Riverside bike lane plan looks bad for our street. I now oppose it."
FLIP_TO_PRO = "After the safety numbers, the Riverside bike lane plan looks good for our street. I now support it."

AGENTS = {
    "twitter": [("Ana Ruiz", 0.8), ("Ben Okafor", -0.7), ("Chloe Martin", 0.5), ("Dev Patel", -0.4), ("Riverside Daily", 0.1),
                ("Eli Novak", 0.9), ("Fay Chen", -0.9), ("Gus Weber", 0.3), ("Hana Sato", -0.2), ("Ivan Petrov", 0.6)],
    "reddit": [("u_cyclist42", 0.9), ("u_shopowner", -0.8), ("u_newcomer", 0.0), ("u_engineer", 0.4), ("u_grumpy", -0.6),
               ("u_parent", 0.7)],
}
FLIPS = {("twitter", 2): ("con", 5), ("reddit", 4): ("pro", 6)}  # (platform, agent) -> (new side, from round)


def main() -> None:
    for platform, agents in AGENTS.items():
        rng = random.Random(f"town-hall:{platform}")
        lines: list[str] = []
        t = START

        def emit(obj: dict) -> None:
            lines.append(json.dumps(obj, ensure_ascii=False))

        emit({"event_type": "simulation_start", "timestamp": t.isoformat(), "platform": platform,
              "total_rounds": ROUNDS, "agents_count": len(agents)})
        posts: list[tuple[int, str, str]] = []  # post_id, author, text
        next_id = 1
        for rnd in range(ROUNDS):
            t = START + timedelta(minutes=30 * rnd)
            emit({"event_type": "round_start", "round": rnd, "timestamp": t.isoformat(), "simulated_hour": 8 + rnd // 2})
            actions = 0
            for i, (name, stance) in enumerate(agents):
                if rnd > 0 and rng.random() < 0.25:
                    continue
                t += timedelta(seconds=rng.randint(5, 90))
                flip = FLIPS.get((platform, i))
                side = "pro" if stance > 0.15 else "con" if stance < -0.15 else "neutral"
                if flip and rnd >= flip[1]:
                    side = flip[0]
                base = {"round": rnd, "timestamp": t.isoformat(), "agent_id": i, "agent_name": name,
                        "result": None, "success": True}
                roll = rng.random()
                if flip and rnd < flip[1] and roll < 0.6:
                    text = BEFORE_FLIP[flip[0]]
                    emit({**base, "action_type": "CREATE_POST", "action_args": {"content": text, "post_id": next_id}})
                    posts.append((next_id, name, text)); next_id += 1
                elif flip and rnd == flip[1]:
                    text = FLIP_TO_CON if side == "con" else FLIP_TO_PRO
                    emit({**base, "action_type": "CREATE_POST", "action_args": {"content": text, "post_id": next_id}})
                    posts.append((next_id, name, text)); next_id += 1
                elif roll < 0.45 or not posts:
                    pool = PRO if side == "pro" else CON if side == "con" else NEUTRAL
                    text = rng.choice(pool)
                    action = "CREATE_POST" if platform == "twitter" or not posts else rng.choice(["CREATE_POST", "CREATE_COMMENT"])
                    args = {"content": text, "post_id": next_id}
                    if action == "CREATE_COMMENT":
                        target = rng.choice(posts)
                        args = {"content": text, "post_id": target[0], "comment_id": next_id}
                    emit({**base, "action_type": action, "action_args": args})
                    posts.append((next_id, name, text)); next_id += 1
                elif roll < 0.75:
                    target = rng.choice(posts)
                    emit({**base, "action_type": "LIKE_POST", "action_args": {
                        "post_id": target[0], "post_author_name": target[1], "post_content": target[2]}})
                elif roll < 0.85 and platform == "twitter":
                    target = rng.choice(posts)
                    emit({**base, "action_type": "REPOST", "action_args": {
                        "post_id": target[0], "original_author_name": target[1], "original_content": target[2]}})
                elif roll < 0.92:
                    target = rng.choice(agents)
                    emit({**base, "action_type": "FOLLOW", "action_args": {
                        "follow_id": agents.index(target), "target_user_name": target[0]}})
                else:
                    emit({**base, "action_type": "DO_NOTHING", "action_args": {}})
                actions += 1
            emit({"event_type": "round_end", "round": rnd, "timestamp": t.isoformat(), "actions_count": actions})
        # Malformed lines, as real logs have: they must be dead-lettered.
        insert_at = len(lines) // 2
        if platform == "twitter":
            lines.insert(insert_at, '{"round": 4, "timestamp": "2026-03-02T10:05:00", "agent_id": 3, "action_type": "CREATE_POST", "action_args": {"content": "truncated line')
            lines.insert(insert_at + 1, json.dumps({"round": "five", "timestamp": "2026-03-02T10:06:00", "agent_id": 1,
                                                    "agent_name": "Ben Okafor", "action_type": "LIKE_POST", "action_args": {"post_id": 1}}))
        else:
            lines.insert(insert_at, json.dumps({"round": 5, "timestamp": "2026-03-02T10:36:00", "agent_name": "u_ghost",
                                                "action_type": "CREATE_POST", "action_args": {"content": "who am I?"}}))
        emit_end = {"event_type": "simulation_end", "timestamp": t.isoformat(), "total_rounds": ROUNDS,
                    "total_actions": sum(1 for line in lines if '"action_type"' in line)}
        lines.append(json.dumps(emit_end))
        out = HERE / platform / "actions.jsonl"
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    main()
