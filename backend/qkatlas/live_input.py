"""Checks on live input before it reaches a model: a text's length, an upload's bytes and pixels.

Each problem is an InvalidInput (422) or TooLarge (413) naming the limit and the setting that
sets it.
"""

from __future__ import annotations

import io

from .errors import InvalidInput, TooLarge
from .settings import Settings


def check_text(text: str, settings: Settings) -> None:
    if not text.strip():
        raise InvalidInput("text is empty; send at least one non-space character")
    if len(text) > settings.max_text_chars:
        raise TooLarge(f"text has {len(text)} characters; the limit is {settings.max_text_chars} "
                       "(max_text_chars)")


def read_image(data: bytes, settings: Settings):
    """Upload bytes -> PIL RGB image. `data` may hold one byte more than max_upload_bytes: the
    caller reads no further than that, and the extra byte says the upload is too large."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > settings.max_upload_bytes:
        raise TooLarge(f"the upload is larger than the limit of {settings.max_upload_bytes} bytes (max_upload_bytes)")
    if not data:
        raise InvalidInput("the uploaded file is empty; send an image (PNG, JPEG, ...)")
    max_pixels = settings.max_image_pixels
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
