"""Atlases: the list, one atlas's summary with quality, and its token and item tables."""

from __future__ import annotations

from typing import Literal

from fastapi import APIRouter, Query, Request

from ..answers import atlases as answers
from ..deps import AtlasDep, CheckedAtlasDep, RegistryDep
from ..responses import ARROW, LONG_CACHE, cached_response, errors, table, wants_arrow
from ..schemas import AtlasDetail, AtlasSummary, DamagedAtlas, Table
from ..served import ServedAtlas

router = APIRouter(prefix="/api/atlases", tags=["atlases"])

TableFormat = Query(None, description=f"json or arrow; when absent, `Accept: {ARROW}` asks for arrow")


@router.get("", response_model=list[AtlasSummary | DamagedAtlas])
def list_atlases(registry: RegistryDep) -> list[dict]:
    """Every atlas in the data dir (a build in progress shows once its capture is done). One whose
    manifest, token table or first complete layout does not load is listed as damaged, naming the
    file; the others are listed as usual."""
    return [answers.listed(state) for state in registry.states()]


@router.get("/{atlas}", response_model=AtlasDetail, responses=errors(404, 503))
def atlas_detail(served: CheckedAtlasDep) -> dict:
    """The summary plus per-head projection quality, the image grid, the q·k scaling per layer, versions."""
    return answers.detail(served)


def _table(request: Request, served: ServedAtlas, which: str, fmt: str | None):
    arrow = wants_arrow(request, fmt)
    body, tag = served.table_payload(which, arrow)
    return cached_response(request, body, tag, media_type=ARROW if arrow else "application/json",
                           cache=LONG_CACHE, headers={"Vary": "Accept"})


@router.get("/{atlas}/tokens", response_model=Table, responses={**table(Table), **errors(404, 422)})
def tokens(request: Request, served: AtlasDep, format: Literal["json", "arrow"] | None = TableFormat):
    """One row per token or patch: token, item, position, text, special, row, col (row/col -1 for text)."""
    return _table(request, served, "tokens", format)


@router.get("/{atlas}/items", response_model=Table, responses={**table(Table), **errors(404, 422)})
def items(request: Request, served: AtlasDep, format: Literal["json", "arrow"] | None = TableFormat):
    """One row per sentence or image: item, text, label, tokens (count), offset (its first token row)."""
    return _table(request, served, "items", format)
