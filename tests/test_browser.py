"""The playground in a real browser: Debian's chromium driven by Playwright against ``streamlit run``.

Run with ``pytest -m browser``.  Needs ``/usr/bin/chromium`` and the ``playwright`` Python package
(never ``playwright install``: the system chromium is used).  Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from streamlit_server import serving  # noqa: E402
from test_app import build_tiny_models, gmd_files  # noqa: E402
from test_player_browser import check_continuous, looper_log  # noqa: E402

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]  # headless: no user gesture starts audio
TIMEOUT_MS = 90_000
RMS_FLOOR = 0.01
HEARD_S = 0.6  # a switch counts as heard once it has sounded this long


@contextmanager
def tiny_app(tmp_path_factory, log_name: str, env: dict | None = None,
             models: Callable[[], Path] | None = None) -> Iterator[str]:
    """`streamlit run` with the tiny models (or the checkpoints folder ``models()`` builds) for a browser
    test (skipped, before anything is built, where there is no Chromium or no playwright); yields its URL."""
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    pytest.importorskip("playwright")
    folder = models() if models else build_tiny_models(tmp_path_factory.getbasetemp() / "tiny-models")
    with serving(folder, ARTIFACTS / log_name, env) as url:
        yield url


@pytest.fixture(scope="module")  # module: its Playwright must be gone before test_player_browser starts its own
def server(tmp_path_factory):
    with tiny_app(tmp_path_factory, "streamlit.log") as url:
        yield url


@pytest.fixture(scope="module")
def browser(server):
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def page(browser, server):
    context = browser.new_context(viewport={"width": 1400, "height": 1000}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    yield page
    context.close()
    assert not errors, errors


def settle(page) -> None:
    """Wait until Streamlit has finished the current run (no 'Running' status, no stale elements)."""
    page.wait_for_timeout(300)
    page.wait_for_function(
        "() => !document.querySelector('[data-testid=\"stStatusWidget\"]') && "
        "!document.querySelector('[data-stale=\"true\"]')", timeout=TIMEOUT_MS)


def wait_player(page, model: bool = True) -> None:
    """The screen's one looper holds a groove and its drum kit; with ``model``, the page is past a fresh
    server's first run (the looper no longer plays the stand-in preset while the model loads)."""
    page.locator(".mv-play").wait_for()
    page.wait_for_function("() => { const p = window.__musicvaeLooper; return p && p.state().kitLoaded"
                           " && p.state().patternId; }", timeout=TIMEOUT_MS)
    if model:
        from playwright.sync_api import expect

        expect(page.locator(".mv-label")).not_to_contain_text("while the model loads", timeout=TIMEOUT_MS)


def press_play(page) -> None:
    page.locator(".mv-play").click()
    page.wait_for_function("() => window.__musicvaeLooper.state().playing && window.__musicvaeLooper.log.length > 8",
                           timeout=TIMEOUT_MS)


def switches(page) -> int:
    """How many grooves the looper has received so far (a rewind may undo a switch scheduled ahead,
    so the switch log is no counter)."""
    return page.evaluate("() => window.__musicvaeLooper.arrivals.filter(a => a.kind !== 'cancel').length")


def wait_switch(page, before: int) -> None:
    """A new groove arrived (after ``before``) and took over: it is the one heard now (at a bar line)."""
    page.wait_for_function("""n => { const p = window.__musicvaeLooper;
        const got = p.arrivals.filter(a => a.kind !== 'cancel');
        return got.length > n && p.state().patternId === got[got.length - 1].patternId; }""",
                           arg=before, timeout=TIMEOUT_MS)


def audio_now(page) -> float:
    return page.evaluate("() => window.__musicvaeLooper.state().audioTime")


