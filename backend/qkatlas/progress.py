"""Progress reporting: the library calls a Reporter; the CLI passes one drawn with rich."""

from __future__ import annotations

from typing import Protocol


class Reporter(Protocol):
    def stage(self, name: str, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def message(self, text: str) -> None: ...


class Silent:
    def stage(self, name: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def message(self, text: str) -> None:
        pass
