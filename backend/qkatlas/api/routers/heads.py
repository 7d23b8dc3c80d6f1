"""Heads: one head's metadata, points, norms and neighbours; every head's points at once (matrix)."""

from __future__ import annotations

from functools import partial
from typing import Literal

import numpy as np
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ...neighbours import by_attention, nearest
from ...layout import ALL, DIMS, METHODS, Layout
from ..deps import cached_or_in_thread, get_atlas
from ..responses import LONG_CACHE, REVALIDATE, binary, cached_response, errors, etag
from ..schemas import HeadInfo, Neighbours, Points
from ..served import ServedAtlas

router = APIRouter(prefix="/api/atlases/{atlas}", tags=["heads"])

# method is checked by the store (404 naming the methods, as for any unknown resource); the
# enum documents the valid values.
Method = Query("pca", description="reduction method", json_schema_extra={"enum": list(METHODS)})
Dim = Query(2, ge=min(DIMS), le=max(DIMS), description="2 or 3")
HEAD = "/heads/{layer}/{head}"


@router.get(HEAD, response_model=HeadInfo, responses=errors(404, 422))
def head_info(layer: int, head: int, served: ServedAtlas = Depends(get_atlas)) -> dict:
    """The layouts computed for this head (params, quality, seconds) and its joint transform."""
    served.atlas.check_head(layer, head)
    projections = {}
    for layout in ALL:
        meta = served.projection_meta(layer, head, layout)
        if meta is not None:
            projections[layout.key] = {"params": meta.get("params", {}), "quality": meta.get("quality", {}),
                                       "seconds": meta.get("seconds"), "points": meta.get("points")}
    translation, scale = served.joint_transform(layer, head)
    return {"layer": layer, "head": head, "projections": projections,
            "joint": {"scale": scale, "translation_norm": float(np.linalg.norm(translation))}}


@router.get(HEAD + "/points", response_model=Points,
            responses={**binary("little-endian float32, row-major (2 * tokens, dim): queries, then keys",
                                json_model=Points, headers=("X-Shape", "X-Tokens")), **errors(404, 409, 422)})
async def points(request: Request, layer: int, head: int, method: str = Method, dim: int = Dim,
                 fmt: Literal["binary", "json"] = Query("binary", alias="format"),
                 served: ServedAtlas = Depends(get_atlas)):
    """A head's stored layout: rows 0..tokens-1 are the queries, rows tokens..2*tokens-1 the keys."""
    coords, stamp = await cached_or_in_thread(served.projection, layer, head, Layout.of(method, dim))
    rows, d = coords.shape
    headers = {"X-Shape": f"{rows},{d}", "X-Tokens": str(served.atlas.n_tokens)}
    if fmt == "json":
        return await run_in_threadpool(lambda: JSONResponse({"shape": [rows, d], "points": coords.tolist()},
                                                            headers=headers))
    tag = etag(served.id, "points", layer, head, method, dim, stamp)
    return cached_response(request, memoryview(coords), tag, headers=headers)


@router.get(HEAD + "/norms", response_class=Response, responses={**binary("little-endian float32 (2 * tokens,): each point's norm in the "
                                                 "joint space"), **errors(404, 422)})
async def norms(request: Request, layer: int, head: int, served: ServedAtlas = Depends(get_atlas)):
    """Each point's norm in the joint space, queries then keys."""
    values = await cached_or_in_thread(served.norms, layer, head)
    tag = etag(served.id, served.stamp, "norms", layer, head)
    return cached_response(request, memoryview(values), tag, headers={"X-Shape": str(len(values))})


@router.get("/matrix", response_class=Response, responses={**binary("int32 (P,) rows into a head's points, then float32 (layers, heads, P, "
                                           "dim), little-endian; heads not computed yet are NaN",
                                           headers=("X-Points", "X-Layers", "X-Heads", "X-Dim", "X-Missing", "X-Tokens")),
                                  **errors(404, 422)})
async def matrix(request: Request, method: str = Method, dim: int = Dim,
                 max_points: int = Query(2000, ge=1, le=100_000,
                                         description="at most this many rows per head (half queries, half keys)"),
                 served: ServedAtlas = Depends(get_atlas)):
    """Every head's layout at once, on the same deterministic even sample of tokens."""
    m = await cached_or_in_thread(served.matrix, Layout.of(method, dim), max_points)
    atlas = served.atlas
    headers = {"X-Points": str(m.points), "X-Layers": str(atlas.layers), "X-Heads": str(atlas.heads),
               "X-Dim": str(dim), "X-Missing": str(m.missing), "X-Tokens": str(atlas.n_tokens)}
    # While a build runs the answer changes: let the browser revalidate (a 304 when unchanged).
    return cached_response(request, memoryview(m.body), m.etag, cache=LONG_CACHE if m.missing == 0 else REVALIDATE,
                           headers=headers)


@router.get(HEAD + "/neighbours", response_model=Neighbours, responses=errors(404, 409, 422))
async def neighbours(layer: int, head: int,
                     token: int = Query(..., description="token row (0-based, as in the tokens table)"),
                     side: Literal["query", "key"] = "query",
                     k: int = Query(10, ge=1, le=1000),
                     by: Literal["attention", "joint", "projection"] = "attention",
                     method: str = Method, dim: int = Dim,
                     served: ServedAtlas = Depends(get_atlas)) -> dict:
    """Exact neighbours of one token's query or key, over the whole corpus.

    by=attention: for a query, the keys it scores highest (q·k × scaling, the score the softmax
    sees); for a key, the queries scoring it highest. by=joint: nearest points of either side
    in the joint space; by=projection: nearest in the stored method/dim layout (Euclidean, the
    point itself excluded). method and dim are used by by=projection only.
    """
    served.atlas.check_head(layer, head)
    served.check_token(token)
    Layout.of(method, dim)
    answer = partial(neighbour_answer, served, layer, head, token, side, k, by, method, dim)
    # by=attention on a head already in memory is one matrix-vector product (well under a
    # millisecond): cheaper on the event loop than a hop to a worker thread.
    if by == "attention" and served.head_vectors(layer, head, cached_only=True) is not None:
        return answer()
    return await run_in_threadpool(answer)


def neighbour_answer(served: ServedAtlas, layer: int, head: int, token: int, side: str, k: int, by: str,
                     method: str, dim: int) -> dict:
    n = served.atlas.n_tokens
    if by == "attention":
        q, kk = served.head_vectors(layer, head)
        x, others, other = (q[token], kk, "key") if side == "query" else (kk[token], q, "query")
        rows, scores = by_attention(x, others, served.atlas.scaling(layer), k)
        found = [(int(r), other, float(s)) for r, s in zip(rows, scores)]
        metric = "q·k × scaling (highest first)"
    else:
        if by == "joint":
            cloud, metric = served.joint_cloud(layer, head), "euclidean distance in the joint space (nearest first)"
        else:
            cloud = served.projection(layer, head, Layout.of(method, dim))[0]
            metric = f"euclidean distance in the {method} {dim}-D layout (nearest first)"
        rows, dist = nearest(cloud, token if side == "query" else n + token, k)
        found = [(int(r) % n, "query" if r < n else "key", float(d)) for r, d in zip(rows, dist)]
    return {"token": served.token_ref(token, side), "by": by, "metric": metric,
            "neighbours": [{**served.token_ref(t, s), "score": score} for t, s, score in found]}
