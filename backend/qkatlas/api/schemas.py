"""Pydantic models of every JSON request and response (docs/api-contract.md), with OpenAPI examples."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, ConfigDict, Field

from ..layout import DIMS, METHODS
from ..stats import KINDS


def _example(example: dict, extra: str = "ignore") -> ConfigDict:
    return ConfigDict(extra=extra, json_schema_extra={"examples": [example]})


class Error(BaseModel):
    model_config = _example({"detail": "head 7 does not exist in atlas 'gpt2__default'; valid heads: 0..3"})
    detail: str


class Health(BaseModel):
    model_config = _example({"status": "ok"})
    status: str


class Ready(BaseModel):
    model_config = _example({"status": "ready", "atlases": 2, "damaged": 0, "warming": ["gpt2"]})
    status: Literal["ready", "not ready"]
    atlases: int = Field(description="atlases whose manifest, token table and one head of their first complete "
                                     "layout load")
    damaged: int = Field(description="atlases with a file that does not load (GET /api/atlases says which)")
    warming: list[str] | None = Field(None, description="models of live inference still loading, and placements "
                                                       "still compiling (\"UMAP placement\"), when any")
    detail: str | None = Field(None, description="why not ready")


class CatalogModel(BaseModel):
    model_config = _example({
        "id": "gpt2", "label": "GPT-2 small (OpenAI)", "family": "gpt2", "modality": "text",
        "loader": "transformers", "source": "openai-community/gpt2", "random": False,
        "notes": "12 layers x 12 heads, causal.",
    })
    id: str
    label: str
    family: str
    modality: str
    loader: str
    source: str
    random: bool
    notes: str


class LayoutInfo(BaseModel):
    model_config = _example({"key": "umap-2d", "method": "umap", "dim": 2, "label": "UMAP"})
    key: str
    method: str
    dim: int
    label: str


class BuildState(BaseModel):
    model_config = _example({"atlas": "minilm__default", "model": "minilm", "label": "all-MiniLM-L6-v2",
                             "stage": "UMAP 2-D", "done": 40, "total": 72, "updated": "2026-11-25T16:00:00+00:00"})
    atlas: str
    model: str
    label: str
    stage: str = Field(description='what the build is doing: "loading model", "capture", "PCA 2-D", ...')
    done: int
    total: int
    updated: str


class Builds(BaseModel):
    builds: list[BuildState]


class ModelInfo(BaseModel):
    """The manifest's model block: the catalog fields plus where the weights came from."""

    model_config = ConfigDict(extra="allow")
    id: str
    label: str
    family: str
    modality: str
    random: bool


class CorpusInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    id: str
    modality: str
    items: int
    source: str


class ImageInfo(BaseModel):
    model_config = _example({"size": 224, "patch": 16, "grid": 14, "prefix_tokens": 1})
    size: int
    patch: int
    grid: int
    prefix_tokens: int


_SUMMARY_EXAMPLE = {
    "id": "tiny-gpt2__default-n24", "status": "ok",
    "model": {"id": "tiny-gpt2", "label": "tiny GPT-2 (random init)", "family": "gpt2", "modality": "text",
              "random": True, "loader": "random", "source": "gpt2"},
    "corpus": {"id": "default", "modality": "text", "items": 24, "source": "bundled sentences"},
    "layers": 2, "heads": 4, "head_dim": 16, "kv_heads": 4, "tokens": 256, "causal": True, "modality": "text",
    "projections": {"pca-2d": 8, "pca-3d": 8}, "complete": {"pca-2d": True, "pca-3d": True}, "total_heads": 8,
}


class AtlasSummary(BaseModel):
    model_config = _example(_SUMMARY_EXAMPLE)
    id: str
    status: Literal["ok"] = Field("ok", description='"ok": its files load (a damaged atlas is a DamagedAtlas)')
    model: ModelInfo
    corpus: CorpusInfo
    layers: int
    heads: int
    head_dim: int
    kv_heads: int = Field(description="key/value heads per layer: fewer than `heads` with grouped-query attention, "
                                      "each shared by heads / kv_heads consecutive query heads")
    tokens: int
    causal: bool = Field(description="a token attends to itself and earlier tokens of its item only")
    modality: str
    projections: dict[str, int] = Field(description='{"pca-2d": heads done, ...} for every layout started')
    complete: dict[str, bool]
    total_heads: int


