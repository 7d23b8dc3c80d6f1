"""Two atlases side by side: whether they share a corpus, and which tokens of one are a token of the other."""

from __future__ import annotations

from fastapi import APIRouter, Query

from ..answers import compare as answers
from ..deps import RegistryDep
from ..responses import errors
from ..schemas import Comparison, TokenMatches

router = APIRouter(prefix="/api/compare", tags=["compare"])

A = Query(..., description="atlas id shown on the left", examples=["minilm__default"])
B = Query(..., description="atlas id shown on the right", examples=["minilm-random__default"])


@router.get("", response_model=Comparison, responses=errors(404, 422, 503))
def compare(registry: RegistryDep, a: str = A, b: str = B) -> dict:
    """What two atlases share (corpus, model) and how tokens of one are matched to the other. Their
    statistics, head maps and head views come from each atlas's own endpoints."""
    return answers.comparison(registry.get(a), registry.get(b))


@router.get("/tokens", response_model=TokenMatches, responses=errors(404, 422, 503))
def tokens(registry: RegistryDep, a: str = A, b: str = B,
           token: int = Query(..., description="token row in atlas a (0-based, as in its tokens table)")) -> dict:
    """The tokens of atlas b that are token `token` of atlas a: in the same item, those covering the
    same characters (text; any two tokenizers) or the same image region (patch grids of any size).
    422 when the item is not the same in both atlases."""
    return answers.token_matches(registry.get(a), registry.get(b), token)
