"""Checks on live input before it reaches a model: a text's length and characters, an upload's
bytes, format and pixels, and which attention the answer may hold.

Each problem is an InvalidInput (422) or TooLarge (413) naming the limit and the setting that
sets it.
"""

from __future__ import annotations

import io
import unicodedata

from .errors import InvalidInput, TooLarge
from .settings import Settings

# Decoders run on uploads: the common formats only, so no rarely used (and rarely fuzzed)
# PIL plugin (DDS, IM, PSD, ...) ever parses bytes from the network.
IMAGE_FORMATS = {"PNG": "PNG", "JPEG": "JPEG", "WEBP": "WebP", "GIF": "GIF", "BMP": "BMP"}
ACCEPTED = ", ".join(IMAGE_FORMATS.values())
TEXT_CONTROLS = "\t\n\r"  # the control characters a text may hold


def check_text(text: str, settings: Settings) -> None:
    if not text.strip():
        raise InvalidInput("text is empty; send at least one non-space character")
    if len(text) > settings.max_text_chars:
        raise TooLarge(f"text has {len(text)} characters; the limit is {settings.max_text_chars} "
                       "(max_text_chars)")
    for i, ch in enumerate(text):
        kind = unicodedata.category(ch)
        if kind == "Cs":
            raise InvalidInput(f"text holds a lone surrogate U+{ord(ch):04X} at character {i}: not a Unicode "
                               "character; send valid UTF-8 (a pair of surrogates in JSON escapes one character)")
        if kind == "Cc" and ch not in TEXT_CONTROLS:
            raise InvalidInput(f"text holds the control character U+{ord(ch):04X} at character {i}; of the "
                               "control characters only tab, newline and carriage return are allowed")


def check_scope(scope: str, layer: int | None, head: int | None) -> None:
    """scope "layer" needs a layer, "head" a layer and a head."""
    if scope == "layer" and layer is None:
        raise InvalidInput("scope 'layer' answers the attention of one layer: give its layer")
    if scope == "head" and (layer is None or head is None):
        raise InvalidInput("scope 'head' answers the attention of one head: give its layer and head")


def read_image(data: bytes, settings: Settings):
    """Upload bytes -> PIL RGB image. `data` may hold one byte more than max_upload_bytes: the
    caller reads no further than that, and the extra byte says the upload is too large."""
    from PIL import Image, UnidentifiedImageError

    if len(data) > settings.max_upload_bytes:
        raise TooLarge(f"the upload is larger than the limit of {settings.max_upload_bytes} bytes (max_upload_bytes)")
    if not data:
        raise InvalidInput(f"the uploaded file is empty; send an image ({ACCEPTED})")
    max_pixels = settings.max_image_pixels
    try:
        image = Image.open(io.BytesIO(data), formats=list(IMAGE_FORMATS))
        w, h = image.size
        if w * h > max_pixels:
            raise TooLarge(f"image is {w}x{h} = {w * h} pixels; the limit is {max_pixels} pixels (max_image_pixels)")
        image.load()
        return image.convert("RGB")
    except Image.DecompressionBombError:
        raise TooLarge(f"image has too many pixels; the limit is {max_pixels} pixels (max_image_pixels)") from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError):
        raise InvalidInput(f"the uploaded file is not a readable image in an accepted format: {ACCEPTED}") from None
