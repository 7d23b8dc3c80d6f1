"""create_app(settings): the FastAPI app. No import-time globals: tests build their own."""

from __future__ import annotations

from contextlib import asynccontextmanager

from fastapi import FastAPI
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from threadpoolctl import threadpool_limits

from ..catalog import load_catalog
from ..errors import QkatlasError
from ..resources import frontend_dir
from ..settings import Settings
from .admission import LiveQueue
from .auth import TokenLogin, check_token_setting
from .compress import Compress
from .docs import mount_offline_docs
from .headers import SecurityHeaders
from .hosts import HostCheck
from .inference import LiveModels
from .limits import BodyLimit
from .registry import AtlasRegistry
from .routers import atlases, compare, heads, items, live, stats, system
from .timing import ServerTiming

DESCRIPTION = """Joint query/key embeddings of every attention head.

- Errors are `{"detail": "<message naming the bad value and the valid range>"}` with a 4xx
  status: 404 unknown atlas, layer, head, item, token or method; 422 a bad parameter; 409 a
  projection not computed yet; 413 input too large; 503 a model that cannot be loaded here.
  Never a 500.
- Live inference is admitted per model: one forward pass at a time, a bounded queue behind it;
  a full queue or a long wait is 429 and a model still loading 503, both with `Retry-After`
  (seconds). With a token set (`QKATLAS_TOKEN`) it needs `Authorization: Bearer <token>` or
  the cookie set by opening `/?access_token=<token>` once (401 otherwise).
- Request bodies are limited before they are read (413 naming the limit); a Host header the
  server does not answer to is 400.
- Layers, heads, items and tokens are 0-based. A head's points are `2 * tokens` rows: rows
  `0..tokens-1` are the queries of tokens `0..tokens-1`, rows `tokens..2*tokens-1` their keys.
- Arrays travel as little-endian binary (`application/octet-stream`) with their shape in
  headers (`X-Shape: "<rows>,<dim>"`), tables as JSON columns or an Arrow IPC stream
  (`format=arrow` or `Accept: application/vnd.apache.arrow.stream`). Binary, table and image
  answers carry an `ETag` and answer `If-None-Match` with an empty 304.
- The browser front end is served at `/`, plotly.js at `/vendor/plotly.min.js` (from the
  installed plotly package, no CDN).
"""


def validation_message(exc: RequestValidationError) -> str:
    """Pydantic's errors as one sentence naming each bad parameter, what it got and what is valid."""
    parts = []
    for err in exc.errors():
        loc = [str(p) for p in err.get("loc", ())]
        if err.get("type") == "json_invalid":  # loc is ("body", <character>)
            at = f" at character {loc[1]}" if len(loc) > 1 else ""
            parts.append(f"the request body is not valid JSON: {err.get('ctx', {}).get('error', 'decode error')}{at}")
            continue
        where, name = (loc[0], ".".join(loc[1:])) if len(loc) > 1 else ("request", ".".join(loc))
        label = f"{where} field {name!r}" if where == "body" else f"{where} parameter {name!r}"
        if loc == ["body"]:
            label = "the request body"
        if err.get("type") == "missing":
            parts.append(f"{label} is required")
        else:
            got = repr(err.get("input"))
            got = got if len(got) <= 80 else got[:77] + "..."
            parts.append(f"{label} = {got} is invalid: {err.get('msg')}")
    return "; ".join(parts) or "invalid request"


@asynccontextmanager
async def lifespan(app: FastAPI):
    # Requests run side by side in worker threads. Multithreaded BLAS on top of that
    # oversubscribes the cores, and a sub-millisecond product then waits for a descheduled
    # helper thread (tens of ms on a busy 2-core machine): one BLAS thread per request.
    with threadpool_limits(1, user_api="blas"):
        if app.state.settings.live_warmup:
            present = app.state.atlases.readable()
            app.state.live.warm_up([served.manifest.model.id for served in present],
                                   {state.method for served in present for state in served.manifest.reductions.values()})
        try:
            yield
        finally:
            app.state.live.close()
            app.state.live_queue.close()


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    check_token_setting(settings)
    # docs_url=None: /docs is served below with Swagger UI's files from the swagger-ui-bundle
    # package, so the docs work with no internet (FastAPI's default loads them from a CDN).
    app = FastAPI(title="qkatlas", version="0.1.0", description=DESCRIPTION, lifespan=lifespan, docs_url=None,
                  redoc_url=None, openapi_url="/openapi.json" if settings.docs else None)
    app.state.settings = settings
    app.state.catalog = load_catalog(settings)  # once: /api/models and live inference read this copy
    app.state.atlases = AtlasRegistry(settings.data_dir)
    app.state.live = LiveModels(settings, app.state.catalog)
    app.state.live_queue = LiveQueue(settings)

    @app.exception_handler(QkatlasError)
    async def _qkatlas_error(_request, exc: QkatlasError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=getattr(exc, "headers", None))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request, exc: RequestValidationError):
        return JSONResponse({"detail": validation_message(exc)}, status_code=422)

    # The last added runs first: security headers on every answer, the Host checked before
    # anything else, bodies bounded before a route reads them, compression next to the routes.
    app.add_middleware(Compress)
    app.add_middleware(TokenLogin, settings=settings)
    app.add_middleware(BodyLimit, settings=settings)
    app.add_middleware(ServerTiming)
    app.add_middleware(HostCheck, settings=settings)
    app.add_middleware(SecurityHeaders)
    for module in (system, atlases, heads, stats, items, compare, live):
        app.include_router(module.router)

    if settings.docs:
        mount_offline_docs(app)
    # Last, so every API route wins. The front end ships with the package: no check that it
    # exists, a missing one is a broken install and should fail loudly.
    app.mount("/", StaticFiles(directory=frontend_dir(), html=True), name="frontend")
    return app
