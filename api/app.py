"""FastAPI read-model service. Endpoints are sync functions (FastAPI runs them
in its thread pool) because the Cassandra driver's reads are blocking."""

from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path as PathLib
from typing import Annotated

from fastapi import Depends, FastAPI, Header, HTTPException, Path, Query, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.openapi.utils import get_openapi
from starlette.exceptions import HTTPException as StarletteHTTPException
from fastapi.responses import HTMLResponse, JSONResponse, PlainTextResponse, Response
from fastapi.sse import EventSourceResponse, ServerSentEvent
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.context import assemble
from api.models import (Agent, Conflict, Context, Contexts, ContextsRequest, EvalResultRow, Health, Memory, Problem,
                        Reflection, RetrieveRequest, Retrieved, TimelineEntry, Verdict)
from api import auth
from api.limited import LIMITED, charge, key_checks
from api.pages import PAGED, Cursor, paged
from api.problems import BodyLimit, http_error, invalid_request, problem, problem_openapi
from api.request_log import RequestLog
from api.retrieval import Weights, candidates_for, rank
from sinks.cassandra_store import BadCursor, CassandraStore
from sinks.vector_stores import VectorStore, open_vector_store
from streams.errors import ServiceUnavailable
from streams.kafka import check_kafka
from streams.settings import Settings, get_settings

