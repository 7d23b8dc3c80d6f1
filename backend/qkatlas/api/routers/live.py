"""Live attention: a user's sentence or image through the atlas's own model, placed in its layout."""

from __future__ import annotations

from typing import Callable

from fastapi import APIRouter, File, Form, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ...layout import DIMS, METHODS, Layout
from ...live_input import check_text, read_image
from ..answers.live import live_answer, live_atlas
from ..deps import LiveDep, RegistryDep, SettingsDep
from ..inference import LiveCapture
from ..responses import errors
from ..schemas import LiveAttention, LiveText
from ..served import ServedAtlas

router = APIRouter(prefix="/api/attention", tags=["live"])
LIVE_ERRORS = errors(404, 413, 422, 503)


async def respond(served: ServedAtlas, capture: Callable[[str, object], LiveCapture], payload,
                  layer: int | None, head: int | None, layout: Layout) -> JSONResponse:
    """`payload` through the atlas's model, then the answer: both in worker threads, since the
    model runs for a while and [layers][heads][n][n] can be large to build and encode."""
    cap = await run_in_threadpool(capture, served.manifest.model.id, payload)
    return await run_in_threadpool(lambda: JSONResponse(live_answer(served, cap, layer, head, layout)))


@router.post("", response_model=LiveAttention, responses=LIVE_ERRORS)
async def attention_text(body: LiveText, registry: RegistryDep, live: LiveDep, settings: SettingsDep):
    """Attention of every head for a sentence, and with layer and head its queries and keys placed
    in that head's stored method/dim layout (default PCA 2-D).

    A layout that cannot place new points, or is not computed for that head yet, gives
    `points: null` and `placement: {"error": "<why>"}`, never a placement in another layout.
    """
    layout = Layout.of(body.method, body.dim)
    served = live_atlas(registry, body.atlas, "text", body.layer, body.head)
    check_text(body.text, settings)
    return await respond(served, live.text, body.text, body.layer, body.head, layout)


@router.post("/image", response_model=LiveAttention, responses=LIVE_ERRORS)
async def attention_image(registry: RegistryDep, live: LiveDep, settings: SettingsDep,
                          atlas: str = Form(..., examples=["tiny-vit__images-n6"]),
                          file: UploadFile = File(..., description="an image: PNG, JPEG, ..."),
                          layer: int | None = Form(None), head: int | None = Form(None),
                          method: str = Form("pca", description="the layout to place the input in, with layer and head",
                                             json_schema_extra={"enum": list(METHODS)}),
                          dim: int = Form(2, ge=min(DIMS), le=max(DIMS), description="2 or 3")):
    """Attention of every head for an uploaded image (resized and centre-cropped as the model
    expects); with layer and head, its patches placed as for text (`points`, or `placement.error`)."""
    layout = Layout.of(method, dim)
    served = live_atlas(registry, atlas, "image", layer, head)
    data = await file.read(settings.max_upload_bytes + 1)  # one byte more says it is too large
    image = await run_in_threadpool(read_image, data, settings)
    return await respond(served, live.image, image, layer, head, layout)
