"""Two atlases side by side: what they share, and which tokens of one are a token of the other."""

from __future__ import annotations

from ...compare import ItemSide, match, spans_from_text
from ...errors import InvalidInput
from ..served import ServedAtlas


def side(served: ServedAtlas) -> dict:
    m = served.manifest
    return {"id": served.id, "model": m.model.id, "label": m.model.label, "random": m.model.random,
            "corpus": m.corpus.id, "items": m.corpus.items, "modality": m.modality, "layers": m.layers,
            "heads": m.heads, "causal": m.causal, "stats": served.stats_stamp() is not None}


def comparison(a: ServedAtlas, b: ServedAtlas) -> dict:
    """Whether two atlases can be read side by side item by item, and how their tokens are matched."""
    ma, mb = a.manifest, b.manifest
    same_corpus = ma.corpus.hash == mb.corpus.hash
    # text on two corpora: item by item, where an item holds the same sentence in both
    how = how_matched(a, b, 0) if same_corpus or ma.modality == "text" else None
    return {"a": side(a), "b": side(b), "same_corpus": same_corpus,
            "same_model": ma.model.id == mb.model.id and ma.model.source == mb.model.source,
            "token_match": how}


def how_matched(a: ServedAtlas, b: ServedAtlas, item: int) -> str | None:
    """How tokens of `item` are matched between A and B; None when they cannot be (text beside images)."""
    if a.manifest.modality != b.manifest.modality:
        return None
    if a.manifest.modality == "image":
        return "image regions"
    spans = a.item_spans(item) is not None and b.item_spans(item) is not None
    return "character spans" if spans else "token texts read along the item's text"


def item_side(served: ServedAtlas, item: int) -> ItemSide:
    tokens = served.item_tokens(item)
    texts, special = [t["text"] for t in tokens], [t["special"] for t in tokens]
    spans = served.item_spans(item)
    if spans is None and served.manifest.modality == "text":
        spans = spans_from_text(served.item_text(item), texts, special)
    start, end = spans or ([-1] * len(tokens), [-1] * len(tokens))
    image = served.manifest.image
    return ItemSide(texts, special, start, end, [t["row"] for t in tokens], [t["col"] for t in tokens],
                    image.grid if image is not None and served.manifest.modality == "image" else 0)


def check_same_item(a: ServedAtlas, b: ServedAtlas, item: int) -> None:
    """Item `item` of A is item `item` of B: the same corpus, or (text) the same sentence."""
    ma, mb = a.manifest, b.manifest
    if ma.modality != mb.modality:
        raise InvalidInput(f"atlas {a.id!r} holds {ma.modality} and atlas {b.id!r} {mb.modality}: "
                           "their tokens cannot be matched")
    if ma.corpus.hash == mb.corpus.hash:
        return
    if ma.modality == "text" and item < mb.corpus.items and a.item_text(item) == b.item_text(item):
        return
    raise InvalidInput(f"atlases {a.id!r} and {b.id!r} hold different corpora ({ma.corpus.id!r}, "
                       f"{mb.corpus.id!r}) and item {item} is not the same in both: its tokens cannot be matched")


def token_matches(a: ServedAtlas, b: ServedAtlas, token: int) -> dict:
    """The tokens of B that are token `token` of A: the same item, the same characters or image region."""
    start_a, _ = a.token_item_rows(token)
    item = int(a.token_ref(token, "query")["item"])
    check_same_item(a, b, item)
    position = token - start_a
    found = match(item_side(a, item), position, item_side(b, item))
    start_b, _ = b.item_rows(item)
    return {"a": a.id, "b": b.id, "token": _ref(a, token), "how": how_matched(a, b, item),
            "matches": [_ref(b, start_b + j) for j in found]}


def _ref(served: ServedAtlas, token: int) -> dict:
    r = served.token_ref(token, "query")
    return {"token": r["token"], "text": r["text"], "item": r["item"], "position": r["position"]}