SimId = Annotated[str, Path(min_length=1, max_length=200, description="Simulation id")]
AgentId = Annotated[str, Path(min_length=1, max_length=200, description="Agent id")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Rows to return, newest first")]
MAX_BODY_BYTES = 1 << 20
MONITOR_PAGE = PathLib(__file__).with_name("static") / "monitor.html"
MAX_TS = 253402300799999  # 9999-12-31: Cassandra's and Avro tools' last instant
ERRORS = {
    401: {"model": Problem, "description": "Missing, wrong or revoked API key (when one is required)"},
    403: {"model": Problem, "description": "The API key may not read this simulation"},
    404: {"model": Problem, "description": "Unknown simulation, agent or verdict"},
    413: {"model": Problem, "description": "Request body over 1 MiB"},
    422: {"model": Problem, "description": "A parameter or the body is not valid (``errors`` says which)"},
    503: {"model": Problem, "description": "A dependency (Cassandra, Kafka, Qdrant) does not answer"},
}


def index_note(vectors) -> str:
    """The in-process shard's HNSW index, for /health: how much of it is
    indexed, whether a build runs, and why the last one failed."""
    status = getattr(vectors, "index_status", None)
    if status is None:
        return ""
    s = status()
    note = f"; {s['indexed']} in the HNSW index" + ("; building" if s["building"] else "")
    return note + (f"; last index build failed: {s['last_error']}" if s["last_error"] else "")


def create_app(settings: Settings | None = None, *, run_qdrant_sink: bool = True) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        # Re-entrant: test clients may run the lifespan of one app more than
        # once, and a local Qdrant folder must be opened only once.
        app.state.users = getattr(app.state, "users", 0) + 1
        if app.state.users == 1:
            from streams.llm import make_embedder

            app.state.store = CassandraStore(settings)
            app.state.vectors = open_vector_store(settings)
            app.state.embedder = make_embedder(settings.llm)
            app.state.keys, app.state.throttle = key_checks(settings, app.state.store)
            app.state.sink = None
            if app.state.vectors.local and run_qdrant_sink:
                # Local Qdrant admits one process: the one that serves retrieval
                # also keeps the collection up to date (docs/adr/0001).
                from sinks.qdrant_writer import QdrantSink

                app.state.sink = QdrantSink(settings, app.state.vectors)
                app.state.sink.start_thread()
        try:
            yield
        finally:
            app.state.users -= 1
            if app.state.users == 0:
                if app.state.sink is not None:
                    app.state.sink.stop()
                await app.state.embedder.aclose()
                app.state.vectors.close()
                app.state.store.close()

    app = FastAPI(
        title="Murmur read model",
        version="1",
        description="Agent memory and forecasts of social simulations, materialised from Murmur's Kafka topics.",
        lifespan=lifespan,
        responses=ERRORS,
    )

    @app.middleware("http")
    async def require_key(request: Request, call_next):
        # A middleware, not a dependency, so docs and the OpenAPI spec are
        # covered too; only /health stays open.
        try:
            request.state.caller = await auth.identify(request, settings, getattr(request.app.state, "keys", None))
        except HTTPException as exc:
            return problem(exc.status_code, exc.detail, instance=request.url.path, headers=exc.headers)
        except ServiceUnavailable as exc:
            return problem(503, str(exc), instance=request.url.path)
        except Exception as exc:  # the driver's own errors: the key table is missing, a read timed out
            return problem(503, f"could not look up the API key in Cassandra ({exc}); "
                                "is the schema applied (`murmur db init`)?", instance=request.url.path)
        return await call_next(request)

    # Outermost last: the body limit sees a request first; CORS answers a
    # browser's preflight (which carries no key) before the key check.
    app.add_middleware(BodyLimit, max_bytes=MAX_BODY_BYTES)
    if settings.api_cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.api_cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["X-API-Key", "Authorization", "Content-Type", "Last-Event-ID"],
                           max_age=600)
    app.add_middleware(RequestLog)  # outermost: every request is logged, refused ones too
    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(RequestValidationError, invalid_request)

    def openapi() -> dict:
        if app.openapi_schema is None:
            schema = get_openapi(title=app.title, version=app.version, description=app.description, routes=app.routes)
            app.openapi_schema = auth.document(problem_openapi(schema), auth.key_required(settings))
        return app.openapi_schema

    app.openapi = openapi
    app.state.settings = settings

    def store(request: Request) -> CassandraStore:
        return request.app.state.store

    @app.exception_handler(BadCursor)
    async def bad_cursor(request: Request, exc: BadCursor):
        return problem(422, str(exc), instance=request.url.path)

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(request: Request, exc: ServiceUnavailable):
        return problem(503, str(exc), instance=request.url.path)

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    def health(request: Request, db: CassandraStore = Depends(store)):
        deps = {}
        try:
            deps["kafka"] = {"ok": True, "detail": f"{check_kafka(settings, timeout=3)} broker(s)"}
        except Exception as exc:
            deps["kafka"] = {"ok": False, "detail": str(exc)}
        try:
            deps["cassandra"] = {"ok": True, "detail": f"release {db.ping()}"}
        except Exception as exc:
            deps["cassandra"] = {"ok": False, "detail": str(exc)}
        sink = request.app.state.sink
        try:
            count = request.app.state.vectors.count()
            if sink is not None and not sink.alive:
                deps["qdrant"] = {"ok": False, "detail": f"sink thread stopped: {sink.last_error}"}
            elif sink is not None and sink.last_error:
                deps["qdrant"] = {"ok": False, "detail": f"sink retrying: {sink.last_error}"}
            else:
                mode = "local" if request.app.state.vectors.local else settings.qdrant_url
                deps["qdrant"] = {"ok": True, "detail": f"{count} vectors ({mode}){index_note(request.app.state.vectors)}"}
        except Exception as exc:
            deps["qdrant"] = {"ok": False, "detail": str(exc)}
        ok = all(d["ok"] for d in deps.values())
        body = {"status": "ok" if ok else "degraded", "dependencies": deps}
        return JSONResponse(status_code=200 if ok else 503, content=body)

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics():
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/simulations/{sim}/stream", response_class=EventSourceResponse,
             responses={200: {"description": "Server-Sent Events: snapshot, counts, verdict, reflection, conflict, lag"}})
    async def stream(sim: SimId, request: Request,
                     last_event_id: Annotated[str | None, Header(max_length=4096, description="Resume after this event (the id of the last one received)")] = None):
        """Live events of one simulation (see api/monitor.py for the event
        types); from now on, after a snapshot of the read model, or, with
        ``Last-Event-ID``, from where that event left off."""
        from api.monitor import events

        first = True
        async for name, payload, position in events(settings, sim, request.app.state.store, resume_from=last_event_id):
            # retry: how long a browser waits before reconnecting (with Last-Event-ID).
            yield ServerSentEvent(event=name, data=payload, id=position, retry=3000 if first else None)
            first = False

    @app.get("/simulations/{sim}/monitor", response_class=HTMLResponse)
    def monitor(sim: SimId):
        """The live monitor page of one simulation (no build step; it reads
        the stream above)."""
        return HTMLResponse(MONITOR_PAGE.read_text(encoding="utf-8"))

    @app.get("/simulations/{sim}/timeline", response_model=list[TimelineEntry], responses=PAGED)
    def timeline(sim: SimId, request: Request, response: Response, limit: Limit = 50,
                 before: Annotated[int | None, Query(ge=0, le=MAX_TS, description="Only entries before this event time (epoch ms)")] = None,
                 cursor: Cursor = None, db: CassandraStore = Depends(store)):
        if before is None:
            return paged(request, response, *db.page("timeline", (sim,), limit=limit, cursor=cursor))
        return paged(request, response, *db.page("timeline_before", (sim, before), limit=limit, cursor=cursor))

    @app.get("/simulations/{sim}/agents/{agent}/memories", response_model=list[Memory], responses=PAGED)
    def memories(sim: SimId, agent: AgentId, request: Request, response: Response, limit: Limit = 50,
                 kind: Annotated[str | None, Query(pattern="^(post|observation|reflection)$")] = None,
                 include_superseded: bool = True, cursor: Cursor = None, db: CassandraStore = Depends(store)):
        """The agent's memories, newest first. With ``kind`` or without
        superseded ones a page may hold fewer than ``limit`` rows: the
        filter runs on each page read; only a missing ``Link`` means the end."""
        rows, after = db.page("memories", (sim, agent), limit=limit, cursor=cursor)
        if not rows and cursor is None and agent not in db.agents(sim):
            raise HTTPException(404, f"no agent {agent!r} in simulation {sim!r}")
        rows = [r for r in rows if (not kind or r["kind"] == kind) and (include_superseded or r["valid_to"] is None)]
        return paged(request, response, rows, after)

    @app.get("/simulations/{sim}/agents", response_model=list[Agent], responses=PAGED)
    def agents(sim: SimId, request: Request, response: Response,
               limit: Annotated[int, Query(ge=1, le=1000, description="Agents to return, by agent id")] = 100,
               cursor: Cursor = None, db: CassandraStore = Depends(store)):
        """Agents seen in the simulation (memories or personas), with persona,
        by agent id."""
        rows, after = db.agents_page(sim, limit=limit, cursor=cursor)
        if not rows and cursor is None:
            raise HTTPException(404, f"no simulation {sim!r} (no memories or personas yet)")
        return paged(request, response, rows, after)

    @app.get("/simulations/{sim}/verdict", response_model=Verdict)
    def verdict(sim: SimId, db: CassandraStore = Depends(store)):
        """The latest verdict (highest round)."""
        rows = db.verdicts(sim, limit=1)
        if not rows:
            raise HTTPException(404, f"no verdict for simulation {sim!r} yet")
        return rows[0]

    @app.get("/simulations/{sim}/verdicts", response_model=list[Verdict], responses=PAGED)
    def verdicts(sim: SimId, request: Request, response: Response,
                 limit: Annotated[int, Query(ge=1, le=1000, description="Verdicts to return, oldest round first")] = 100,
                 cursor: Cursor = None, db: CassandraStore = Depends(store)):
        """One verdict per closed round, oldest first."""
        rows, after = db.page("verdicts", (sim,), limit=limit, cursor=cursor)
        if not rows and cursor is None:
            raise HTTPException(404, f"no verdict for simulation {sim!r} yet")
        return paged(request, response, rows, after)

    @app.get("/eval/results", response_model=list[EvalResultRow], responses=PAGED)
    def eval_results(request: Request, response: Response,
                     case: Annotated[str | None, Query(min_length=1, max_length=200)] = None, limit: Limit = 100,
                     cursor: Cursor = None, db: CassandraStore = Depends(store)):
        import json as _json

        rows, after = (db.page("evals", (), limit=limit, cursor=cursor) if case is None
                       else db.page("evals_case", (case,), limit=limit, cursor=cursor))
        return paged(request, response, [{**r, "case": r["case_name"], "features": r["features"] or [],
                                          "result": _json.loads(r["result_json"])} for r in rows], after)

    @app.get("/simulations/{sim}/agents/{agent}/reflections", response_model=list[Reflection], responses=PAGED)
    def reflections(sim: SimId, agent: AgentId, request: Request, response: Response, limit: Limit = 50,
                    cursor: Cursor = None, db: CassandraStore = Depends(store)):
        rows, after = db.page("reflections", (sim, agent), limit=limit, cursor=cursor)
        if not rows and cursor is None and agent not in db.agents(sim):
            raise HTTPException(404, f"no agent {agent!r} in simulation {sim!r}")
        return paged(request, response, rows, after)

    @app.get("/simulations/{sim}/conflicts", response_model=list[Conflict], responses=PAGED)
    def conflicts(sim: SimId, request: Request, response: Response, limit: Limit = 50,
                  agent: Annotated[str | None, Query(min_length=1, max_length=200)] = None,
                  cursor: Cursor = None, db: CassandraStore = Depends(store)):
        if agent is None:
            return paged(request, response, *db.page("conflicts", (sim,), limit=limit, cursor=cursor))
        return paged(request, response, *db.page("agent_conflicts", (sim, agent), limit=limit, cursor=cursor))

    @app.post("/simulations/{sim}/agents/{agent}/retrieve", response_model=list[Retrieved], responses=LIMITED)
    async def retrieve(sim: SimId, agent: AgentId, body: RetrieveRequest, request: Request, response: Response):
        """The agent's own memories (and, if asked, the public timeline) most
        worth recalling for the query, with the three score components."""
        await charge(request, response)
        db: CassandraStore = request.app.state.store
        vectors: VectorStore = request.app.state.vectors
        latest = await run_in_threadpool(db.latest_ts, sim, agent)
        if latest is None:
            raise HTTPException(404, f"no agent {agent!r} in simulation {sim!r}")
        (query_vec,) = await request.app.state.embedder.embed([body.query], sim_id=sim)
        found = await run_in_threadpool(vectors.search, sim_id=sim, agent_id=agent, vector=query_vec,
                                        limit=candidates_for(body.top_k), include_public=body.include_public)
        try:
            weights = Weights(**body.weights.model_dump())
            return rank(found, agent_id=agent, include_public=body.include_public,
                        reference_ts=body.at_ts if body.at_ts is not None else latest, weights=weights,
                        half_life_s=body.half_life_s, top_k=body.top_k)
        except ValueError as exc:
            raise HTTPException(422, str(exc)) from None

    async def contexts_of(state, sim: str, asks: list[tuple[str, str]], *, budget: int, top_k: int,
                          include_public: bool, half_life_s: float) -> list[dict | None]:
        """The blocks of (agent, query) pairs (None: the agent has no memory
        in the simulation): the queries embedded in one call, the Cassandra
        reads all at once, the searches as one batch in the vector engine."""
        vectors = await state.embedder.embed([q for _, q in asks], sim_id=sim)
        rows = await state.store.agents_recall(sim, [a for a, _ in asks])
        present = [i for i, (a, _) in enumerate(asks) if rows[a][0] is not None]
        found = await run_in_threadpool(state.vectors.search_many, [
            {"sim_id": sim, "agent_id": asks[i][0], "vector": vectors[i], "limit": candidates_for(top_k),
             "include_public": include_public} for i in present])
        out: list[dict | None] = [None] * len(asks)
        for i, candidates in zip(present, found):
            agent, query = asks[i]
            latest, reflections, superseded = rows[agent]
            memories = rank(candidates, agent_id=agent, include_public=include_public, reference_ts=latest,
                            weights=Weights(), half_life_s=half_life_s, top_k=top_k)
            block = assemble(budget_tokens=budget, reflections=reflections, superseded=superseded, memories=memories)
            out[i] = {"sim_id": sim, "agent_id": agent, "query": query, "budget_tokens": budget,
                      "used_tokens": block.used_tokens, "text": block.text, "reflections": block.reflections,
                      "superseded": block.superseded, "memories": block.memories, "rests_on": block.rests_on,
                      "left_out": block.left_out}
        return out

    @app.get("/simulations/{sim}/agents/{agent}/context", response_model=Context, responses=LIMITED)
    async def context(sim: SimId, agent: AgentId, request: Request, response: Response,
                      query: Annotated[str, Query(min_length=1, max_length=4000, description="What the agent is about to do or answer")],
                      budget: Annotated[int, Query(ge=16, le=32768, description="Token budget of the block (4 characters a token)")] = 512,
                      top_k: Annotated[int, Query(ge=1, le=100, description="Memories considered, best first")] = 10,
                      include_public: Annotated[bool, Query(description="Also recall the public timeline (never other agents' private memories)")] = True,
                      half_life_s: Annotated[float, Query(gt=0, le=10 * 365 * 86400, description="Recency half-life in event-time seconds")] = 3600.0):
        """What the agent should have in mind for its next step: its latest
        beliefs, the beliefs it changed, and its memories most worth
        recalling for ``query``, within ``budget`` tokens, with the ids the
        block rests on (``api/context.py``)."""
        await charge(request, response)
        (out,) = await contexts_of(request.app.state, sim, [(agent, query)], budget=budget, top_k=top_k,
                                   include_public=include_public, half_life_s=half_life_s)
        if out is None:
            raise HTTPException(404, f"no agent {agent!r} in simulation {sim!r}")
        return out

    @app.post("/simulations/{sim}/context", response_model=Contexts, responses=LIMITED)
    async def contexts(sim: SimId, body: ContextsRequest, request: Request, response: Response):
        """The context of many agents of one round in one request: their
        queries embedded in one call, their reads and searches batched. It
        counts one per agent against the key's quota (one against its rate)."""
        await charge(request, response, cost=len(body.agents))
        built = await contexts_of(request.app.state, sim, [(a.agent_id, a.query) for a in body.agents],
                                  budget=body.budget, top_k=body.top_k, include_public=body.include_public,
                                  half_life_s=body.half_life_s)
        return {"contexts": [c for c in built if c is not None],
                "missing": [a.agent_id for a, c in zip(body.agents, built) if c is None]}

    return app
