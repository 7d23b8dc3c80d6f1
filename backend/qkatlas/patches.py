"""Image patches: which token position covers which pixels, and a patch's thumbnail.

Pure functions over an image atlas's grid (the manifest's image block: patch size, patches
per side, prefix tokens such as CLS before the patches) and the PNG the model saw.
"""

from __future__ import annotations

import io
from pathlib import Path

from .manifest import ImageBlock


def patch_positions(spec: ImageBlock, tokens: int) -> range:
    """Token positions of an item with `tokens` tokens that are patches (after the prefix tokens)."""
    return range(spec.prefix_tokens, tokens)


def patch_cell(spec: ImageBlock, position: int) -> tuple[int, int]:
    """(row, col) in the patch grid of the patch at token `position` (row-major after the prefix)."""
    return divmod(position - spec.prefix_tokens, spec.grid)


def patch_thumbnail(png: Path | bytes, spec: ImageBlock, position: int, size: int) -> bytes:
    """PNG bytes of a size x size thumbnail of the patch at `position` of the image `png` (a file or
    its bytes), enlarged without smoothing."""
    from PIL import Image

    row, col = patch_cell(spec, position)
    p = spec.patch
    with Image.open(io.BytesIO(png) if isinstance(png, bytes) else png) as img:
        cell = img.convert("RGB").crop((col * p, row * p, (col + 1) * p, (row + 1) * p))
    buf = io.BytesIO()
    cell.resize((size, size), Image.Resampling.NEAREST).save(buf, format="PNG")
    return buf.getvalue()
