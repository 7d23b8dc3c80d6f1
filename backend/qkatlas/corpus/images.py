"""Image corpora: bundled photographs from scikit-image and a loader for a folder of images.

First stage of the pipeline for vision models: every item is an RGB PIL image of SIZE x SIZE
pixels with a label naming its photograph and crop, or its file.
"""

from __future__ import annotations

from pathlib import Path

from PIL import Image, ImageOps

from ..errors import InvalidInput, UnknownCorpus
from . import Corpus, ImageItem, content_hash

DEFAULT_ID = "images"
SIZE = 224
SUFFIXES = (".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff")

# (label, skimage.data function): real photographs that ship with scikit-image, so the default
# corpus needs no network. `cat` is left out because it is the same picture as `chelsea`.
PHOTOS = (
    ("astronaut", "astronaut"),
    ("chelsea the cat", "chelsea"),
    ("coffee", "coffee"),
    ("rocket", "rocket"),
    ("hubble deep field", "hubble_deep_field"),
    ("immunohistochemistry", "immunohistochemistry"),
    ("retina", "retina"),
    ("camera man", "camera"),
    ("coins", "coins"),
    ("moon", "moon"),
    ("brick", "brick"),
    ("grass", "grass"),
    ("gravel", "gravel"),
    ("clock", "clock"),
    ("motorcycle", "stereo_motorcycle"),
)

# (name, left, top) of each square crop as fractions of the room the square leaves free, with a
# side of CROP_SIDE times the photo's shorter side; "centre" uses the whole shorter side.
CROP_SIDE = 0.6
CROPS = (
    ("top-left", 0.0, 0.0),
    ("top-right", 1.0, 0.0),
    ("bottom-left", 0.0, 1.0),
    ("bottom-right", 1.0, 1.0),
)


def hash_items(items) -> str:
    return content_hash(part for item in items for part in (item.label, item.image.tobytes()))


def _photo(function: str):
    """One scikit-image photograph as an RGB PIL image."""
    # imported here: scikit-image takes a second to import and only the default corpus needs it
    from skimage import data
    from skimage.util import img_as_ubyte

    pixels = getattr(data, function)()
    if isinstance(pixels, tuple):  # stereo pairs come as (left, right, disparity)
        pixels = pixels[0]
    return Image.fromarray(img_as_ubyte(pixels)).convert("RGB")


def _square(image, side: int, left: float, top: float):
    """The side x side square at fractional position (left, top), resized to SIZE x SIZE."""
    x = round((image.width - side) * left)
    y = round((image.height - side) * top)
    # reducing_gap shrinks by whole factors first: same look, several times faster on big photos
    return image.resize((SIZE, SIZE), Image.LANCZOS, box=(x, y, x + side, y + side), reducing_gap=3.0)


def default_corpus() -> Corpus:
    images = []
    for label, function in PHOTOS:
        photo = _photo(function)
        short = min(photo.size)
        images.append((f"{label} (centre)", _square(photo, short, 0.5, 0.5)))
        side = round(short * CROP_SIDE)
        images.extend((f"{label} ({name})", _square(photo, side, left, top)) for name, left, top in CROPS)
    items = tuple(ImageItem(item=i, image=image, label=label) for i, (label, image) in enumerate(images))
    return Corpus(DEFAULT_ID, "image", items, hash_items(items), "scikit-image bundled photographs (skimage.data)")


def _open(path: Path):
    """The image at `path`, RGB, shorter side scaled to SIZE and centre-cropped to a square."""
    try:
        with Image.open(path) as image:
            return ImageOps.fit(image.convert("RGB"), (SIZE, SIZE), Image.LANCZOS)
    except (OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise InvalidInput(f"{path.name} is not a readable image ({exc})") from None


def load_path(path) -> Corpus:
    """A folder of images (not its subfolders), sorted by file name; the corpus id is the folder's name."""
    path = Path(path)
    supported = ", ".join(SUFFIXES)
    if not path.exists():
        raise UnknownCorpus(f"no such folder: {path}")
    if not path.is_dir():
        raise InvalidInput(f"{path.name} is a file; an image corpus is a folder of images ({supported})")
    files = sorted((p for p in path.iterdir() if p.is_file() and p.suffix.lower() in SUFFIXES),
                   key=lambda p: p.name)
    if not files:
        raise InvalidInput(f"folder {path.name} holds no images ({supported})")
    items = tuple(ImageItem(item=i, image=_open(file), label=file.name) for i, file in enumerate(files))
    name = path.resolve().name
    return Corpus(name, "image", items, hash_items(items), str(path))
