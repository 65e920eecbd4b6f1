"""The FastAPI application: ``create_app(settings)`` (OpenAPI at /docs, versioned under /v1).

User errors never become 500s: `ApiProblem` subclasses answer with their status and a
message; spec errors (`codesign.errors.CodesignError`, pydantic validation) are 422 in
FastAPI's ``{"detail": [{"loc", "msg", "type"}]}`` shape; request bodies over the size
limit are 413 before they are parsed."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.encoders import jsonable_encoder
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import ValidationError

from api.auth import KeyChecker
from api.db.migrate import open_database
from api.db.traces import sync_catalog
from api.deps import AppState
from api.errors import ApiProblem, Invalid
from api.settings import Settings
from codesign import __version__
from codesign.errors import CodesignError

log = logging.getLogger("codesign.api")


def _invalid(loc: list[Any], msg: str, type_: str = "value_error") -> JSONResponse:
    return JSONResponse(
        status_code=422, content={"detail": [{"loc": loc, "msg": msg, "type": type_}]}
    )


def create_app(settings: Settings | None = None, migrate: bool = True) -> FastAPI:
    settings = settings or Settings.from_env()
    engine, S = open_database(settings.database_url, migrate)
    sync_catalog(S)
    app = FastAPI(
        title="codesign",
        version=__version__,
        description="Hardware-software co-design optimizer for serving LLM agents: submit "
        "search jobs, query Pareto-optimal deployments, export engine configs.",
    )
    app.state.codesign = AppState(settings, engine, S, KeyChecker(S))

    @app.exception_handler(Invalid)
    async def _on_invalid(_: Request, exc: Invalid) -> JSONResponse:
        return _invalid(list(exc.loc), exc.detail)

    @app.exception_handler(ApiProblem)
    async def _on_problem(_: Request, exc: ApiProblem) -> JSONResponse:
        return JSONResponse(status_code=exc.status, content={"detail": exc.detail})

    @app.exception_handler(CodesignError)
    async def _on_spec(_: Request, exc: CodesignError) -> JSONResponse:
        return _invalid(["body"], str(exc), "spec_error")

    @app.exception_handler(ValidationError)
    async def _on_validation(_: Request, exc: ValidationError) -> JSONResponse:
        errs = [
            {"loc": ["body", *e["loc"]], "msg": e["msg"], "type": e["type"]} for e in exc.errors()
        ]
        return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errs)})

    @app.exception_handler(RequestValidationError)
    async def _on_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        errs = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return JSONResponse(status_code=422, content={"detail": jsonable_encoder(errs)})

    @app.exception_handler(Exception)
    async def _on_error(request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error on %s %s", request.method, request.url.path)
        return JSONResponse(
            status_code=500,
            content={"detail": f"internal error ({type(exc).__name__}); see the server log"},
        )

    from api.limits import BodyLimit
    from api.routers import catalog, estimate, hardware, jobs, ops, plots, results, traces

    app.add_middleware(BodyLimit, settings=settings)

    app.include_router(ops.router)
    for mod in (jobs, results, plots, traces, catalog, hardware, estimate):
        app.include_router(mod.router, prefix="/v1")
    return app