class DamagedAtlas(BaseModel):
    """An atlas listed with what keeps it from being served: its other endpoints answer 503 with `detail`."""

    model_config = _example({"id": "minilm__default", "status": "damaged",
                             "detail": "atlas 'minilm__default' is damaged: tokens.parquet (Parquet magic bytes not "
                                       "found in footer. Either the file is corrupted or this is not a parquet "
                                       "file.); rebuild it with `qkatlas build`"})
    id: str
    status: Literal["damaged"]
    detail: str = Field(description="the file that does not load, relative to the atlas, and why")


class AtlasDetail(AtlasSummary):
    model_config = _example({
        **_SUMMARY_EXAMPLE,
        "quality": {"pca-2d": {"L00H00": {"knn_recall@10": 0.19, "trustworthiness@10": 0.76, "sample": 512}}},
        "image": None, "scaling": [0.25, 0.25], "created": "2026-01-01T00:00:00+00:00",
    })
    quality: dict[str, dict[str, dict[str, int | float]]]
    image: ImageInfo | None
    scaling: list[float]
    created: str | None


class Table(BaseModel):
    """A columnar table: every column is a list of `n` values."""

    model_config = _example({"n": 2, "columns": {"token": [0, 1], "item": [0, 0], "position": [0, 1],
                                                "text": ["The", " cat"], "special": [False, False],
                                                "row": [-1, -1], "col": [-1, -1]}})
    n: int
    columns: dict[str, list[int | bool | str]]


class ProjectionInfo(BaseModel):
    model_config = ConfigDict(extra="allow")
    params: dict
    quality: dict[str, int | float] = Field(description="knn_recall@10, trustworthiness@10: how the layout keeps "
                                            "neighbours of the joint space; attention_agreement, distance_dot_pearson: "
                                            "how its distances agree with attention (docs/faithful.md)")
    seconds: float | None


class Agreement(BaseModel):
    """How distance between a head's queries and keys agrees with its attention (docs/faithful.md);
    a measure is absent where it is undefined."""

    attention_agreement: float | None = Field(None, description="mean over sampled queries of Spearman's "
                                              "correlation between -distance and q·k over the keys the query sees "
                                              "(1: nearest keys are the ones attended to most, in order)")
    distance_dot_pearson: float | None = Field(None, description="Pearson's correlation of distance with q·k over "
                                               "all those (query, key) pairs pooled (-1 is perfect)")


class JointInfo(BaseModel):
    method: str = Field(description="how the joint space was chosen: qkatlas (distance agrees with attention), "
                        "attentionviz or raw")
    scale: float = Field(description="queries are multiplied by it and keys divided by it")
    translation_norm: float = Field(description="length of the vector added to every key")
    joint: Agreement | None = Field(None, description="agreement of the joint space (null: atlas built before "
                                    "it was measured)")
    raw: Agreement | None = Field(None, description="agreement of raw q/k on the same sample, for comparison")


class HeadStats(BaseModel):
    """One head's row of the statistics: its label and the numbers behind it (null: does not apply)."""

    model_config = _example({"kind": "previous-token", "label": "previous-token (offset \u22121: 1.00)",
                             "entropy": 0.0, "distance": 1.0, "special": 0.14, "first": 0.08, "previous": 1.0,
                             "self": 0.07, "next": 0.0, "induction": None, "positional": 0.95, "token": 0.01})
    kind: str = Field(description="the label's rule: " + ", ".join(KINDS))
    label: str = Field(description="one line naming what the head does, with the number behind it")
    entropy: float | None = None
    distance: float | None = None
    special: float | None = None
    first: float | None = None
    previous: float | None = None
    self: float | None = None
    next: float | None = None
    induction: float | None = None
    positional: float | None = None
    token: float | None = None


