"""Live attention: a user's sentence or image through the atlas's own model, placed in its layout."""

from __future__ import annotations

import io

import numpy as np
from fastapi import APIRouter, Depends, File, Form, Request, UploadFile
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ...catalog import get_model
from ...errors import InvalidInput, TooLarge
from ...joint import attention_heads, to_joint
from ...layout import Layout
from ...settings import Settings
from ..deps import get_registry, get_settings
from ..inference import LiveCapture
from ..responses import errors
from ..schemas import LiveAttention, LiveText
from ..served import ServedAtlas

router = APIRouter(prefix="/api/attention", tags=["live"])
LIVE_ERRORS = errors(404, 413, 422, 503)


def pca_place(X: np.ndarray, components: np.ndarray, mean: np.ndarray) -> np.ndarray:
    """New points X (n, head_dim) in a fitted PCA layout: (X - mean) @ componentsᵀ -> (n, dim)."""
    return (X - mean) @ components.T


def placed_points(served: ServedAtlas, cap: LiveCapture, layer: int, head: int) -> dict | None:
    """The input's queries and keys in the atlas's PCA 2-D layout of (layer, head), or None if not computed."""
    meta = served.projection_meta(layer, head, Layout("pca", 2))
    if meta is None or "components" not in meta:
        return None
    q, k = cap.q[layer][:, head], cap.k[layer][:, head]
    Y = pca_place(to_joint(q, k, *served.joint_transform(layer, head)),
                  np.asarray(meta["components"], dtype=np.float32), np.asarray(meta["mean"], dtype=np.float32))
    n = len(q)
    return {"layer": layer, "head": head, "method": "pca", "dim": 2,
            "queries": Y[:n].tolist(), "keys": Y[n:].tolist()}


def live_answer(served: ServedAtlas, cap: LiveCapture, layer: int | None, head: int | None) -> dict:
    attn = np.stack([attention_heads(q, k, s, cap.causal) for q, k, s in zip(cap.q, cap.k, cap.scaling)])
    points = placed_points(served, cap, layer, head) if layer is not None and head is not None else None
    return {"model": served.atlas.manifest.model.id, "atlas": served.id, "tokens": cap.tokens,
            "layers": attn.shape[0], "heads": attn.shape[1], "attention": np.round(attn, 6).tolist(),
            "points": points}


def checked_atlas(request: Request, atlas: str, modality: str, layer: int | None, head: int | None) -> ServedAtlas:
    served = get_registry(request).get(atlas)
    if served.atlas.modality != modality:
        other = "/api/attention/image" if served.atlas.modality == "image" else "/api/attention"
        raise InvalidInput(f"atlas {atlas!r} holds {served.atlas.modality}, not {modality}: use POST {other}")
    if layer is not None or head is not None:
        served.atlas.check_head(layer or 0, head or 0)
    return served


async def run_live(settings: Settings, served: ServedAtlas, capture_fn, payload,
                   layer: int | None, head: int | None) -> JSONResponse:
    entry = get_model(settings, served.atlas.manifest.model.id)
    cap = await run_in_threadpool(capture_fn, entry, payload)
    # [layers][heads][n][n] can be large: built and JSON-encoded in a worker thread, not on the loop
    return await run_in_threadpool(lambda: JSONResponse(live_answer(served, cap, layer, head)))


@router.post("", response_model=LiveAttention, responses=LIVE_ERRORS)
async def attention_text(request: Request, body: LiveText, settings: Settings = Depends(get_settings)):
    """Attention of every head for a sentence, and with layer and head its place in that head's PCA 2-D layout."""
    served = checked_atlas(request, body.atlas, "text", body.layer, body.head)
    if not body.text.strip():
        raise InvalidInput("text is empty; send at least one non-space character")
    if len(body.text) > settings.max_text_chars:
        raise TooLarge(f"text has {len(body.text)} characters; the limit is {settings.max_text_chars} "
                       "(max_text_chars)")
    return await run_live(settings, served, request.app.state.live.text, body.text, body.layer, body.head)


def read_image(data: bytes, max_pixels: int):
    """Upload bytes -> PIL RGB image, or InvalidInput (422) / TooLarge (413) naming the problem."""
    from PIL import Image, UnidentifiedImageError

    if not data:
        raise InvalidInput("the uploaded file is empty; send an image (PNG, JPEG, ...)")
    try:
        image = Image.open(io.BytesIO(data))
        w, h = image.size
        if w * h > max_pixels:
            raise TooLarge(f"image is {w}x{h} = {w * h} pixels; the limit is {max_pixels} pixels (max_image_pixels)")
        image.load()
        return image.convert("RGB")
    except Image.DecompressionBombError:
        raise TooLarge(f"image has too many pixels; the limit is {max_pixels} pixels (max_image_pixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidInput("the uploaded file is not a readable image (PNG, JPEG, ...)") from None


@router.post("/image", response_model=LiveAttention, responses=LIVE_ERRORS)
async def attention_image(request: Request, atlas: str = Form(..., examples=["tiny-vit__images-n6"]),
                          file: UploadFile = File(..., description="an image: PNG, JPEG, ..."),
                          layer: int | None = Form(None), head: int | None = Form(None),
                          settings: Settings = Depends(get_settings)):
    """Attention of every head for an uploaded image (resized and centre-cropped as the model expects)."""
    served = checked_atlas(request, atlas, "image", layer, head)
    data = await file.read(settings.max_upload_bytes + 1)
    if len(data) > settings.max_upload_bytes:
        raise TooLarge(f"the upload is larger than the limit of {settings.max_upload_bytes} bytes (max_upload_bytes)")
    image = await run_in_threadpool(read_image, data, settings.max_image_pixels)
    return await run_live(settings, served, request.app.state.live.image, image, layer, head)
