"""Colours live in one theme module (js/theme.js), which agrees with the page's CSS."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from .pages import open_view

pytestmark = [pytest.mark.e2e, pytest.mark.xdist_group("browser")]

JS = Path(__file__).parents[2] / "frontend" / "js"
COLOUR = re.compile(r"#[0-9a-fA-F]{3,8}\b|rgba?\(")


def test_no_module_but_the_theme_spells_a_colour():
    spelled = {f.name: COLOUR.findall(f.read_text()) for f in JS.glob("*.js") if f.name != "theme.js"}
    assert {name: found for name, found in spelled.items() if found} == {}


def test_theme_colours_match_the_css_custom_properties(page, server, e2e_atlases):
    open_view(page, server, "matrix", atlas=e2e_atlases["text"])
    pairs = page.evaluate("""async () => {
        const t = await import('./js/theme.js');
        const css = getComputedStyle(document.documentElement);
        const named = {bg: t.BG, text: t.TEXT, faint: t.FAINT, line: t.LINE, q: t.Q, k: t.K, 'kv-edge': t.KV_EDGE};
        return Object.entries(named).map(([name, colour]) => [name, css.getPropertyValue('--' + name).trim(), colour]);
    }""")
    assert [(name, css.lower()) for name, css, _ in pairs] == [(name, colour.lower()) for name, _, colour in pairs]
