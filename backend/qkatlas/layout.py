"""Layouts: one reduction method at one dimension ("umap-2d"), the one place that names them.

The methods are the reducer registry's (reduce/methods.py), in its order, which is the build
order (cheapest first). Everything that lists, parses, labels or files a layout asks this
module; the front end gets the same list from `GET /api/layouts`.
"""

from __future__ import annotations

from dataclasses import dataclass

from .errors import InvalidInput, NotFound
from .reduce.methods import REDUCERS

METHODS: tuple[str, ...] = tuple(REDUCERS)
DIMS: tuple[int, ...] = (2, 3)


@dataclass(frozen=True)
class Layout:
    method: str
    dim: int

    @classmethod
    def of(cls, method: str, dim: int) -> "Layout":
        """A checked layout: NotFound (404) naming the valid methods or dims."""
        if method not in METHODS:
            raise NotFound(f"unknown method {method!r}; valid methods: {', '.join(METHODS)}")
        if dim not in DIMS:
            raise NotFound(f"unknown dim {dim}; valid dims: {', '.join(map(str, DIMS))}")
        return cls(method, dim)

    @classmethod
    def parse(cls, key: str) -> "Layout":
        """ "umap-2d" -> Layout("umap", 2)."""
        method, _, dim = key.rpartition("-")
        try:
            return cls.of(method, int(dim.removesuffix("d")))
        except ValueError:
            raise NotFound(f"unknown layout {key!r}; valid layouts: {', '.join(l.key for l in ALL)}") from None

    @property
    def key(self) -> str:
        return f"{self.method}-{self.dim}d"

    @property
    def label(self) -> str:
        """The method's name for people: "UMAP", "t-SNE"."""
        return REDUCERS[self.method].label

    @property
    def title(self) -> str:
        return f"{self.label} {self.dim}-D"

    def describe(self) -> dict:
        return {"key": self.key, "method": self.method, "dim": self.dim, "label": self.label}


ALL: tuple[Layout, ...] = tuple(Layout(m, d) for m in METHODS for d in DIMS)


def parse_methods(text: str) -> list[str]:
    """ "umap, pca" -> ["pca", "umap"] (build order); InvalidInput naming the valid methods."""
    chosen = [m.strip().lower() for m in text.split(",") if m.strip()]
    bad = [m for m in chosen if m not in METHODS]
    if bad or not chosen:
        raise InvalidInput(f"unknown method {', '.join(bad) or text!r}; valid methods: {', '.join(METHODS)}")
    return [m for m in METHODS if m in chosen]


def parse_dims(text: str) -> list[int]:
    """ "3,2" -> [2, 3]; InvalidInput unless every value is 2 or 3."""
    try:
        dims = sorted({int(d) for d in text.split(",") if d.strip()})
    except ValueError:
        raise InvalidInput(f"--dims must be a comma-separated list of 2 and/or 3, got {text!r}") from None
    if not dims or any(d not in DIMS for d in dims):
        raise InvalidInput(f"--dims must be 2 and/or 3, got {text!r}")
    return dims


def layouts(methods, dims) -> list[Layout]:
    """Every (method, dim) asked for, in build order: all of a method's dims before the next method."""
    return [Layout(m, d) for m in METHODS if m in methods for d in DIMS if d in dims]
