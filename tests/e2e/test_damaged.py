"""A damaged atlas in the browser: the picker lists it, disabled, with its reason; the other
atlases draw; opening it by its link says what is damaged; repaired, it opens again."""

from __future__ import annotations

import shutil

import httpx
import pytest

from .conftest import running_server
from .pages import open_view, screenshot, wait_drawn

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]


@pytest.fixture
def damaged_server(settings, tiny_text_atlas, tiny_bert_atlas, tmp_path):
    """A server over copies of the tiny text and BERT atlases, the BERT one's manifest not JSON.
    Yields (url, text atlas id, BERT copy, its good manifest bytes)."""
    data = tmp_path / "data"
    shutil.copytree(tiny_text_atlas, data / tiny_text_atlas.name)
    bert = data / tiny_bert_atlas.name
    shutil.copytree(tiny_bert_atlas, bert)
    good = (bert / "manifest.json").read_bytes()
    (bert / "manifest.json").write_text('{"atlas": ')
    with running_server(settings.with_(data_dir=data)) as url:
        yield url, tiny_text_atlas.name, bert, good


def test_a_damaged_atlas_is_a_disabled_choice_with_its_reason_and_the_others_draw(page, damaged_server):
    url, text, bert, _ = damaged_server
    reason = next(a for a in httpx.get(f"{url}/api/atlases").json() if a["id"] == bert.name)["detail"]
    open_view(page, url, "matrix")
    assert page.locator("#atlas-picker").input_value() == text  # the one that loads is the one shown
    option = page.locator(f"#atlas-picker option[value='{bert.name}']")
    assert option.is_disabled() and option.get_attribute("title") == reason
    assert option.inner_text() == f"{bert.name} (damaged)"
    screenshot(page, "damaged-picker")


def test_a_link_to_a_damaged_atlas_says_what_is_damaged_and_it_opens_once_repaired(page, damaged_server):
    url, _, bert, good = damaged_server
    open_view(page, url, atlas=bert.name)
    box = page.locator("#view .error-box")
    box.wait_for()
    assert box.get_attribute("data-status") == "503"
    detail = box.locator(".error-detail").inner_text()
    assert detail.startswith(f"atlas {bert.name!r} is damaged: manifest.json (Invalid JSON")
    assert page.locator("#atlas-picker").input_value() == bert.name
    screenshot(page, "damaged-link")
    (bert / "manifest.json").write_bytes(good)
    page.evaluate("qkatlas.poller.poll()")  # what the page does every few seconds
    wait_drawn(page, "matrix", timeout=15_000)
    assert not page.locator(f"#atlas-picker option[value='{bert.name}']").is_disabled()
