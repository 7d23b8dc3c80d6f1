"""create_app(settings): the FastAPI app. No import-time globals: tests build their own."""

from __future__ import annotations

from pathlib import Path

from fastapi import FastAPI
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles

from ..errors import QkatlasError
from ..settings import PROJECT_ROOT, Settings

FRONTEND = PROJECT_ROOT / "frontend"


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings.from_env()
    app = FastAPI(title="qkatlas", version="0.1.0", description="Joint query/key embeddings of every attention head.")
    app.state.settings = settings

    @app.exception_handler(QkatlasError)
    async def _qkatlas_error(_request, exc: QkatlasError):
        return JSONResponse({"detail": str(exc)}, status_code=exc.status)

    @app.get("/healthz", tags=["health"])
    def healthz() -> dict:
        return {"status": "ok"}

    if Path(FRONTEND).is_dir():
        app.mount("/", StaticFiles(directory=FRONTEND, html=True), name="frontend")
    return app