class HeadInfo(BaseModel):
    model_config = _example({
        "layer": 0, "head": 3,
        "projections": {"pca-2d": {"params": {"explained_variance_ratio": [0.15, 0.12]},
                                   "quality": {"knn_recall@10": 0.19, "trustworthiness@10": 0.76, "sample": 512,
                                               "attention_agreement": 0.64, "distance_dot_pearson": -0.66},
                                   "seconds": 0.008}},
        "joint": {"method": "qkatlas", "scale": 1.07, "translation_norm": 2.4,
                  "joint": {"attention_agreement": 0.91, "distance_dot_pearson": -0.86},
                  "raw": {"attention_agreement": 0.85, "distance_dot_pearson": -0.84}},
        "kv_head": 1, "kv_group": [2, 3],
    })
    layer: int
    head: int
    projections: dict[str, ProjectionInfo]
    joint: JointInfo
    kv_head: int = Field(description="the key/value head whose keys this query head scores")
    kv_group: list[int] = Field(description="the query heads sharing kv_head, this one included, in order")
    stats: HeadStats | None = Field(None, description="the head's statistics and label (GET .../stats defines "
                                                      "them); null until they are computed")


class Points(BaseModel):
    model_config = _example({"shape": [4, 2], "points": [[0.1, -1.2], [0.3, 0.4], [1.5, 0.2], [-0.7, 0.9]]})
    shape: list[int]
    points: list[list[float]]


class TokenRef(BaseModel):
    token: int
    side: Literal["query", "key"]
    text: str
    item: int
    position: int


class Neighbour(TokenRef):
    score: float


class Neighbours(BaseModel):
    model_config = _example({
        "token": {"token": 1, "side": "query", "text": " cat", "item": 0, "position": 1},
        "by": "attention", "metric": "q·k × scaling (highest first)",
        "neighbours": [{"token": 0, "side": "key", "text": "The", "item": 0, "position": 0, "score": 3.2}],
    })
    token: TokenRef
    by: Literal["attention", "joint", "projection"]
    metric: str
    neighbours: list[Neighbour]


class ItemToken(BaseModel):
    token: int
    text: str
    position: int
    special: bool
    row: int
    col: int


class ItemAttention(BaseModel):
    model_config = _example({
        "item": 0, "layer": 1, "head": 2,
        "tokens": [{"token": 0, "text": "The", "position": 0, "special": False, "row": -1, "col": -1},
                   {"token": 1, "text": " cat", "position": 1, "special": False, "row": -1, "col": -1}],
        "attention": [[1.0, 0.0], [0.4, 0.6]],
    })
    item: int
    layer: int
    head: int | None
    heads: int | None = Field(None, description="present when `head` is omitted: attention is [heads][n][n]")
    tokens: list[ItemToken]
    attention: list[list[float]] | list[list[list[float]]]


SCOPE_DESCRIPTION = ('the attention answered: "all" every layer and head ([layers][heads][n][n]; refused with '
                     '422 beyond 4 MiB, e.g. a long text through a 12 x 12 model), "layer" every head of `layer` '
                     '([heads][n][n]), "head" one head ([n][n])')
FORMAT_DESCRIPTION = ('"json", or "binary": `application/octet-stream` holding the answer as JSON without '
                      '`attention` (its first `X-Json-Bytes` bytes), then the attention as little-endian float16 '
                      'of shape `X-Shape`')
Scope = Literal["all", "layer", "head"]
Format = Literal["json", "binary"]


class LiveText(BaseModel):
    model_config = _example({"atlas": "tiny-gpt2__default-n24", "text": "The cat sat on the mat.", "layer": 0,
                             "head": 1, "method": "pca", "dim": 2, "scope": "layer"})
    atlas: str
    text: str
    layer: int | None = None
    head: int | None = None
    method: str = Field("pca", description="the layout to place the input in, with layer and head",
                        json_schema_extra={"enum": list(METHODS)})
    dim: int = Field(2, ge=min(DIMS), le=max(DIMS), description="2 or 3")
    scope: Scope = Field("all", description=SCOPE_DESCRIPTION)
    format: Format = Field("json", description=FORMAT_DESCRIPTION)


