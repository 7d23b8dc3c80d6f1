"""Live attention: a user's sentence or image through the atlas's own model, placed in its layout.

Each request is admitted by api/admission.py (one forward pass of a model at a time, a bounded
queue, 429 beyond it) and its whole work (decoding an upload, the model, the answer and its
encoding) runs in the inference threads, never on the event loop or in the threads of cheap
reads. A model still loading, or placement code still compiling, is 503 at once.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from fastapi import APIRouter, Depends, File, Form, Request, Response, UploadFile

from ...layout import DIMS, METHODS, Layout
from ...live_input import ACCEPTED, check_scope, check_text, read_image
from ..answers.live import live_answer, live_atlas
from ..auth import require_token
from ..compress import gzipped
from ..deps import LiveDep, LiveQueueDep, RegistryDep, SettingsDep
from ..inference import LiveCapture
from ..responses import errors, json_and_float16, json_with_array
from ..schemas import FORMAT_DESCRIPTION, SCOPE_DESCRIPTION, Format, LiveAttention, LiveText, Scope
from ..served import ServedAtlas

router = APIRouter(prefix="/api/attention", tags=["live"], dependencies=[Depends(require_token)])
LIVE_ERRORS = {**errors(401, 404, 413, 422, 429, 503), 200: {
    "description": "the answer as JSON, or with format=binary as JSON then float16",
    "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}}


@dataclass(frozen=True)
class Ask:
    """What a live request asks for besides its input."""

    layer: int | None
    head: int | None
    layout: Layout
    scope: str
    format: str
    accept_encoding: str


def live_response(served: ServedAtlas, cap: LiveCapture, ask: Ask) -> Response:
    """The answer as JSON (gzipped here when the client accepts it), or as JSON and float16
    attention (format "binary")."""
    body = live_answer(served, cap, ask.layer, ask.head, ask.layout, ask.scope, ask.format)
    fields = {k: v for k, v in body.items() if k != "attention"}
    if ask.format == "binary":
        return json_and_float16(fields, body["attention"])
    data, headers = gzipped(json_with_array(fields, "attention", body["attention"]), ask.accept_encoding)
    return Response(data, media_type="application/json", headers=headers)


async def respond(live: LiveDep, queue: LiveQueueDep, served: ServedAtlas, capture: Callable[[], LiveCapture],
                  ask: Ask) -> Response:
    """`capture()` through the atlas's model and the answer, in an inference thread once admitted."""
    model_id = served.manifest.model.id
    places = ask.layer is not None and ask.head is not None and served.projection_meta(ask.layer, ask.head, ask.layout)
    live.check_warm(model_id, ask.layout.method if places else None)
    return await queue.run(model_id, lambda: live_response(served, capture(), ask))


@router.post("", response_model=LiveAttention, responses=LIVE_ERRORS)
async def attention_text(request: Request, body: LiveText, registry: RegistryDep, live: LiveDep,
                         queue: LiveQueueDep, settings: SettingsDep):
    """Attention for a sentence (every head of every layer, of one layer or of one head: `scope`),
    and with layer and head its queries and keys placed in that head's stored method/dim layout
    (default PCA 2-D).

    A layout that cannot place new points, or is not computed for that head yet, gives
    `points: null` and `placement: {"error": "<why>"}`, never a placement in another layout.
    """
    layout = Layout.of(body.method, body.dim)
    served = live_atlas(registry, body.atlas, "text", body.layer, body.head)
    check_text(body.text, settings)
    check_scope(body.scope, body.layer, body.head)
    ask = Ask(body.layer, body.head, layout, body.scope, body.format, request.headers.get("accept-encoding", ""))
    return await respond(live, queue, served, lambda: live.text(served.manifest.model.id, body.text), ask)


@router.post("/image", response_model=LiveAttention, responses=LIVE_ERRORS)
async def attention_image(request: Request, registry: RegistryDep, live: LiveDep, queue: LiveQueueDep,
                          settings: SettingsDep,
                          atlas: str = Form(..., examples=["tiny-vit__images-n6"]),
                          file: UploadFile = File(..., description=f"an image: {ACCEPTED}"),
                          layer: int | None = Form(None), head: int | None = Form(None),
                          method: str = Form("pca", description="the layout to place the input in, with layer and head",
                                             json_schema_extra={"enum": list(METHODS)}),
                          dim: int = Form(2, ge=min(DIMS), le=max(DIMS), description="2 or 3"),
                          scope: Scope = Form("all", description=SCOPE_DESCRIPTION),
                          format: Format = Form("json", description=FORMAT_DESCRIPTION)):
    """Attention for an uploaded image (resized and centre-cropped as the model expects), scoped as
    for text; with layer and head, its patches placed as for text (`points`, or `placement.error`)."""
    layout = Layout.of(method, dim)
    served = live_atlas(registry, atlas, "image", layer, head)
    check_scope(scope, layer, head)
    data = await file.read(settings.max_upload_bytes + 1)  # one byte more says it is too large
    ask = Ask(layer, head, layout, scope, format, request.headers.get("accept-encoding", ""))
    return await respond(live, queue, served, lambda: live.image(served.manifest.model.id, read_image(data, settings)),
                         ask)
