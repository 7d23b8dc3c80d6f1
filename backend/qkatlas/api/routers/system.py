"""Health, readiness, the model catalog, and plotly.js from the installed plotly package."""

from __future__ import annotations

from importlib.resources import files

from fastapi import APIRouter
from fastapi.responses import FileResponse, JSONResponse

from ...build_status import running_builds
from ...layout import ALL
from ..answers.atlases import public
from ..deps import CatalogDep, LiveDep, RegistryDep, SettingsDep
from ..offload import cached_or_in_thread
from ..schemas import Builds, CatalogModel, Health, LayoutInfo, Ready

router = APIRouter()
PLOTLY_CACHE = "public, max-age=604800"


@router.get("/healthz", tags=["health"], response_model=Health)
async def healthz() -> dict:
    """The process is up. Answered on the event loop: it never waits for a worker thread."""
    return {"status": "ok"}


@router.get("/readyz", tags=["health"], response_model=Ready, response_model_exclude_none=True,
            responses={503: {"model": Ready, "description": "no atlas loads (none built yet, or every one damaged)"}})
async def readyz(registry: RegistryDep, live: LiveDep):
    """Ready when at least one atlas loads: its manifest, its token table and, when a layout is
    complete, that layout's first head, read from disk (again only when one of them changes, so
    answered on the event loop, never behind a worker thread or live inference). `damaged` counts
    atlases with a file that does not load; `warming` names the models of live inference still
    loading (their live requests are answered 503 with Retry-After meanwhile)."""
    states = await cached_or_in_thread(registry.states)
    damaged = [s.damage for s in states if s.damage is not None]
    ready = len(states) - len(damaged)
    if ready == 0:
        why = "; ".join(str(d) for d in damaged) if damaged else "build one with `qkatlas build`"
        return JSONResponse({"status": "not ready", "atlases": 0, "damaged": len(damaged),
                             "detail": f"no atlas in the data dir loads; {why}"}, status_code=503)
    return {"status": "ready", "atlases": ready, "damaged": len(damaged), "warming": live.warming() or None}


@router.get("/api/models", tags=["models"], response_model=list[CatalogModel])
def models(catalog: CatalogDep) -> list[dict]:
    """The model catalog (models/*.toml), as read when the server started."""
    return [public(entry.summary()) for entry in catalog.values()]


@router.get("/api/layouts", tags=["models"], response_model=list[LayoutInfo])
def layouts() -> list[dict]:
    """Every layout a build can make (method × dim), in build order, with the method's name for people."""
    return [layout.describe() for layout in ALL]


@router.get("/api/builds", tags=["atlases"], response_model=Builds)
def builds(settings: SettingsDep) -> dict:
    """The builds running now against this data dir: model, stage, heads done of the stage."""
    return {"builds": running_builds(settings.data_dir)}


def plotly_js():
    return files("plotly") / "package_data" / "plotly.min.js"


@router.get("/vendor/plotly.min.js", tags=["static"], include_in_schema=False)
def plotly():
    """plotly.js, served from the installed plotly package (no CDN)."""
    return FileResponse(plotly_js(), media_type="text/javascript", headers={"Cache-Control": PLOTLY_CACHE})