class LiveToken(BaseModel):
    text: str
    position: int
    special: bool
    row: int
    col: int


class LivePoints(BaseModel):
    layer: int
    head: int
    method: str
    dim: int
    queries: list[list[float]] = Field(description="(n, dim): the input's queries in the stored layout")
    keys: list[list[float]] = Field(description="(n, dim): the input's keys in the stored layout")
    seconds: float = Field(description="time to place this head's points, the rebuild of the layout's estimator "
                                       "included when `rebuilt`")
    how: str = Field(description='how they were placed: "PCA projection", "umap-learn transform" or '
                                 '"openTSNE transform"')
    rebuilt: bool = Field(description="whether this call rebuilt the head's fitted UMAP or t-SNE estimator from its "
                                      "stored joint cloud and layout (the first placement into that layout since the "
                                      "server started or the layout changed; seconds, kept after); never for PCA")


class Placement(BaseModel):
    model_config = _example({"error": "t-SNE layouts cannot place new points; layouts that can: PCA"})
    error: str = Field(description="why the input was not placed: the layout cannot place new points, or is "
                                   "not computed for this head yet")


class LiveAttention(BaseModel):
    model_config = _example({
        "model": "tiny-gpt2", "atlas": "tiny-gpt2__default-n24",
        "tokens": [{"text": "Hi", "position": 0, "special": False, "row": -1, "col": -1}],
        "layers": 2, "heads": 4, "scope": "layer", "layer": 0, "head": 1, "attention": [[[1.0]]] * 4,
        "points": {"layer": 0, "head": 1, "method": "pca", "dim": 2, "queries": [[0.1, 0.2]], "keys": [[0.3, -0.1]],
                   "seconds": 0.0001, "how": "PCA projection", "rebuilt": False},
        "placement": None,
    })
    model: str
    atlas: str
    tokens: list[LiveToken]
    layers: int
    heads: int
    scope: Scope
    layer: int | None = Field(description="the layer asked for (null when none)")
    head: int | None = Field(description="the head asked for (null when none)")
    attention: (list[list[list[list[float]]]] | list[list[list[float]]] | list[list[float]]) = Field(
        description='rounded to 6 decimals: [layers][heads][n][n] for scope "all", [heads][n][n] of `layer` for '
                    '"layer", [n][n] of (`layer`, `head`) for "head"')
    points: LivePoints | None = Field(description="the input's queries and keys placed in the stored method/dim "
                                                  "layout of (layer, head); null without layer and head, or when "
                                                  "that layout cannot place them (then `placement` says why)")
    placement: Placement | None = Field(description="with layer and head: null when placed, else why not; never "
                                                    "placed in another layout instead")


# ---- head statistics, the map of heads, two atlases side by side (issue 15) ----


class Definition(BaseModel):
    definition: str
    unit: str


class StatsTable(BaseModel):
    """Every head's statistics as columns, one entry per head, layer by layer."""

    model_config = _example({
        "atlas": "minilm__default", "n": 2, "version": 1,
        "columns": {"layer": [0, 0], "head": [0, 1], "kv_head": [0, 1], "kind": ["content", "previous-token"],
                    "label": ["content (positional 0.15, entropy 0.89)", "previous-token (offset \u22121: 1.00)"],
                    "entropy": [0.89, 0.0], "previous": [0.07, 1.0], "induction": [None, None]},
        "definitions": {"previous": {"definition": "mean over queries with a previous token of the attention on "
                                                   "offset -1", "unit": "fraction"}},
        "thresholds": {"previous": 0.5}, "distance_unit": "tokens",
        "sample": {"items": 537, "of": 537, "tokens": 7440}, "seconds": 1.9,
    })
    atlas: str
    n: int
    columns: dict[str, list[int | float | str | None]] = Field(
        description="layer, head, kv_head, kind, label, then every statistic (null where it does not apply)")
    version: int = Field(description="version of the definitions; statistics of an older one are recomputed")
    definitions: dict[str, Definition]
    thresholds: dict[str, float] = Field(description="the label rules, checked in this order (docs/stats.md)")
    distance_unit: Literal["tokens", "patches"]
    sample: dict[str, int] = Field(description="items read of the corpus, and their tokens")
    seconds: float | None = Field(None, description="time the statistics and the map took to compute")