def check_heard(page, since: float = 0.0) -> None:
    """The loop ran without a gap since play (or ``since``, an audio time: a full-page screenshot
    freezes headless chromium's page for a moment, so the checks start after one), and the groove it
    switched to is heard (hits scheduled, sound out).

    Judged on the last switch that has sounded for a while, not on the last one logged: a switch is
    logged when it is scheduled, up to the look-ahead (1-4 s, it grows on a busy page) before it is
    heard, and a drawn path switches every bar (2 s at 120 qpm), so its latest switch may never be
    the one heard.  Without a path, the wait is for the last switch itself to have sounded."""
    page.wait_for_function(f"""() => {{ const p = window.__musicvaeLooper; const s = p.switches;
        const now = p.state().audioTime;
        if (!s.length) return false;
        const heard = x => x.audioTime <= now - {HEARD_S};
        return p.queue ? s.some(x => x.queue && heard(x)) : heard(s[s.length - 1]); }}""",
                           timeout=TIMEOUT_MS)
    data = looper_log(page)
    start = max(since, [e for e in data["events"] if e["kind"] == "play"][-1]["audioTime"])
    log = [e for e in data["log"] if e["audioTime"] >= start]  # since the last press of play
    try:
        check_continuous(log)
    except AssertionError as error:
        raise AssertionError(f"{error}; scheduler events: {data['events'][-12:]}") from None
    now = data["state"]["audioTime"]
    assert data["state"]["playing"]
    following = any(s.get("queue") for s in data["switches"])  # a path: one of its switches must be heard
    sounded = [i for i, s in enumerate(data["switches"])
               if s["audioTime"] <= now - HEARD_S and (s.get("queue") or not following)]
    heard = data["switches"][sounded[-1]]
    later = data["switches"][sounded[-1] + 1:]
    until = min([now] + [s["audioTime"] for s in later])
    span = [e for e in log if heard["audioTime"] <= e["audioTime"] < until]
    assert span and all(e["patternId"] == heard["to"] for e in span), (heard, span[:3])
    assert sum(e["hits"] for e in span) > 0, f"no hit of {heard['to']} was played"
    if not later:
        assert data["state"]["patternId"] == heard["to"]
    page.wait_for_function("() => window.__musicvaeLooper.level() > 0.001", timeout=20_000)  # sound comes out


def open_mode(page, label: str) -> None:
    page.locator('[data-testid="stSidebar"]').get_by_text(label, exact=True).click()
    page.get_by_role("heading", name=label).wait_for()
    settle(page)


def test_first_load_sample_play_slider_new_seed_and_download(page, server, tmp_path):
    started = time.monotonic()
    page.goto(server)
    wait_player(page)
    page.wait_for_selector(".js-plotly-plot")
    first_load = time.monotonic() - started
    settle(page)
    # the URL is synced at the end of the run; on a loaded machine that can land after settle()
    page.wait_for_function("() => location.search.includes('mode=sample') && location.search.includes('seed=')",
                           timeout=TIMEOUT_MS)
    assert page.locator("audio").count() == 0 and page.locator(".mv-play").count() == 1
    press_play(page)
    page.wait_for_function("() => document.querySelector('.st-key-roll_sample_0 .mv-playhead')")  # on the roll

    before = switches(page)
    slider = page.get_by_role("slider", name="Temperature")
    slider.focus()
    for _ in range(6):
        slider.press("ArrowRight")
    page.wait_for_function("() => location.href.includes('temperature=0.8')")  # 0.5 + 6 x 0.05, in the URL
    wait_switch(page, before)
    settle(page)

    before = switches(page)
    page.locator("h2").first.click()  # focus out of the slider: N is the looper's key
    page.keyboard.press("n")
    wait_switch(page, before)
    settle(page)
    before = switches(page)
    page.get_by_role("button", name="▶ Play").nth(1).click()  # the third variation's play toggle
    wait_switch(page, before)
    page.wait_for_function("() => document.querySelector('.st-key-roll_sample_2 .mv-playhead')")
    check_heard(page)
    page.screenshot(path=str(ARTIFACTS / "sample.png"), full_page=True)

    with page.expect_download() as download_info:
        page.get_by_role("button", name="⬇ MIDI").first.click()
    target = tmp_path / "groove.mid"
    download_info.value.save_as(target)
    import pretty_midi

    midi = pretty_midi.PrettyMIDI(str(target))
    assert midi.instruments and midi.instruments[0].is_drum and len(midi.instruments[0].notes) > 0
    shutil.copy(target, ARTIFACTS / "downloaded.mid")
    (ARTIFACTS / "first_load_seconds.txt").write_text(f"{first_load:.2f}\n")


def test_upload_two_files_and_interpolate(page, server):
    page.goto(server + "/?mode=interpolate&steps=9")
    wait_player(page)
    settle(page)
    files = gmd_files(3)[1:]
    page.locator('[data-testid="stSidebar"] input[type=file]').set_input_files([str(f) for f in files])
    for path in files:
        page.get_by_text(f"Window of {path.name}").first.wait_for()  # long files offer their 4-bar windows
        page.get_by_label(f"Window of {path.name}").wait_for()  # named without markdown escapes
    settle(page)
    page.get_by_role("button", name="⬇ WAV of the whole morph", exact=False).wait_for()
    assert "plays back" in page.inner_text("body") and "cannot carry" in page.inner_text("body")
    press_play(page)
    before = switches(page)
    settle(page)
    page.locator(".st-key-play_src_b button").first.click()  # B, as uploaded, has its own play toggle
    wait_switch(page, before)
    check_heard(page)
    page.screenshot(path=str(ARTIFACTS / "interpolate.png"), full_page=True)


