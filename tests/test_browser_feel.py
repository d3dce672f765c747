"""The Humanize switch in a real browser (issue 17): the running loop takes the humanized groove at the
next bar without stopping, and what it schedules then has the groove model's velocities and offsets.

Debian's chromium driven by Playwright against ``streamlit run`` (as ``tests/test_browser.py``), with
the tiny models of ``test_app`` and the tiny groove model of ``test_app_feel``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_app_feel import build_feel_models  # noqa: E402
from test_browser import (  # noqa: E402
    ARTIFACTS,
    TIMEOUT_MS,
    audio_now,
    check_heard,
    press_play,
    settle,
    switches,
    tiny_app,
    wait_player,
    wait_switch,
)
from test_player_browser import chromium_page, looper_log  # noqa: E402

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    models = lambda: build_feel_models(tmp_path_factory.getbasetemp())  # noqa: E731 - built only when not skipped
    with tiny_app(tmp_path_factory, "streamlit-feel.log", models=models) as url:
        yield url


@pytest.fixture(scope="module")  # module: this Playwright is gone before another test module starts its own
def page(server):
    with chromium_page(1400, 1000, TIMEOUT_MS) as page:
        yield page


def played(data: dict, pattern_id: str) -> tuple[set[int], list[float]]:
    """(velocities, offsets in seconds) of the hits the loop scheduled for one groove."""
    entries = [e for e in data["log"] if e["patternId"] == pattern_id and e["hits"] and e["step"] > 0]
    return ({v for e in entries for v in e["vels"]},
            [t - e["audioTime"] for e in entries for t in e["times"]])


def flip_humanize(page, on: bool) -> dict:
    """Click the sidebar switch; returns the looper's log once the new groove plays."""
    before = switches(page)
    page.locator('[data-testid="stSidebar"]').get_by_text("Humanize", exact=True).click()
    page.wait_for_function(f"() => location.search.includes('humanize=1') === {str(on).lower()}",
                           timeout=TIMEOUT_MS)
    wait_switch(page, before)
    page.wait_for_timeout(2500)  # a bar and more of the new groove
    return looper_log(page)


def test_humanize_switch_keeps_the_loop_running_and_plays_the_feel(page, server):
    page.goto(server + "/?mode=sample")
    wait_player(page)
    settle(page)
    press_play(page)
    page.wait_for_timeout(1000)
    quantized = looper_log(page)["state"]["patternId"]

    data = flip_humanize(page, True)
    switch = data["switches"][-1]
    assert switch["from"] == quantized and switch["pos"] % 16 == 0  # taken over at a bar line
    velocities, offsets = played(data, switch["to"])
    assert len(velocities) > 3 and max(abs(o) for o in offsets) > 1e-3  # the groove model's dynamics and timing
    assert played(data, quantized)[0] == {80} and max(abs(o) for o in played(data, quantized)[1]) < 1e-6
    check_heard(page)  # one unbroken loop since play: no restart, no gap, no stop, sound out
    settle(page)
    page.locator(".st-key-roll_sample_0").screenshot(path=str(ARTIFACTS / "humanized_roll.png"))
    since = audio_now(page)  # a screenshot may freeze the page past the look-ahead on a busy machine: not the app's

    data = flip_humanize(page, False)  # and back: the same loop, the grid again
    assert data["switches"][-1]["to"] == quantized
    check_heard(page, since)
    assert [e["kind"] for e in data["events"] if e["kind"] in ("play", "stop")] == ["play"]