class NearHead(BaseModel):
    layer: int
    head: int
    distance: float


class HeadMapPoint(BaseModel):
    layer: int
    head: int
    x: float
    y: float
    kind: str
    label: str
    stats: dict[str, float | None] = Field(description="every statistic of the head (GET .../stats defines them)")
    nearest: list[NearHead] = Field(description="the heads that attend most alike, nearest first")


class HeadMapFit(BaseModel):
    stress: float | None = Field(None, description="normalised stress of the 2-D map (0: distances kept exactly)")
    correlation: float | None = Field(None, description="correlation of distances on the map with the heads' "
                                                        "distances")
    items: int | None = Field(None, description="items whose attention the distances compare")
    rows: int | None = Field(None, description="query rows compared")


class HeadMap(BaseModel):
    model_config = _example({
        "atlas": "minilm__default", "layers": 6, "heads": 12,
        "distance": "Hellinger distance between the heads' attention rows on the same queries",
        "method": "metric MDS (scikit-learn SMACOF)",
        "fit": {"stress": 0.3, "correlation": 0.82, "items": 179, "rows": 2438},
        "points": [{"layer": 0, "head": 2, "x": 0.41, "y": -0.12, "kind": "previous-token",
                    "label": "previous-token (offset \u22121: 1.00)", "stats": {"previous": 1.0, "entropy": 0.0},
                    "nearest": [{"layer": 1, "head": 9, "distance": 0.71}]}],
    })
    atlas: str
    layers: int
    heads: int
    distance: str
    method: str
    fit: HeadMapFit
    points: list[HeadMapPoint] = Field(description="every head, layer by layer")


class AtlasSide(BaseModel):
    id: str
    model: str
    label: str
    random: bool
    corpus: str
    items: int
    modality: str
    layers: int
    heads: int
    causal: bool
    stats: bool = Field(description="whether its head statistics are computed")


class Comparison(BaseModel):
    model_config = _example({
        "a": {"id": "minilm__default", "model": "minilm", "label": "all-MiniLM-L6-v2", "random": False,
              "corpus": "default", "items": 537, "modality": "text", "layers": 6, "heads": 12, "causal": False,
              "stats": True},
        "b": {"id": "minilm-random__default", "model": "minilm-random", "label": "MiniLM architecture (random init)",
              "random": True, "corpus": "default", "items": 537, "modality": "text", "layers": 6, "heads": 12,
              "causal": False, "stats": True},
        "same_corpus": True, "same_model": False, "token_match": "character spans",
    })
    a: AtlasSide
    b: AtlasSide
    same_corpus: bool = Field(description="the same corpus hash: item i is the same sentence or image in both")
    same_model: bool
    token_match: str | None = Field(description='how GET /api/compare/tokens matches tokens: "character spans", '
                                                '"token texts read along the item\'s text", "image regions"; null '
                                                'when it cannot (text beside images, images of two corpora)')


class MatchedToken(BaseModel):
    token: int
    text: str
    item: int
    position: int


class TokenMatches(BaseModel):
    model_config = _example({
        "a": "minilm__default", "b": "smollm2__default",
        "token": {"token": 2, "text": "cat", "item": 0, "position": 2}, "how": "character spans",
        "matches": [{"token": 1, "text": " cat", "item": 0, "position": 1}],
    })
    a: str
    b: str
    token: MatchedToken
    how: str | None
    matches: list[MatchedToken] = Field(description="B's tokens covering the same characters (text) or image "
                                                    "region (images) of the same item; may be empty")
