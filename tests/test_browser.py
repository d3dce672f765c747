"""The playground in a real browser: Debian's chromium driven by Playwright against ``streamlit run``.

Run with ``pytest -m browser``.  Needs ``/usr/bin/chromium`` and the ``playwright`` Python package
(never ``playwright install``: the system chromium is used).  Screenshots go to ``test-artifacts/``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_app import build_tiny_models, gmd_files  # noqa: E402

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "test-artifacts"
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 90_000
RMS_FLOOR = 0.01


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, env: dict, log: Path) -> subprocess.Popen:
    """`streamlit run` on 127.0.0.1:port, as `make demo` runs it; returns once /_stcore/health answers."""
    env = {"MALLOC_ARENA_MAX": "2", **env}  # as in `make demo`: fewer glibc arenas, ~150 MB less RSS under load
    command = [str(ROOT / ".venv" / "bin" / "streamlit") if (ROOT / ".venv").exists() else "streamlit", "run",
               str(ROOT / "streamlit_app.py"), "--server.port", str(port), "--server.address", "127.0.0.1",
               "--server.headless", "true", "--browser.gatherUsageStats", "false"]
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=log.open("w"), stderr=subprocess.STDOUT)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=2).read() == b"ok":
                return process
        except OSError:
            time.sleep(0.2)
        if process.poll() is not None:
            break
    process.kill()
    raise RuntimeError(f"streamlit did not start; see {log}")


@pytest.fixture(scope="module")  # module: its Playwright must be gone before test_player_browser starts its own
def server(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    pytest.importorskip("playwright")
    models = build_tiny_models(tmp_path_factory.getbasetemp() / "tiny-models")
    port = free_port()
    env = dict(os.environ, MUSICVAE_CHECKPOINTS_DIR=str(models))
    ARTIFACTS.mkdir(exist_ok=True)
    process = start_server(port, env, ARTIFACTS / "streamlit.log")
    yield f"http://127.0.0.1:{port}"
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


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


def audio_sources(page) -> list[str]:
    return page.eval_on_selector_all("audio", "els => els.map(e => e.src)")


def fetch_wav_rms(page, src: str) -> tuple[float, float]:
    from musicvae.media.audio import decode_wav, rms

    response = page.request.get(src)
    assert response.ok, src
    samples, rate = decode_wav(response.body())
    return rms(samples), len(samples) / rate


def open_mode(page, label: str) -> None:
    page.locator('[data-testid="stSidebar"]').get_by_text(label, exact=True).click()
    page.get_by_role("heading", name=label).wait_for()
    settle(page)


def test_first_load_sample_slider_and_download(page, server, tmp_path):
    started = time.monotonic()
    page.goto(server)
    page.wait_for_selector("audio")
    page.wait_for_selector(".js-plotly-plot")
    first_load = time.monotonic() - started
    settle(page)
    # the URL is synced at the end of the run; on a loaded machine that can land after settle()
    page.wait_for_function("() => location.search.includes('mode=sample') && location.search.includes('seed=')",
                           timeout=TIMEOUT_MS)
    page.screenshot(path=str(ARTIFACTS / "sample.png"), full_page=True)
    before = audio_sources(page)
    assert len(before) == 3
    level, seconds = fetch_wav_rms(page, before[0])
    assert level > RMS_FLOOR and abs(seconds - 8.0) < 0.01

    page.get_by_role("button", name="New seed").click()
    page.wait_for_function("old => { const a = [...document.querySelectorAll('audio')].map(e => e.src);"
                           " return a.length === 3 && a[0] !== old[0]; }", arg=before)
    settle(page)
    after_seed = audio_sources(page)

    slider = page.get_by_role("slider", name="Temperature")
    slider.focus()
    for _ in range(6):
        slider.press("ArrowRight")
    page.wait_for_function("() => location.href.includes('temperature=0.8')")  # 0.5 + 6 x 0.05, in the URL
    page.wait_for_function("old => [...document.querySelectorAll('audio')].map(e => e.src)[0] !== old[0]",
                           arg=after_seed)
    settle(page)

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
    page.goto(server + "/?mode=interpolate&steps=5")
    page.wait_for_selector("audio")
    settle(page)
    files = gmd_files(3)[1:]
    page.locator('[data-testid="stSidebar"] input[type=file]').set_input_files([str(f) for f in files])
    for path in files:
        page.get_by_text(f"Window of {path.name}").wait_for()  # long files offer their 4-bar windows
    settle(page)
    page.get_by_text("The whole morph").wait_for()
    sources = audio_sources(page)
    assert len(sources) == 2  # the whole morph + the chosen step
    level, seconds = fetch_wav_rms(page, sources[0])
    assert level > RMS_FLOOR and seconds > 5 * 4 * 2 * (120 / 120) * 0.9  # 5 steps of 4 bars
    level, _ = fetch_wav_rms(page, sources[1])
    assert level > RMS_FLOOR
    assert "Endpoint reconstruction" in page.inner_text("body")
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


def test_latent_grid_and_broken_upload(page, server):
    page.goto(server + "/?mode=latent")
    page.wait_for_selector("audio")
    settle(page)
    before = audio_sources(page)
    slider = page.get_by_role("slider", name="PC1", exact=False).first
    slider.focus()
    for _ in range(10):
        slider.press("ArrowRight")
    page.wait_for_function("old => [...document.querySelectorAll('audio')].map(e => e.src)[0] !== old[0]",
                           arg=before)
    settle(page)
    page.screenshot(path=str(ARTIFACTS / "latent.png"), full_page=True)

    open_mode(page, "Grid")
    page.wait_for_selector("audio")
    settle(page)
    click_cell(page, page.locator(".js-plotly-plot").first, 3, 4, 5, 5)
    page.get_by_text("grid cell row 3, column 4").wait_for()
    settle(page)
    page.screenshot(path=str(ARTIFACTS / "grid.png"), full_page=True)

    page.locator('[data-testid="stSidebar"] input[type=file]').set_input_files(
        files=[{"name": "notes.mid", "mimeType": "audio/midi", "buffer": b"just some text, not MIDI"}])
    page.locator('[data-testid="stAlertContentError"]').first.wait_for()
    settle(page)
    error = page.locator('[data-testid="stAlertContentError"]').first.inner_text()
    assert "notes.mid" in error and "Traceback" not in page.inner_text("body")
