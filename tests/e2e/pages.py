"""Helpers that drive the page the way a person does: open a view, wait for it, look at it."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

SCREENSHOTS = Path(__file__).parent / "screenshots"


def open_view(page, server: str, wait: str | None = None, **state) -> None:
    """Navigate to the page with `state` in the URL and wait until view `wait` has drawn."""
    query = urlencode({k: v for k, v in state.items() if v is not None})
    page.goto(f"{server}/?{query}")
    if wait:
        wait_drawn(page, wait)


def wait_drawn(page, view: str, after: int = 0, timeout: float = 20_000) -> int:
    """Wait until `view` has drawn more than `after` times; returns the count."""
    attr = f"{view}Drawn"
    page.wait_for_function(f"Number(document.body.dataset.{attr} || 0) > {after}", timeout=timeout)
    return int(page.evaluate(f"document.body.dataset.{attr}"))


def drawn_count(page, view: str) -> int:
    return int(page.evaluate(f"Number(document.body.dataset.{view}Drawn || 0)"))


def screenshot(page, name: str) -> None:
    """Save what the page shows under tests/e2e/screenshots/ (git-ignored), to look at."""
    SCREENSHOTS.mkdir(exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"))
