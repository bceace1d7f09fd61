"""A local stand-in for vLLM's OpenAI-compatible server, for tests and benchmarks.

Endpoints: ``POST /v1/chat/completions`` (honours ``response_format``
json_schema; answers our schemas like the deterministic backend, any
other schema with a minimal valid instance), ``POST /v1/completions`` (a
prompt or a list of prompts, as vLLM takes them, rendered with one of the
chat templates of ``chat_templates.py``; the output constraint in
``structured_outputs.json``, or ``response_format``), ``POST /v1/embeddings``,
``GET /v1/models``, ``GET /health``, ``GET /stats`` and ``POST /stats/reset``.

It models what matters to a client: latency per request (with seeded
jitter), a capacity of sequences processed at once beyond which requests
queue (as vLLM's scheduler does; each prompt of a list takes one), a seeded error rate (500 or 429 with
Retry-After), models that always fail, scripted failures for the next
requests, and usage token counts.

CLI: ``python -m streams.llm.devserver --port 8000 --latency-ms 50 --capacity 256 --error-rate 0.0``
In tests: ``with DevServer(DevServerConfig(latency_ms=5)) as srv: srv.url ...``
"""

from __future__ import annotations

import argparse
import asyncio
import base64
import json
import os
import random
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections import Counter, deque
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import orjson
import uvicorn
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, Response

from .chat_templates import parse as parse_template
from .deterministic import answer
from .embedder import hash_embed_array
from .prompts import SCHEMAS, SCHEMA_NAMES, parse_user
from .records import estimate_tokens
from .schema import example_for, validate

_ROOT = Path(__file__).resolve().parents[2]


@dataclass
class DevServerConfig:
    latency_ms: float = 50.0
    jitter_ms: float = 0.0  # uniform +/- around latency_ms, seeded
    capacity: int = 256  # requests processed at once; the rest queue
    error_rate: float = 0.0  # share of chat/embedding requests that fail
    error_statuses: tuple[int, ...] = (500, 429)  # picked at random for error_rate
    retry_after_s: float | None = 1.0  # Retry-After sent with 429/503 (None: no header)
    seed: int = 7
    prompt_tokens: int | None = None  # fixed usage figures; None: len(text)//4
    completion_tokens: int | None = None
    embed_dim: int = 384
    models: tuple[str, ...] = (
        "Qwen/Qwen2.5-1.5B-Instruct", "Qwen/Qwen2.5-7B-Instruct",
        "Qwen/Qwen2.5-32B-Instruct", "BAAI/bge-small-en-v1.5",
    )
    fail_models: set[str] = field(default_factory=set)  # always answer 500
    invalid_models: set[str] = field(default_factory=set)  # answer text that is not JSON
    # Scripted statuses for the next requests, e.g. [500, 500] or [429].
    fail_next: list[int] = field(default_factory=list)
    completions: bool = True  # False: no /v1/completions (404), as a chat-only server
    # Answers that break their schema, for the next this many prompts of a list.
    invalid_next_prompts: int = 0


class _State:
    def __init__(self, config: DevServerConfig):
        self.config = config
        self.lock = threading.Lock()  # tests mutate config/stats from another thread
        self.rng = random.Random(config.seed)
        self.slots: asyncio.Condition | None = None
        self.reset()

    def reset(self) -> None:
        with self.lock:
            self.requests: Counter[str] = Counter()
            self.prompts = 0  # prompts of /v1/completions requests
            self.models: Counter[str] = Counter()
            self.statuses: Counter[int] = Counter()
            self.in_flight = 0
            self.max_in_flight = 0
            self.processing = 0
            self.max_processing = 0
            self.arrivals: deque[float] = deque(maxlen=10_000)  # monotonic arrival times, recent
            self.bodies: deque[dict[str, Any]] = deque(maxlen=100)  # last requests, for assertions

    def stats(self) -> dict[str, Any]:
        with self.lock:
            return {
                "requests": dict(self.requests), "total": sum(self.requests.values()), "prompts": self.prompts,
                "models": dict(self.models), "statuses": {str(k): v for k, v in self.statuses.items()},
                "in_flight": self.in_flight, "max_in_flight": self.max_in_flight,
                "max_processing": self.max_processing, "arrivals": list(self.arrivals),
            }

    def pick_failure(self, model: str) -> int | None:
        cfg = self.config
        with self.lock:
            if cfg.fail_next:
                status = cfg.fail_next.pop(0)
                return status if status != 200 else None
            if model in cfg.fail_models:
                return 500
            if cfg.error_rate > 0 and self.rng.random() < cfg.error_rate:
                return self.rng.choice(cfg.error_statuses)
        return None

    def delay(self) -> float:
        cfg = self.config
        with self.lock:
            jitter = self.rng.uniform(-cfg.jitter_ms, cfg.jitter_ms) if cfg.jitter_ms else 0.0
        return max(0.0, cfg.latency_ms + jitter) / 1000.0


