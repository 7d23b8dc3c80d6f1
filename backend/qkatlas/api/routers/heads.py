"""Heads: one head's metadata, points, norms, vectors and neighbours; a key/value head's keys;
every head's points at once (matrix)."""

from __future__ import annotations

from functools import partial
from typing import Literal

import numpy as np
from fastapi import APIRouter, Query, Request, Response
from fastapi.concurrency import run_in_threadpool
from fastapi.responses import JSONResponse

from ..answers import heads as answers
from ..deps import AtlasDep, LayoutDep
from ..offload import cached_or_in_thread
from ..responses import LONG_CACHE, REVALIDATE, binary, cached_response, errors, etag
from ..schemas import HeadInfo, Neighbours, Points
from ..served import ServedAtlas

router = APIRouter(prefix="/api/atlases/{atlas}", tags=["heads"])
HEAD = "/heads/{layer}/{head}"


@router.get(HEAD, response_model=HeadInfo, responses=errors(404, 422))
def head_info(layer: int, head: int, served: AtlasDep) -> dict:
    """The layouts computed for this head (params, seconds, quality: knn recall and trustworthiness
    against the joint space, and how its distances agree with attention), its joint transform (how it
    was chosen, and how the joint space and raw q/k agree with attention: docs/faithful.md), its
    key/value head: `kv_head`, shared with the query heads `kv_group` (grouped-query attention;
    without grouping kv_head is the head itself and kv_group is [head]); its statistics and label
    (`stats`, null until the build or `qkatlas stats` computes them)."""
    return answers.head_info(served, layer, head)


@router.get(HEAD + "/points", response_model=Points,
            responses={**binary("little-endian float32, row-major (2 * tokens, dim): queries, then keys",
                                json_model=Points, headers=("X-Shape", "X-Tokens")), **errors(404, 409, 422)})
async def points(request: Request, layer: int, head: int, served: AtlasDep, layout: LayoutDep,
                 fmt: Literal["binary", "json"] = Query("binary", alias="format")):
    """A head's stored layout: rows 0..tokens-1 are the queries, rows tokens..2*tokens-1 the keys."""
    coords, stamp = await cached_or_in_thread(served.projection, layer, head, layout)
    rows, d = coords.shape
    headers = {"X-Shape": f"{rows},{d}", "X-Tokens": str(served.manifest.tokens)}
    if fmt == "json":
        return await run_in_threadpool(lambda: JSONResponse({"shape": [rows, d], "points": coords.tolist()},
                                                            headers=headers))
    tag = etag(served.id, "points", layer, head, layout.method, layout.dim, stamp)
    return cached_response(request, memoryview(coords), tag, headers=headers)


@router.get(HEAD + "/norms", response_class=Response,
            responses={**binary("little-endian float32 (2 * tokens,): each point's norm in the joint space"),
                       **errors(404, 422)})
async def norms(request: Request, layer: int, head: int, served: AtlasDep):
    """Each point's norm in the joint space, queries then keys."""
    values = await cached_or_in_thread(served.norms, layer, head)
    tag = etag(served.id, served.stamp, "norms", layer, head)
    return cached_response(request, memoryview(values), tag, headers={"X-Shape": str(len(values))})


def _vectors(request: Request, served: ServedAtlas, what: str, layer: int, index: int,
             values: np.ndarray) -> Response:
    """Raw vectors (tokens, head_dim) as little-endian float32 with their shape and an ETag."""
    tag = etag(served.id, served.stamp, what, layer, index)
    return cached_response(request, memoryview(values), tag, headers={"X-Shape": "{},{}".format(*values.shape)})


@router.get(HEAD + "/vectors", response_class=Response,
            responses={**binary("little-endian float32, row-major (tokens, head_dim): one side's vectors as the "
                                "attention used them (after rotary embeddings), from the stored float16"),
                       **errors(404, 422)})
