"""The first screen, before any atlas can be drawn: how to build one when nothing is being
built, what a running build is doing while it runs, and its atlas drawn as soon as it exists."""

from __future__ import annotations

import time

import pytest

from qkatlas.build_status import MIN_INTERVAL_S, BuildStatus
from qkatlas.progress import Silent

from .builds import publish_atlas
from .pages import open_view, screenshot, wait_drawn

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]


def test_first_screen_shows_a_running_build_then_draws_its_atlas(page, empty_server, tiny_text_atlas, tmp_path):
    url, data = empty_server
    open_view(page, url)
    empty = page.locator("#view .empty")
    empty.wait_for()
    text = empty.inner_text()
    assert "No atlases yet" in text
    assert "qkatlas demo" in text and "--model minilm" in text and "--model tiny-gpt2" in text
    assert "--model gpt2 " not in text  # GPT-2 itself cannot load offline
    screenshot(page, "first-screen-empty")

    # a build starts (the way `qkatlas build` reports its progress to the server)
    status = BuildStatus(data, tiny_text_atlas.name, "tiny-gpt2", "tiny GPT-2 (random init)", Silent())
    try:
        status.stage("PCA 2-D", 8)
        card = page.locator(".build-list .build")
        card.wait_for(timeout=10_000)  # the page polls while nothing is drawn
        assert card.get_attribute("data-atlas") == tiny_text_atlas.name
        assert "tiny GPT-2 (random init)" in card.inner_text() and "PCA 2-D" in card.inner_text()
        assert "No atlases yet" not in page.locator("#view").inner_text()
        time.sleep(MIN_INTERVAL_S)  # the status file is rewritten at most this often
        status.advance(5)
        page.wait_for_function("document.querySelector('.build-list .build')?.textContent.includes('5 of 8')", timeout=10_000)
        screenshot(page, "first-screen-building")

        # its first layout is written: the atlas is drawn at once, without reloading the page
        page.evaluate("window.sameDocument = true")
        (tmp_path / "staging").mkdir()
        publish_atlas(tiny_text_atlas, data, tmp_path / "staging")
        wait_drawn(page, "matrix", timeout=15_000)
        assert page.evaluate("window.sameDocument") is True
        assert page.locator("#atlas-picker").input_value() == tiny_text_atlas.name
        badge = page.locator("#atlas-badges .badge.building")  # the build goes on
        assert badge.get_attribute("title") == "tiny GPT-2 (random init): PCA 2-D, 5/8"
        screenshot(page, "first-screen-drawn")
    finally:
        status.close()
