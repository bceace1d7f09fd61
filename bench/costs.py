"""Measured LLM costs per input event: what ``murmur estimate`` multiplies.

``python -m bench.costs`` (or ``murmur estimate --measure``) runs a
synthetic simulation through the agent pass (``processors/batch.py``, the
functions a live worker runs) with every processor's model-backend code
path (``MURMUR_LLM__BACKEND=vllm``: a post's valence read in its memory
call, the question in the prompt, reflections' beliefs read in one call)
and the deterministic backend's answers, so no server is needed. Each call
is counted as the vLLM client would send it: the prompt rendered in the
chat template the client uses for batched calls, the answer as JSON.
Tokens are characters / 4 (``streams/llm/records.py`` ``estimate_tokens``,
what B7 and the dev server use), not a tokenizer's count; a model's own
answers (reasons in its words) may be longer than the deterministic ones.

The result goes to ``bench/results/costs.json``, committed: the estimate's
basis is a file anyone can re-measure.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import time
from collections import defaultdict
from pathlib import Path

from streams.settings import PROJECT_ROOT, Settings

COSTS_FILE = PROJECT_ROOT / "bench" / "results" / "costs.json"
CASE = PROJECT_ROOT / "eval" / "cases" / "uk_sugar_levy_2018"
STAGE = "agent"  # every model call of a simulation is made in the agent stage (streams/topology.py)
# When each kind of call happens (processors/agent.py, memory_call.py, reflection.py, stance.py).
WHEN = {
    "fast/memory": "one per post or observation (importance, valence, contradictions), "
                   "and one per reflection (its beliefs' valence and contradictions)",
    "balanced/reflection": "one per reflection due (reflection_threshold of importance, "
                           "or reflection_every_rounds)",
    "embed/embed": "one per batch of new posts and observations, and one per reflection's beliefs",
    "fast/stance": "one per post whose memory call did not read its valence",
}


class CountingLlm:
    """The deterministic answers, each call counted as sent to a server."""

    waits = False  # answers in-process (streams/llm/fanout.py)
    backend = "deterministic"

    def __init__(self, settings: Settings) -> None:
        from streams.llm import DeterministicLlm

        self.inner = DeterministicLlm(settings)
        self.template = settings.llm.chat_template
        self.tasks: dict[str, dict] = defaultdict(lambda: {"calls": 0, "prompt_chars": 0, "completion_chars": 0})

    def _count(self, role: str, task: str, prompt_chars: int, completion_chars: int) -> None:
        row = self.tasks[f"{role}/{task}"]
        row["calls"] += 1
        row["prompt_chars"] += prompt_chars
        row["completion_chars"] += completion_chars

    async def complete_json(self, role, prompt, **kw):
        from streams.llm.chat_templates import render

        res = await self.inner.complete_json(role, prompt, **kw)
        self._count(role, prompt.task, len(render(self.template, prompt.system, prompt.user)),
                    len(json.dumps(res.data)))
        return res

    async def embed(self, texts: list[str], **kw) -> list[list[float]]:
        self._count("embed", "embed", sum(len(t) for t in texts), 0)
        return await self.inner.embed(texts, **kw)

    async def aclose(self) -> None:
        await self.inner.aclose()


def model_path_settings(base: Settings) -> Settings:
    """The settings with the model backend named, so every processor takes
    the path it takes in front of vLLM (its calls are answered in-process)."""
    return base.model_copy(update={"llm": base.llm.model_copy(update={"backend": "vllm"})})


async def _run(settings: Settings, events: list[tuple[str, dict]], sim_id: str, question: str) -> CountingLlm:
    from processors.batch import BatchRuntime, derive, verdicts

    llm = CountingLlm(settings)
    rt = BatchRuntime(settings, llm)
    out = await derive(rt, events)
    await verdicts(rt, out, sim_id=sim_id, question=question)  # the stance step: calls for what no memory call read
    return llm


def measure(*, agents: int = 150, rounds: int = 10, seed: int = 3, case: Path = CASE,
            settings: Settings | None = None) -> dict:
    """The costs file's content: calls and tokens by role/task, per input
    event (posts and observations), and what was run."""
    from connectors import synthetic

    settings = model_path_settings(settings or Settings())
    sim = "costs"
    run = synthetic.generate(case, sim_id=sim, seed=seed, agents=agents, rounds=rounds)
    events = [(e.type_name, e.record) for e in run.events]
    inputs = sum(1 for t, _ in events if t in ("Post", "Observation"))
    question = (case / "question.md").read_text(encoding="utf-8").strip()
    started = time.perf_counter()
    llm = asyncio.run(_run(settings, events, sim, question))
    tasks = {}
    for name, row in sorted(llm.tasks.items()):
        prompt, completion = row["prompt_chars"] // 4, row["completion_chars"] // 4
        tasks[name] = {"stage": STAGE, "role": name.split("/")[0], "when": WHEN.get(name, ""), "calls": row["calls"],
                       "prompt_tokens": prompt, "completion_tokens": completion,
                       "per_event": {"calls": row["calls"] / inputs, "prompt_tokens": prompt / inputs,
                                     "completion_tokens": completion / inputs}}
    return {
        "measured_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "command": f"python -m bench.costs --agents {agents} --rounds {rounds} --seed {seed} --case {case.name}",
        "seconds": round(time.perf_counter() - started, 1),
        "python": platform.python_version(),
        "workload": {"generator": "connectors/synthetic.py", "case": case.name, "seed": seed, "agents": agents,
                     "rounds": rounds, "input_events": inputs,
                     "input_events_per_agent_round": round(inputs / (agents * rounds), 3)},
        "token_rule": ("characters / 4 of the prompt as sent (chat template "
                       f"{settings.llm.chat_template!r}) and of the answer JSON; not a tokenizer"),
        "settings": {"reflection_threshold": settings.reflection_threshold,
                     "reflection_every_rounds": settings.reflection_every_rounds,
                     "reflection_top_k": settings.reflection_top_k,
                     "contradiction_window": settings.contradiction_window,
                     "contradiction_similarity": settings.contradiction_similarity},
        "notes": ["per_event: per post or observation in the agent log",
                  "reflection calls depend on rounds (every reflection_every_rounds) and importance "
                  "(reflection_threshold): workloads far from this one's events per agent and round are less exact",
                  "embed calls: one per batch of texts, so their count depends on batching; their tokens do not"],
        "tasks": tasks,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description="Measure LLM calls and tokens per input event (bench/costs.py).")
    parser.add_argument("--agents", type=int, default=150)
    parser.add_argument("--rounds", type=int, default=10)
    parser.add_argument("--seed", type=int, default=3)
    parser.add_argument("--case", default=CASE.name, help="a folder of eval/cases")
    parser.add_argument("--out", type=Path, default=COSTS_FILE)
    a = parser.parse_args()
    result = measure(agents=a.agents, rounds=a.rounds, seed=a.seed, case=PROJECT_ROOT / "eval" / "cases" / a.case)
    a.out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    print(f"{a.out}: {result['workload']['input_events']} events, "
          + ", ".join(f"{k} {v['per_event']['calls']:.3f} calls/event" for k, v in result["tasks"].items()))


if __name__ == "__main__":
    main()
