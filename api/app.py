"""FastAPI read-model service. Endpoints are sync functions (FastAPI runs them
in its thread pool) because the Cassandra driver's reads are blocking."""

from __future__ import annotations

from contextlib import asynccontextmanager
from typing import Annotated

from fastapi import Depends, FastAPI, HTTPException, Path, Query, Request
from fastapi.responses import JSONResponse, PlainTextResponse
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest

from api.models import Health, Memory, TimelineEntry
from sinks.cassandra_store import CassandraStore
from streams.errors import ServiceUnavailable
from streams.kafka import check_kafka
from streams.settings import Settings, get_settings

SimId = Annotated[str, Path(min_length=1, max_length=200, description="Simulation id")]
AgentId = Annotated[str, Path(min_length=1, max_length=200, description="Agent id")]
Limit = Annotated[int, Query(ge=1, le=1000, description="Rows to return, newest first")]


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or get_settings()

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        app.state.store = CassandraStore(settings)
        yield
        app.state.store.close()

    app = FastAPI(
        title="Murmur read model",
        version="1",
        description="Agent memory and forecasts of social simulations, materialised from Murmur's Kafka topics.",
        lifespan=lifespan,
    )
    app.state.settings = settings

    def store(request: Request) -> CassandraStore:
        return request.app.state.store

    @app.exception_handler(ServiceUnavailable)
    async def unavailable(_request: Request, exc: ServiceUnavailable):
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.get("/health", response_model=Health, responses={503: {"model": Health}})
    def health(db: CassandraStore = Depends(store)):
        deps = {}
        try:
            deps["kafka"] = {"ok": True, "detail": f"{check_kafka(settings, timeout=3)} broker(s)"}
        except Exception as exc:
            deps["kafka"] = {"ok": False, "detail": str(exc)}
        try:
            deps["cassandra"] = {"ok": True, "detail": f"release {db.ping()}"}
        except Exception as exc:
            deps["cassandra"] = {"ok": False, "detail": str(exc)}
        ok = all(d["ok"] for d in deps.values())
        body = {"status": "ok" if ok else "degraded", "dependencies": deps}
        return JSONResponse(status_code=200 if ok else 503, content=body)

    @app.get("/metrics", response_class=PlainTextResponse)
    def metrics():
        return PlainTextResponse(generate_latest(), media_type=CONTENT_TYPE_LATEST)

    @app.get("/simulations/{sim}/timeline", response_model=list[TimelineEntry])
    def timeline(sim: SimId, limit: Limit = 50, before: Annotated[int | None, Query(ge=0, description="Only entries before this event time (epoch ms)")] = None,
                 db: CassandraStore = Depends(store)):
        return db.timeline(sim, limit=limit, before_ms=before)

    @app.get("/simulations/{sim}/agents/{agent}/memories", response_model=list[Memory])
    def memories(sim: SimId, agent: AgentId, limit: Limit = 50,
                 kind: Annotated[str | None, Query(pattern="^(post|observation|reflection)$")] = None,
                 include_superseded: bool = True, db: CassandraStore = Depends(store)):
        rows = db.memories(sim, agent, limit=limit, kind=kind, include_superseded=include_superseded)
        if not rows and agent not in db.agents(sim):
            raise HTTPException(404, f"no agent {agent!r} in simulation {sim!r}")
        return rows

    @app.get("/simulations/{sim}/agents", response_model=list[str])
    def agents(sim: SimId, db: CassandraStore = Depends(store)):
        found = db.agents(sim)
        if not found:
            raise HTTPException(404, f"no simulation {sim!r} (no memories yet)")
        return found

    return app