def _error(status: int, state: _State) -> JSONResponse:
    headers = {}
    if status in (429, 503) and state.config.retry_after_s is not None:
        headers["Retry-After"] = f"{state.config.retry_after_s:g}"
    body = {"object": "error", "message": f"simulated {status}", "type": "ServerError", "code": status}
    return JSONResponse(body, status_code=status, headers=headers)


def _structured(schema: dict[str, Any], schema_name: str, user: str, *, known: bool = False) -> str:
    """The answer the deterministic backend would give, or a minimal valid
    instance. ``known``: the schema is one of ours, whose deterministic
    answers match it by construction (tests/unit/streams/llm/
    test_llm_deterministic.py), so they are not validated again here."""
    parsed = parse_user(schema_name, user)
    data = None
    if parsed is not None:
        try:
            data = answer(*parsed)
        except (KeyError, ValueError):
            data = None
    if data is None or (not known and validate(schema, data)):
        data = example_for(schema)
    return json.dumps(data)


def _chat_content(body: dict[str, Any]) -> str:
    fmt = body.get("response_format") or {}
    messages = body.get("messages") or []
    user = next((m.get("content", "") for m in reversed(messages) if m.get("role") == "user"), "")
    if fmt.get("type") == "json_schema":
        spec = fmt.get("json_schema") or {}
        return _structured(spec.get("schema") or {}, spec.get("name", ""), user if isinstance(user, str) else "")
    if fmt.get("type") == "json_object":
        return "{}"
    return "OK"


def _completion_schema(body: dict[str, Any]) -> dict[str, Any] | None:
    spec = body.get("structured_outputs") or {}
    if isinstance(spec.get("json"), dict):
        return spec["json"]
    fmt = body.get("response_format") or {}
    if fmt.get("type") == "json_schema":
        return (fmt.get("json_schema") or {}).get("schema")
    return None


def _schema_name(schema: dict[str, Any] | None) -> str:
    # A completions request names no schema: ours are known by their content.
    return next((SCHEMA_NAMES[task] for task, known in SCHEMAS.items() if known == schema), "")


def _completion_text(prompt: str, schema: dict[str, Any] | None, name: str) -> str:
    if schema is None:
        return "OK"
    parts = parse_template(prompt)
    return _structured(schema, name, parts[1] if parts else prompt, known=bool(name))


def create_app(state: _State) -> FastAPI:
    app = FastAPI(title="murmur vLLM dev server")

    async def handle(request: Request, kind: str) -> Response:
        try:
            body = orjson.loads(await request.body())
        except ValueError:  # orjson.JSONDecodeError is one
            return JSONResponse({"object": "error", "message": "body is not JSON", "code": 400}, status_code=400)
        if not isinstance(body, dict):
            return JSONResponse({"object": "error", "message": "body is not an object", "code": 400}, status_code=400)
        model = str(body.get("model", ""))
        with state.lock:
            state.requests[kind] += 1
            state.models[model] += 1
            state.in_flight += 1
            state.max_in_flight = max(state.max_in_flight, state.in_flight)
            state.arrivals.append(time.monotonic())
            state.bodies.append(body)
        try:
            status = state.pick_failure(model)
            if status is not None:
                with state.lock:
                    state.statuses[status] += 1
                return _error(status, state)
            # Each prompt of a list is a sequence of the scheduler's batch;
            # beyond capacity, requests wait like the scheduler queue.
            seqs = max(1, min(len(_prompts(body)), state.config.capacity)) if kind == "completions" else 1
            if state.slots is None:
                state.slots = asyncio.Condition()
            async with state.slots:
                await state.slots.wait_for(lambda: state.processing + seqs <= state.config.capacity)
                with state.lock:
                    state.processing += seqs
                    state.max_processing = max(state.max_processing, state.processing)
            try:
                await asyncio.sleep(state.delay())
            finally:
                async with state.slots:
                    with state.lock:
                        state.processing -= seqs
                    state.slots.notify_all()
            reply = {"chat": _chat, "completions": _completions, "embeddings": _embeddings}[kind](body, model, state)
            with state.lock:
                state.statuses[200] += 1
            # orjson: the same compact JSON as JSONResponse, in a tenth of the time.
            return Response(orjson.dumps(reply), media_type="application/json")
        finally:
            with state.lock:
                state.in_flight -= 1

    @app.post("/v1/chat/completions")
    async def chat(request: Request) -> JSONResponse:
        return await handle(request, "chat")

    @app.post("/v1/completions")
    async def completions(request: Request) -> JSONResponse:
        if not state.config.completions:
            return JSONResponse({"detail": "Not Found"}, status_code=404)
        return await handle(request, "completions")

    @app.post("/v1/embeddings")
    async def embeddings(request: Request) -> JSONResponse:
        return await handle(request, "embeddings")

    @app.get("/v1/models")
    async def models() -> dict[str, Any]:
        data = [{"id": m, "object": "model", "owned_by": "murmur-devserver"} for m in state.config.models]
        return {"object": "list", "data": data}

    @app.get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    @app.get("/stats")
    async def stats() -> dict[str, Any]:
        return state.stats()

    @app.post("/stats/reset")
    async def reset() -> dict[str, str]:
        state.reset()
        return {"status": "reset"}

    return app


