"""One item: its attention rebuilt from the stored vectors, its image, a patch's thumbnail.

The images are answered as (render, etag): the render function runs only when the client
does not already hold those bytes.
"""

from __future__ import annotations

from typing import Callable

from ...errors import NotFound
from ...item_attention import item_attention
from ...patches import patch_positions, patch_thumbnail
from ..responses import etag
from ..served import ServedAtlas


def item_attention_answer(served: ServedAtlas, item: int, layer: int, head: int | None) -> dict:
    """The item's tokens and attention at `layer`: (n, n) of `head`, or (heads, n, n) of every head."""
    tokens = served.item_tokens(item)
    served.check_head(layer, 0 if head is None else head)
    q, k = served.item_vectors(item, layer)
    m = served.manifest
    A = item_attention(q, k, served.scaling(layer), m.causal, head)
    body = {"item": item, "layer": layer, "head": head, "tokens": tokens}
    if head is None:
        body["heads"] = m.heads
    body["attention"] = A.tolist()
    return body


def item_png(served: ServedAtlas, item: int) -> tuple[Callable[[], bytes], str]:
    """The PNG the model saw for `item` (image atlases; NotFound for text atlases)."""
    _, stamp = served.image_file(item)
    return (lambda: served.image_png(item)), etag(served.id, "image", item, stamp)


def patch_png(served: ServedAtlas, item: int, position: int, size: int) -> tuple[Callable[[], bytes], str]:
    """A size x size thumbnail of the patch at token `position` of `item`; NotFound for a prefix token."""
    spec = served.image_spec()
    start, stop = served.item_rows(item)
    patches = patch_positions(spec, stop - start)
    if position not in patches:
        prefix = spec.prefix_tokens
        raise NotFound(f"position {position} of item {item} is not a patch; patches are positions "
                       f"{prefix}..{patches.stop - 1} (positions 0..{prefix - 1} are CLS/register tokens)")
    _, stamp = served.image_file(item)
    return (lambda: patch_thumbnail(served.image_png(item), spec, position, size)), \
        etag(served.id, "patch", item, position, size, stamp)
