"""Items (sentences, images): attention rebuilt from the stored q/k, the image, patch thumbnails."""

from __future__ import annotations

from fastapi import APIRouter, Query, Request, Response
from fastapi.responses import JSONResponse

from ..answers import items as answers
from ..deps import AtlasDep
from ..responses import PNG, cached_response, errors, png
from ..schemas import ItemAttention

router = APIRouter(prefix="/api/atlases/{atlas}/items/{item}", tags=["items"])


@router.get("/attention", response_model=ItemAttention, responses=errors(404, 422))
def item_attention(item: int, served: AtlasDep, layer: int = Query(..., description="layer (0-based)"),
                   head: int | None = Query(None, description="head (0-based); omitted: every head of the layer")):
    """softmax(q·kᵀ × scaling + causal mask) of one item, rebuilt from the stored vectors.

    `attention[i][j]`: how much token i attends to token j; rows sum to 1.
    """
    return JSONResponse(answers.item_attention_answer(served, item, layer, head))


@router.get("/image", responses={**png("the exact pixels the model saw"), **errors(404, 422)},
            response_class=Response)
def item_image(request: Request, item: int, served: AtlasDep):
    """The image as the model saw it (image atlases; 404 for text atlases)."""
    read, tag = answers.item_png(served, item)
    return cached_response(request, read, tag, media_type=PNG)


@router.get("/patches/{position}/image", responses={**png("a square thumbnail of one patch"), **errors(404, 422)},
            response_class=Response)
def patch_image(request: Request, item: int, position: int, served: AtlasDep,
                size: int = Query(64, ge=8, le=512, description="thumbnail side in pixels")):
    """The pixels of the patch at token `position` of the image (prefix tokens such as CLS are not patches)."""
    render, tag = answers.patch_png(served, item, position, size)
    return cached_response(request, render, tag, media_type=PNG)