def _chat(body: dict[str, Any], model: str, state: _State) -> dict[str, Any]:
    cfg = state.config
    if model in cfg.invalid_models:
        content = "Sure! Here is my answer: importance is high"
    else:
        content = _chat_content(body)
    prompt_text = "".join(str(m.get("content", "")) for m in body.get("messages") or [])
    pt = cfg.prompt_tokens if cfg.prompt_tokens is not None else estimate_tokens(prompt_text)
    ct = cfg.completion_tokens if cfg.completion_tokens is not None else max(1, estimate_tokens(content))
    return {
        "id": f"chatcmpl-{uuid.uuid4().hex}", "object": "chat.completion", "created": int(time.time()),
        "model": model,
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop", "logprobs": None}],
        "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
    }


def _prompts(body: dict[str, Any]) -> list[str]:
    prompt = body.get("prompt", "")
    return [prompt] if isinstance(prompt, str) else [str(p) for p in prompt]


def _completions(body: dict[str, Any], model: str, state: _State) -> dict[str, Any]:
    cfg = state.config
    prompts = _prompts(body)
    schema = _completion_schema(body)
    name = _schema_name(schema)
    texts = []
    for p in prompts:
        with state.lock:
            state.prompts += 1
            broken = cfg.invalid_next_prompts > 0
            cfg.invalid_next_prompts -= broken
        texts.append("{\"not\": \"the schema\"}" if broken or model in cfg.invalid_models
                     else _completion_text(p, schema, name))
    pt = cfg.prompt_tokens * len(prompts) if cfg.prompt_tokens is not None else estimate_tokens(*prompts)
    ct = cfg.completion_tokens * len(prompts) if cfg.completion_tokens is not None else \
        sum(max(1, estimate_tokens(t)) for t in texts)
    return {
        "id": f"cmpl-{uuid.uuid4().hex}", "object": "text_completion", "created": int(time.time()), "model": model,
        "choices": [{"index": i, "text": t, "logprobs": None, "finish_reason": "stop", "stop_reason": None}
                    for i, t in enumerate(texts)],
        "usage": {"prompt_tokens": pt, "completion_tokens": ct, "total_tokens": pt + ct},
    }


def _embeddings(body: dict[str, Any], model: str, state: _State) -> dict[str, Any]:
    inputs = body.get("input", [])
    texts = [inputs] if isinstance(inputs, str) else [str(t) for t in inputs]
    pt = state.config.prompt_tokens if state.config.prompt_tokens is not None else estimate_tokens(*texts)
    as_base64 = body.get("encoding_format") == "base64"  # little-endian float32, as vLLM and OpenAI send it

    def encoded(text: str):
        vec = hash_embed_array(text, state.config.embed_dim)
        return base64.b64encode(vec.astype("<f4").tobytes()).decode() if as_base64 else vec.tolist()

    data = [{"object": "embedding", "index": i, "embedding": encoded(t)} for i, t in enumerate(texts)]
    return {"object": "list", "data": data, "model": model,
            "usage": {"prompt_tokens": pt, "total_tokens": pt}}