def hover_cell(page, chart, row: int, col: int, rows: int, cols: int) -> None:
    """Move the mouse onto the centre of a mosaic cell; plotly needs the hover before a click."""
    box = chart.bounding_box()
    x = box["x"] + box["width"] * (col - 0.5) / cols
    y = box["y"] + box["height"] * (row - 0.5) / rows
    page.mouse.move(x - 5, y - 5)
    page.mouse.move(x, y, steps=5)
    page.wait_for_timeout(300)


def click_cell(page, chart, row: int, col: int, rows: int, cols: int) -> None:
    hover_cell(page, chart, row, col, rows, cols)
    page.mouse.down()
    page.mouse.up()


def test_latent_grid_loop_keeps_running(page, server):
    page.goto(server + "/?mode=latent")
    wait_player(page)
    settle(page)
    press_play(page)
    slider = page.get_by_role("slider", name="PC1", exact=False).first
    for key, presses in (("ArrowRight", 10), ("ArrowLeft", 20)):  # PC1 to +1.0, then to -1.0
        before = switches(page)
        slider.focus()
        for _ in range(presses):
            slider.press(key)
        wait_switch(page, before)
        settle(page)
    check_heard(page)
    page.screenshot(path=str(ARTIFACTS / "latent.png"), full_page=True)
    page.wait_for_timeout(1000)
    since = audio_now(page)

    open_mode(page, "Grid")
    wait_player(page)
    settle(page)
    chart = page.locator(".st-key-grid_chart .js-plotly-plot")
    for row, col in ((3, 4), (5, 5), (1, 2)):
        before = switches(page)
        click_cell(page, chart, row, col, 5, 5)
        page.get_by_text(f"grid cell row {row}, column {col}").first.wait_for()
        wait_switch(page, before)
        settle(page)
    before = switches(page)
    page.locator("h2").first.click()
    page.keyboard.press("ArrowDown")  # the arrow keys move the cell
    page.get_by_text("grid cell row 2, column 2").first.wait_for()
    wait_switch(page, before)
    check_heard(page, since)  # the loop went on through the mode switch, 3 clicks and a key
    page.screenshot(path=str(ARTIFACTS / "grid.png"), full_page=True)

    page.locator('[data-testid="stSidebar"] input[type=file]').set_input_files(
        files=[{"name": "notes.mid", "mimeType": "audio/midi", "buffer": b"just some text, not MIDI"}])
    page.locator('[data-testid="stAlertContentError"]').first.wait_for()
    settle(page)
    error = page.locator('[data-testid="stAlertContentError"]').first.inner_text()
    assert "notes.mid" in error and "Traceback" not in page.inner_text("body")


def test_grid_pad_puck_and_drawn_path(page, server):
    page.goto(server + "/?mode=grid&present=1")
    wait_player(page)
    settle(page)
    press_play(page)
    pad = page.locator(".mv-pad")
    box = pad.bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    before = switches(page)
    page.mouse.move(box["x"] + box["width"] * 0.5, box["y"] + box["height"] * 0.5)
    page.mouse.down()
    for i in range(8):  # drag the puck towards the bottom left corner
        page.mouse.move(x0 + w * (0.5 - 0.05 * i), y0 + h * (0.5 + 0.05 * i), steps=3)
        page.wait_for_timeout(50)
    page.mouse.up()
    page.wait_for_function("() => location.search.includes('puck=')")
    wait_switch(page, before)
    settle(page)
    page.get_by_text("Draw a path").click()
    settle(page)
    # as on a busy machine (CI): a stalled page doubles the look-ahead up to 4 s, two bars at 120 qpm,
    # so the path's newest switch is always scheduled ahead of the one heard
    page.evaluate("() => { window.__musicvaeLooper.lookahead = 4.0; }")
    page.mouse.move(box["x"] + 4, box["y"] + 4)
    page.mouse.down()
    for i in range(1, 21):  # corner to corner
        page.mouse.move(x0 + 4 + i * (w - 8) / 20, y0 + 4 + i * (h - 8) / 20, steps=2)
    page.mouse.up()
    # the looper follows the path: a new groove at each bar line, from the queue
    page.wait_for_function("() => window.__musicvaeLooper.switches.filter(s => s.queue).length >= 3",
                           timeout=TIMEOUT_MS)
    data = looper_log(page)
    queued = [s for s in data["switches"] if s.get("queue")]
    assert all(s["pos"] % 16 == 0 for s in queued) and len({s["to"] for s in queued}) >= 2
    check_heard(page)
    page.screenshot(path=str(ARTIFACTS / "grid_pad.png"))
