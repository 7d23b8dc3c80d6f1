"""What the routers ask for by type: the settings, the catalog, the atlases, an atlas by name (or
404, or 503 when damaged), the live models and their queue, and a checked layout. `SessionDep`-style aliases, one per lookup.

Every lookup is `async`: a plain `def` dependency would cost each request a hop to a worker thread.
"""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Query, Request
from fastapi import Path as PathParam

from ..catalog import ModelEntry
from ..layout import DIMS, METHODS, Layout
from ..settings import Settings
from .admission import LiveQueue
from .inference import LiveModels
from .offload import cached_or_in_thread
from .registry import AtlasRegistry
from .served import ServedAtlas


async def get_settings(request: Request) -> Settings:
    return request.app.state.settings


async def get_catalog(request: Request) -> dict[str, ModelEntry]:
    return request.app.state.catalog


async def get_registry(request: Request) -> AtlasRegistry:
    return request.app.state.atlases


async def get_live(request: Request) -> LiveModels:
    return request.app.state.live


async def get_live_queue(request: Request) -> LiveQueue:
    return request.app.state.live_queue


ATLAS_PARAM = PathParam(description="atlas id, as listed by GET /api/atlases", examples=["tiny-gpt2__default-n24"])


async def get_atlas(request: Request, atlas: str = ATLAS_PARAM) -> ServedAtlas:
    return request.app.state.atlases.get(atlas)


async def get_checked_atlas(request: Request, atlas: str = ATLAS_PARAM) -> ServedAtlas:
    """The atlas once its manifest, token table and first complete layout are known to load (503
    naming the damaged file otherwise): checked in a worker thread only when those files changed."""
    return await cached_or_in_thread(request.app.state.atlases.checked, atlas)


# The method is checked by Layout.of (a 404 naming the methods, as for any unknown resource);
# the enum documents the valid values.
async def get_layout(method: str = Query("pca", description="reduction method",
                                         json_schema_extra={"enum": list(METHODS)}),
                     dim: int = Query(2, ge=min(DIMS), le=max(DIMS), description="2 or 3")) -> Layout:
    return Layout.of(method, dim)


SettingsDep = Annotated[Settings, Depends(get_settings)]
CatalogDep = Annotated[dict[str, ModelEntry], Depends(get_catalog)]
RegistryDep = Annotated[AtlasRegistry, Depends(get_registry)]
LiveDep = Annotated[LiveModels, Depends(get_live)]
LiveQueueDep = Annotated[LiveQueue, Depends(get_live_queue)]
AtlasDep = Annotated[ServedAtlas, Depends(get_atlas)]
CheckedAtlasDep = Annotated[ServedAtlas, Depends(get_checked_atlas)]
LayoutDep = Annotated[Layout, Depends(get_layout)]