class DevServer:
    """Runs the dev server on a free port in a background thread.

    ``port`` (0: a free one) lets a test stop a server and start another
    where it was, as a restarted vLLM would come back at its address."""

    def __init__(self, config: DevServerConfig | None = None, host: str = "127.0.0.1", port: int = 0):
        self.config = config or DevServerConfig()
        self.host = host
        self._state = _State(self.config)
        self._server: uvicorn.Server | None = None
        self._thread: threading.Thread | None = None
        self.port = port

    @property
    def url(self) -> str:
        """Base URL as vLLM roles expect it (ending in /v1)."""
        return f"http://{self.host}:{self.port}/v1"

    def stats(self) -> dict[str, Any]:
        return self._state.stats()

    def last_bodies(self) -> list[dict[str, Any]]:
        """The JSON bodies of the last (up to 100) chat/embedding requests."""
        with self._state.lock:
            return list(self._state.bodies)

    def reset_stats(self) -> None:
        self._state.reset()

    def start(self) -> "DevServer":
        # proto=IPPROTO_TCP matters: asyncio only sets TCP_NODELAY on accepted
        # sockets whose proto says TCP; without it every reply waits ~40 ms
        # for Nagle/delayed-ACK.
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((self.host, self.port))  # 0: the OS picks a free port; no race with other tests
        self.port = sock.getsockname()[1]
        config = uvicorn.Config(create_app(self._state), log_level="warning", access_log=False,
                                lifespan="off", backlog=4096, timeout_keep_alive=30)
        self._server = uvicorn.Server(config)
        self._thread = threading.Thread(target=self._server.run, kwargs={"sockets": [sock]},
                                        name=f"devserver:{self.port}", daemon=True)
        self._thread.start()
        deadline = time.monotonic() + 10
        while not self._server.started:
            if time.monotonic() > deadline or not self._thread.is_alive():
                raise RuntimeError("dev server did not start")
            time.sleep(0.01)
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.should_exit = True
        if self._thread is not None:
            self._thread.join(timeout=10)
        self._server = self._thread = None

    def __enter__(self) -> "DevServer":
        return self.start()

    def __exit__(self, *exc: Any) -> None:
        self.stop()


@contextmanager
def spawn(latency_ms: float, capacity: int):
    """Run the server in its own process (as a real vLLM server would be, so
    its CPU does not share the client's interpreter); yields
    (base URL ending in /v1, stats(), reset())."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    cmd = [sys.executable, "-m", "streams.llm.devserver", "--port", str(port),
           "--latency-ms", str(latency_ms), "--capacity", str(capacity)]
    proc = subprocess.Popen(cmd, cwd=_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                            env={**os.environ, "PYTHONPATH": str(_ROOT)})
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 20
        while True:
            try:
                if httpx.get(f"{url}/health", timeout=0.5).status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"dev server did not start: {proc.stderr.read().decode()[-500:]}")
            time.sleep(0.05)
        yield url + "/v1", lambda: httpx.get(f"{url}/stats").json(), lambda: httpx.post(f"{url}/stats/reset")
    finally:
        proc.terminate()
        proc.wait(timeout=10)



def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("--host", default="127.0.0.1")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--latency-ms", type=float, default=50.0)
    p.add_argument("--jitter-ms", type=float, default=0.0)
    p.add_argument("--capacity", type=int, default=256)
    p.add_argument("--error-rate", type=float, default=0.0)
    p.add_argument("--retry-after-s", type=float, default=1.0)
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--prompt-tokens", type=int, default=None)
    p.add_argument("--completion-tokens", type=int, default=None)
    p.add_argument("--embed-dim", type=int, default=384)
    a = p.parse_args(argv)
    cfg = DevServerConfig(latency_ms=a.latency_ms, jitter_ms=a.jitter_ms, capacity=a.capacity,
                          error_rate=a.error_rate, retry_after_s=a.retry_after_s, seed=a.seed,
                          prompt_tokens=a.prompt_tokens, completion_tokens=a.completion_tokens,
                          embed_dim=a.embed_dim)
    print(json.dumps({"listening": f"http://{a.host}:{a.port}/v1", **asdict(cfg)}, default=list))
    uvicorn.run(create_app(_State(cfg)), host=a.host, port=a.port, log_level="warning",
                access_log=False, backlog=4096)


if __name__ == "__main__":
    main()