async def vectors(request: Request, layer: int, head: int, served: AtlasDep,
                  side: Literal["query", "key"] = Query("query", description="queries or keys")):
    """One head's raw queries or keys, row t for token t. With grouped-query attention every query
    head of a group has the same keys: fetch them once from /kv/{layer}/{kv_head}/keys."""
    q, k = await cached_or_in_thread(served.head_vectors, layer, head)
    return _vectors(request, served, side, layer, head, q if side == "query" else k)


@router.get("/kv/{layer}/{kv_head}/keys", response_class=Response,
            responses={**binary("little-endian float32, row-major (tokens, head_dim): the keys of one key/value "
                                "head, once for its whole group of query heads"),
                       **errors(404, 422)})
async def kv_keys(request: Request, layer: int, kv_head: int, served: AtlasDep):
    """The keys of key/value head `kv_head` (0..kv_heads-1) as the attention used them, row t for token t.

    With grouped-query attention the query heads listed as its `kv_group` in head info all
    score these keys; without grouping kv_head is a query head and these are its keys.
    """
    keys = await cached_or_in_thread(served.kv_keys, layer, kv_head)
    return _vectors(request, served, "kv-keys", layer, kv_head, keys)


@router.get("/matrix", response_class=Response,
            responses={**binary("int32 (P,) rows into a head's points (the same rows for every head: an even "
                                "sample of tokens, each with its query row and its key row), then float32 "
                                "(layers, heads, P, dim), little-endian; heads not computed yet are NaN and "
                                "X-Missing counts them",
                                headers=("X-Points", "X-Layers", "X-Heads", "X-Dim", "X-Missing", "X-Tokens")),
                       **errors(404, 422)})
async def matrix(request: Request, served: AtlasDep, layout: LayoutDep,
                 max_points: int = Query(2000, ge=1, le=100_000,
                                         description="at most this many rows per head (half queries, half keys)")):
    """Every head's layout at once, on the same deterministic even sample of tokens."""
    m = await cached_or_in_thread(served.matrix, layout, max_points)
    shape = served.manifest
    headers = {"X-Points": str(m.points), "X-Layers": str(shape.layers), "X-Heads": str(shape.heads),
               "X-Dim": str(layout.dim), "X-Missing": str(m.missing), "X-Tokens": str(shape.tokens)}
    # While a build runs the answer changes: let the browser revalidate (a 304 when unchanged).
    return cached_response(request, memoryview(m.body), m.etag, cache=LONG_CACHE if m.missing == 0 else REVALIDATE,
                           headers=headers)


@router.get(HEAD + "/neighbours", response_model=Neighbours, responses=errors(404, 409, 422))
async def neighbours(layer: int, head: int, served: AtlasDep, layout: LayoutDep,
                     token: int = Query(..., description="token row (0-based, as in the tokens table)"),
                     side: Literal["query", "key"] = "query",
                     k: int = Query(10, ge=1, le=1000),
                     by: Literal["attention", "joint", "projection"] = "attention") -> dict:
    """Exact neighbours of one token's query or key, over the whole corpus.

    by=attention: for a query, the keys it scores highest (q·k × scaling, the score the softmax
    sees); for a key, the queries scoring it highest. In a causal atlas (`causal` in its
    summary) the mask is honoured: a query's ranking leaves out the later keys of its own item,
    a key's the earlier queries of its own item. Keys of other items are never in a query's
    context; they are ranked by the score the softmax would give them if they were.
    by=joint: nearest points of either side in the joint space; by=projection: nearest in the
    stored method/dim layout (Euclidean, the point itself excluded). method and dim are used by
    by=projection only.
    """
    answer = partial(answers.neighbour_answer, served, layer, head, token, side, k, by, layout)
    # by=attention on a head already in memory is one matrix-vector product (well under a
    # millisecond): cheaper on the event loop than a hop to a worker thread.
    if by == "attention" and served.head_vectors(layer, head, cached_only=True) is not None:
        return answer()
    return await run_in_threadpool(answer)
