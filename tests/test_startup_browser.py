"""A fresh server plays at once: the first page run draws the looper with a preset before torch loads
(musicvae/app/startup.py), and the model's groove takes over at a bar line without a stop."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_browser import TIMEOUT_MS, check_heard, press_play, settle, tiny_app, wait_player  # noqa: E402
from test_player_browser import chromium_page  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture
def fresh_server(tmp_path_factory):
    """A server of its own: its first page run is the cold one."""
    with tiny_app(tmp_path_factory, "streamlit-startup.log", {"OMP_NUM_THREADS": "1"}) as url:
        yield url


def preset_ids() -> set[str]:
    from musicvae.app.core import load_presets
    from musicvae.app.player import pattern_data

    return {pattern_data(p.pattern)["id"] for p in load_presets()}


def test_a_cold_start_plays_a_preset_then_hands_over_to_the_model(fresh_server):
    presets = preset_ids()
    with chromium_page(timeout_ms=TIMEOUT_MS) as page:
        page.goto(fresh_server + "/?mode=sample")
        wait_player(page, model=False)
        first = page.evaluate("() => window.__musicvaeLooper.arrivals[0]")
        assert first["patternId"] in presets, "the first groove is not the stand-in preset"
        press_play(page)
        # the model's sample arrives by itself (no input) and takes over while the loop runs
        page.wait_for_function("ids => { const p = window.__musicvaeLooper; const s = p.switches;"
                               " return s.length && !ids.includes(s[s.length - 1].to); }", arg=sorted(presets))
        check_heard(page)  # no gap since play, the model's groove is the one heard
        settle(page)
        assert page.locator(".mv-play").count() == 1  # the stand-in looper was replaced, not left behind
        assert "while the model loads" not in page.locator(".mv-label").inner_text()
        page.get_by_role("slider", name="Temperature").wait_for()  # the full page is there
