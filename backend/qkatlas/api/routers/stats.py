"""Head statistics: every head's numbers and label (JSON, CSV or Parquet) and the map of heads."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request
from fastapi.concurrency import run_in_threadpool

from ...export import FORMATS
from ..answers import stats as answers
from ..deps import AtlasDep
from ..responses import REVALIDATE, cached_response, errors, etag
from ..schemas import Error, HeadMap, StatsTable

router = APIRouter(prefix="/api/atlases/{atlas}", tags=["statistics"])

NOT_COMPUTED = {409: {"model": Error, "description": "the head statistics are not computed yet: a build computes "
                                                     "them after its layouts, `qkatlas stats ATLAS` at once"}}


@router.get("/stats", response_model=StatsTable,
            responses={200: {"content": {media: {"schema": {"type": "string", "format": "binary"}}
                                         for media in FORMATS.values()},
                             "description": "JSON columns; with format=csv or format=parquet a file to save "
                                            "(Content-Disposition names it)"},
                       **errors(404, 422), **NOT_COMPUTED})
async def stats(request: Request, served: AtlasDep,
                fmt: Literal["json", "csv", "parquet"] = Query("json", alias="format",
                                                               description="json, or a csv / parquet file")):
    """Every head's statistics, one entry per head layer by layer: layer, head, kv_head, its label
    (`kind`, `label`) and entropy, distance, special, first, previous, self, next, induction,
    positional, token, each defined in `definitions` (docs/stats.md)."""
    if fmt == "json":
        return await run_in_threadpool(answers.stats_answer, served)
    body, name = await run_in_threadpool(answers.stats_file, served, fmt)
    return cached_response(request, body, etag(served.id, "stats", fmt, served.stats_stamp()), FORMATS[fmt],
                           cache=REVALIDATE, headers={"Content-Disposition": f'attachment; filename="{name}"'})


@router.get("/headmap", response_model=HeadMap, responses={**errors(404, 422), **NOT_COMPUTED})
async def headmap(served: AtlasDep,
                  neighbours: int = Query(5, ge=0, le=50, description="nearest heads listed per head")) -> dict:
    """Every head as a point in 2-D: heads that attend alike lie close (Hellinger distance between
    their attention on the same sample of queries, drawn with metric MDS); each point carries its
    layer, head, label, statistics and its nearest heads."""
    return await run_in_threadpool(answers.headmap_answer, served, neighbours)
