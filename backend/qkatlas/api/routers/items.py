"""Items (sentences, images): attention rebuilt from the stored q/k, the image, patch thumbnails."""

from __future__ import annotations

import io

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse

from ...errors import NotFound
from ...joint import attention, attention_heads
from ..deps import get_atlas
from ..responses import PNG, cached_response, errors, etag, png
from ..schemas import ItemAttention
from ..served import ServedAtlas, file_stamp

router = APIRouter(prefix="/api/atlases/{atlas}/items/{item}", tags=["items"])


@router.get("/attention", response_model=ItemAttention, responses=errors(404, 422))
def item_attention(item: int, layer: int = Query(..., description="layer (0-based)"),
                   head: int | None = Query(None, description="head (0-based); omitted: every head of the layer"),
                   served: ServedAtlas = Depends(get_atlas)):
    """softmax(q·kᵀ × scaling + causal mask) of one item, rebuilt from the stored vectors.

    `attention[i][j]`: how much token i attends to token j; rows sum to 1.
    """
    start, stop = served.item_rows(item)
    atlas = served.atlas
    atlas.check_head(layer, 0 if head is None else head)
    q = np.asarray(atlas.queries(layer)[start:stop], dtype=np.float32)
    k = np.asarray(atlas.keys(layer)[start:stop], dtype=np.float32)
    scaling = atlas.scaling(layer)
    body = {"item": item, "layer": layer, "head": head, "tokens": served.item_tokens(start, stop)}
    if head is None:
        body |= {"heads": atlas.heads, "attention": attention_heads(q, k, scaling, atlas.causal).tolist()}
    else:
        body["attention"] = attention(q[:, head], k[:, head], scaling, atlas.causal).tolist()
    return JSONResponse(body)


def image_spec(served: ServedAtlas):
    spec = served.atlas.manifest.image
    if served.atlas.modality != "image" or spec is None:
        raise NotFound(f"atlas {served.id!r} holds {served.atlas.modality}: it has no images")
    return spec


def image_file(served: ServedAtlas, item: int):
    image_spec(served)
    served.item_rows(item)
    path = served.atlas.image_path(item)
    stamp = file_stamp(path)
    if stamp is None:
        raise NotFound(f"item {item} of atlas {served.id!r} has no stored image")
    return path, stamp


@router.get("/image", responses={**png("the exact pixels the model saw"), **errors(404, 422)},
            response_class=Response)
def item_image(request: Request, item: int, served: ServedAtlas = Depends(get_atlas)):
    """The image as the model saw it (image atlases; 404 for text atlases)."""
    path, stamp = image_file(served, item)
    return cached_response(request, path.read_bytes, etag(served.id, "image", item, stamp), media_type=PNG)


@router.get("/patches/{position}/image", responses={**png("a square thumbnail of one patch"), **errors(404, 422)},
            response_class=Response)
def patch_image(request: Request, item: int, position: int,
                size: int = Query(64, ge=8, le=512, description="thumbnail side in pixels"),
                served: ServedAtlas = Depends(get_atlas)):
    """The pixels of the patch at token `position` of the image (prefix tokens such as CLS are not patches)."""
    spec = image_spec(served)
    start, stop = served.item_rows(item)
    prefix, grid, patch = spec.prefix_tokens, spec.grid, spec.patch
    if not prefix <= position < stop - start:
        raise NotFound(f"position {position} of item {item} is not a patch; patches are positions "
                       f"{prefix}..{stop - start - 1} (positions 0..{prefix - 1} are CLS/register tokens)")
    path, stamp = image_file(served, item)
    row, col = divmod(position - prefix, grid)

    def render() -> bytes:
        from PIL import Image

        with Image.open(path) as img:
            cell = img.convert("RGB").crop((col * patch, row * patch, (col + 1) * patch, (row + 1) * patch))
        buf = io.BytesIO()
        cell.resize((size, size), Image.Resampling.NEAREST).save(buf, format="PNG")
        return buf.getvalue()

    return cached_response(request, render, etag(served.id, "patch", item, position, size, stamp), media_type=PNG)
