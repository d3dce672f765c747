"""The looping player in a real browser: Debian's chromium (Playwright) against ``streamlit run``.

A tiny app (written into tmp_path) mounts ``looper()`` under a "Groove" slider.  We press play,
move the slider several times while the loop plays, and read the scheduler's own log
(``window.__musicvaeLooper.log``: one entry per scheduled 16th) to check that the loop never
stopped or restarted (every step follows the previous one after exactly one 16th), that each new
groove took over on a bar line, and that the last groove is the one heard.

Run with ``pytest -m browser tests/test_player_browser.py``.  Needs ``/usr/bin/chromium`` and the
``playwright`` package (never ``playwright install``).  ``scripts/bench_player.py`` reuses the
helpers below.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import numpy as np
import pytest
from streamlit_server import free_port, run_streamlit

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent
TESTS = Path(__file__).resolve().parent
CHROMIUM = os.environ.get("CHROMIUM", "/usr/bin/chromium")
# as tests/test_browser.py, plus autoplay: headless chromium has no user gesture to start audio
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync", "--no-first-run",
                 "--autoplay-policy=no-user-gesture-required"]
TIMEOUT_MS = 60_000
TOLERANCE = 0.001  # seconds: how far apart two scheduled 16ths may be beyond one 16th

APP_SCRIPT = '''
import numpy as np
import streamlit as st
from test_player_browser import groove
from musicvae.app.player import looper

st.set_page_config(page_title="looper test")
seed = st.slider("Groove", 0, 200, 0, key="groove")
qpm = st.slider("Tempo", 60, 200, 120, key="qpm")
switch_at = st.radio("Switch at", ["bar", "beat"], key="switch_at", horizontal=True)
in_column = st.checkbox("Player in a column", key="in_column")  # moves (remounts) the element
push = st.checkbox("Push", key="push")  # per-hit offsets: step 0 early, off-beat 8ths late
pattern = groove(seed)
offsets = None
if push:
    offsets = np.zeros((64, 9))
    offsets[0::16] = -0.4
    offsets[2::4] = 0.3
hidden = st.checkbox("Hide the player", key="hidden")
banked = st.checkbox("Bank the neighbours", key="banked")  # the grooves one step left and right go along
extra = {}
if banked:
    from musicvae.app.stage import slider_bank

    bank, nav, tag = slider_bank("groove", seed, 1, 0, 200, lambda v: groove(int(v)))
    extra = {"bank": bank, "nav": nav, "tag": tag}
if not hidden:
    with st.columns(2)[1] if in_column else st.container():
        state = looper(pattern, qpm, key="looper", label=f"Groove {seed}", switch_at=switch_at, offsets=offsets,
                       **extra)
    st.caption(f"pattern {state.pattern_id} · playing {state.playing} · kit {state.kit_loaded} · "
               f"command {state.command}")
    if state.command:
        st.session_state.setdefault("commands", []).append(state.command)
st.caption("commands: " + " ".join(st.session_state.get("commands", [])))
'''


def groove(seed: int):
    """A 4-bar groove that differs with ``seed``: a backbeat plus seeded extras and velocities.

    With ``MUSICVAE_PLAYER_DECODE=1`` (the benchmark's ``--decode``) the shipped model samples it
    instead, so the measured round trip includes a real decode."""
    if os.environ.get("MUSICVAE_PLAYER_DECODE") == "1":
        return _decoded(seed)
    from musicvae.pattern import DrumPattern

    rng = np.random.default_rng(seed)
    hits = np.zeros((64, 9), dtype=bool)
    hits[0::8, 0] = True  # kick on 1 and 3
    hits[4::8, 1] = True  # snare on 2 and 4
    hits[0::2, 2] = True  # closed hat on 8ths
    hits |= rng.random((64, 9)) < np.array([0.12, 0.06, 0.1, 0.04, 0.03, 0.03, 0.03, 0.01, 0.04])
    velocities = rng.integers(50, 121, size=hits.shape).astype(np.uint8)
    return DrumPattern(hits, velocities)


_MODEL = []


def _decoded(seed: int):
    if not _MODEL:
        from musicvae.api import DEFAULT_SAMPLE_MODEL, TrainedModel, shipped_checkpoint

        _MODEL.append(TrainedModel.load(shipped_checkpoint(DEFAULT_SAMPLE_MODEL)))
    return _MODEL[0].sample(1, temperature=0.5, seed=int(seed))[0]


# -- helpers (also used by scripts/bench_player.py) -------------------------------------------------
def start_app(folder: Path, env: dict | None = None) -> tuple[subprocess.Popen, str]:
    """Write APP_SCRIPT into ``folder`` and `streamlit run` it on 127.0.0.1:<free port>, as `make
    demo` runs the playground; returns once /_stcore/health answers."""
    folder.mkdir(parents=True, exist_ok=True)
    script = folder / "looper_app.py"
    script.write_text(APP_SCRIPT)
    port = free_port()
    path = os.pathsep.join([str(TESTS), str(ROOT), os.environ.get("PYTHONPATH", "")])
    full_env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": path, **(env or {})}
    process = run_streamlit(script, port, full_env, folder / "streamlit.log", cwd=folder,
                            extra_args=("--server.fileWatcherType", "none"))
    return process, f"http://127.0.0.1:{port}"


def stop_app(process: subprocess.Popen) -> None:
    process.terminate()
    try:
        process.wait(10)
    except subprocess.TimeoutExpired:
        process.kill()


def open_player(page, url: str) -> None:
    """Load the app and wait until the player holds a groove and its kit."""
    page.goto(url)
    page.get_by_role("button", name="Play").wait_for()
    page.wait_for_function("() => { const p = window.__musicvaeLooper; return p && p.state().kitLoaded"
                           " && p.state().patternId; }", timeout=TIMEOUT_MS)


def press_play(page) -> None:
    page.get_by_role("button", name="Play").click()
    page.wait_for_function("() => window.__musicvaeLooper.state().playing"
                           " && window.__musicvaeLooper.log.length > 8", timeout=TIMEOUT_MS)


def looper_log(page) -> dict:
    return page.evaluate("""() => { const p = window.__musicvaeLooper;
        return {log: p.log.slice(), switches: p.switches.slice(), arrivals: p.arrivals.slice(),
                events: p.events.slice(), state: p.state()}; }""")


def largest_gap(log: list[dict]) -> tuple[float, float]:
    """(largest time between consecutive scheduled steps minus one 16th, the largest such time)."""
    worst_excess, worst = -1.0, 0.0
    for before, after in zip(log, log[1:], strict=False):
        gap = after["audioTime"] - before["audioTime"]
        worst = max(worst, gap)
        worst_excess = max(worst_excess, gap - before["dur"])
    return worst_excess, worst


def check_continuous(log: list[dict]) -> None:
    """Every scheduled 16th follows the previous one: step counter +1, time + one 16th (+-1 ms)."""
    assert len(log) > 16, "the scheduler logged too little"
    for before, after in zip(log, log[1:], strict=False):
        assert after["pos"] == before["pos"] + 1, f"the loop restarted or skipped: {before} -> {after}"
        gap = after["audioTime"] - before["audioTime"]
        assert abs(gap - before["dur"]) <= TOLERANCE, f"a gap of {gap * 1000:.1f} ms at {before} -> {after}"


def transport(events: list[dict]) -> list[str]:
    """play/stop/resync events (a rewind re-schedules ahead for a new groove or tempo: no break)."""
    return [e["kind"] for e in events if e["kind"] not in ("rewind", "lookahead")]


def chromium_browser(playwright):
    return playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)


@contextmanager
def chromium_page(width: int = 1280, height: int = 720, timeout_ms: int = TIMEOUT_MS) -> Iterator:
    """A page in a Chromium of its own; on the way out, any uncaught page error fails the test."""
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = chromium_browser(playwright)
        context = browser.new_context(viewport={"width": width, "height": height})
        page = context.new_page()
        page.set_default_timeout(timeout_ms)
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        yield page
        context.close()
        browser.close()
        assert not errors, errors


# -- the test ---------------------------------------------------------------------------------------
@pytest.fixture(scope="module")
def app(tmp_path_factory):
    if not Path(CHROMIUM).exists():
        pytest.skip(f"no chromium at {CHROMIUM}")
    pytest.importorskip("playwright")
    folder = tmp_path_factory.mktemp("looper-app")
    process, url = start_app(folder, {"MUSICVAE_CACHE_DIR": str(folder / "cache")})  # a fresh kit
    yield url
    stop_app(process)


@pytest.fixture
def page(app):
    with chromium_page() as page:
        yield page


def test_loop_keeps_running_across_groove_changes(page, app):
    from musicvae.app.player import pattern_data

    open_player(page, app)
    first = page.evaluate("() => window.__musicvaeLooper.state().patternId")
    assert first == pattern_data(groove(0))["id"]
    press_play(page)
    page.wait_for_function("() => window.__musicvaeLooper.level() > 0.001", timeout=TIMEOUT_MS)

    slider = page.get_by_role("slider", name="Groove")
    slider.focus()
    for move in range(1, 6):  # five changes, at whatever point of the bar they land
        slider.press("ArrowRight")
        expected = pattern_data(groove(move))["id"]
        page.wait_for_function(f"() => window.__musicvaeLooper.arrivals.some(a => a.patternId === '{expected}')",
                               timeout=TIMEOUT_MS)
        page.wait_for_timeout(150 + 170 * move)
    # the last groove takes over at the next bar line (2 s at 120 qpm) and is heard
    page.wait_for_function(f"() => window.__musicvaeLooper.state().patternId === '{expected}'"
                           " && window.__musicvaeLooper.log.filter(e => e.patternId === "
                           f"'{expected}' && e.hits > 0).length >= 16", timeout=TIMEOUT_MS)
    record = looper_log(page)
    check_continuous(record["log"])
    assert record["state"]["playing"] and record["state"]["context"] == "running"
    assert transport(record["events"]) == ["play"], record["events"]
    assert record["switches"], "no groove ever took over"
    for switch in record["switches"]:
        assert switch["pos"] % 16 == 0, f"a groove took over off the bar line: {switch}"
    heard = [entry["patternId"] for entry in record["log"]]
    assert heard[0] == first and heard[-1] == expected
    assert record["switches"][-1]["to"] == expected
    # the hits of the new groove are the ones scheduled: compare one bar with the groove itself
    events = pattern_data(groove(move))["events"]
    per_step = np.bincount([e[0] for e in events], minlength=64)
    tail = [e for e in record["log"] if e["patternId"] == expected][-16:]
    assert [e["hits"] for e in tail] == [int(per_step[e["step"]]) for e in tail]
    assert page.evaluate("() => window.__musicvaeLooper.level()") > 0.001  # sound comes out


def test_keyboard_space_and_commands(page, app):
    open_player(page, app)
    page.evaluate("() => document.activeElement && document.activeElement.blur()")  # no control has focus
    page.keyboard.press("Space")
    page.wait_for_function("() => window.__musicvaeLooper.state().playing", timeout=TIMEOUT_MS)
    page.keyboard.press("n")
    page.get_by_text("commands: new").wait_for()
    page.keyboard.press("ArrowLeft")
    page.get_by_text("commands: new left").wait_for()
    step = page.evaluate("() => window.__musicvaeLooper.currentStep()")
    assert 0 <= step < 64
    # in a control the keys belong to the control: an arrow moves the slider, not the grid
    slider = page.get_by_role("slider", name="Tempo")
    slider.focus()
    slider.press("ArrowRight")
    page.wait_for_function("() => window.__musicvaeLooper.state().qpm === 121", timeout=TIMEOUT_MS)
    assert page.get_by_text("commands: new left").count() == 1
    page.evaluate("() => document.activeElement && document.activeElement.blur()")
    page.keyboard.press("Space")
    page.wait_for_function("() => !window.__musicvaeLooper.state().playing", timeout=TIMEOUT_MS)


def test_remount_tempo_and_beat_switch(page, app):
    from musicvae.app.player import pattern_data

    open_player(page, app)
    press_play(page)
    page.get_by_text("beat", exact=True).click()  # new grooves now take over at the next beat
    page.wait_for_timeout(300)
    slider = page.get_by_role("slider", name="Groove")
    slider.focus()
    for seed in (1, 2):
        slider.press("ArrowRight")
        expected = pattern_data(groove(seed))["id"]
        page.wait_for_function(f"() => window.__musicvaeLooper.state().patternId === '{expected}'",
                               timeout=TIMEOUT_MS)
    page.get_by_text("Player in a column").click()  # the element moves: a new mount, the same loop
    page.wait_for_function("() => window.__musicvaeLooper.state().views === 1 && "
                           "document.querySelector('[data-testid=stColumn] .stBidiComponent')", timeout=TIMEOUT_MS)
    tempo = page.get_by_role("slider", name="Tempo")
    tempo.focus()
    for _ in range(10):
        tempo.press("ArrowRight")
    page.wait_for_function("() => window.__musicvaeLooper.state().qpm === 130", timeout=TIMEOUT_MS)
    page.wait_for_timeout(600)
    record = looper_log(page)
    check_continuous(record["log"])  # through the remount and the tempo change
    assert transport(record["events"]) == ["play"] and record["state"]["playing"]
    durations = {round(e["dur"], 6) for e in record["log"]}
    assert round(60 / 120 / 4, 6) in durations and round(60 / 130 / 4, 6) in durations
    assert len(record["switches"]) == 2
    for switch in record["switches"]:
        assert switch["pos"] % 4 == 0, f"a groove took over off the beat: {switch}"
    assert page.get_by_role("button", name="Stop").count() == 1  # one player on the screen
    page.get_by_text("Hide the player").click()  # a player gone for good (1.5 s) stops the loop
    page.wait_for_function("() => !window.__musicvaeLooper.state().playing", timeout=TIMEOUT_MS)
    assert transport(looper_log(page)["events"]) == ["play", "stop"]


def test_offsets_move_hits_and_never_before_the_loop_start(page, app):
    open_player(page, app)
    page.get_by_text("Push").click()
    page.wait_for_function("() => window.__musicvaeLooper.arrivals.length >= 2", timeout=TIMEOUT_MS)
    press_play(page)
    page.wait_for_function("() => window.__musicvaeLooper.log.length > 40", timeout=TIMEOUT_MS)
    log = looper_log(page)["log"]
    check_continuous(log)
    start = log[0]["audioTime"]
    by_pos = {e["pos"]: e for e in log}
    assert by_pos[0]["times"] and all(t == start for t in by_pos[0]["times"])  # clamped to the loop start
    dur = log[0]["dur"]
    for entry in (by_pos[16], by_pos[32]):  # later bar lines: pushed early by 0.4 of a 16th
        assert entry["times"] and all(abs(t - (entry["audioTime"] - 0.4 * dur)) < 1e-6 for t in entry["times"])
    for entry in (by_pos[2], by_pos[6], by_pos[18]):  # off-beat 8ths: laid back by 0.3
        assert entry["times"] and all(abs(t - (entry["audioTime"] + 0.3 * dur)) < 1e-6 for t in entry["times"])
    for entry in (by_pos[4], by_pos[8]):  # the rest on the grid
        assert all(abs(t - entry["audioTime"]) < 1e-6 for t in entry["times"])


def test_banked_slider_switches_before_the_rerun(page, app):
    """With the grooves of the slider's neighbouring values banked, an arrow key on the slider switches
    in the browser (the looper watches its aria-valuenow); the rerun answers with the same groove."""
    from musicvae.app.player import pattern_data

    open_player(page, app)
    page.get_by_text("Bank the neighbours").click()
    page.wait_for_function("() => window.__musicvaeLooper.banked('groove:1')", timeout=TIMEOUT_MS)  # slider_bank's keys
    press_play(page)
    since = page.evaluate("() => window.__musicvaeLooper.arrivals.length")
    slider = page.get_by_role("slider", name="Groove")
    slider.focus()
    for seed in (1, 2, 3):
        page.wait_for_function(f"() => window.__musicvaeLooper.banked('groove:{seed}')", timeout=TIMEOUT_MS)
        slider.press("ArrowRight")
        page.wait_for_function(f"() => window.__musicvaeLooper.tag === 'groove={seed}'"
                               " && !window.__musicvaeLooper.expect.length", timeout=TIMEOUT_MS)
    expected = pattern_data(groove(3))["id"]
    page.wait_for_function(f"() => window.__musicvaeLooper.state().patternId === '{expected}'", timeout=TIMEOUT_MS)
    record = looper_log(page) | page.evaluate("() => ({answers: window.__musicvaeLooper.answers.slice()})")
    arrivals = [a for a in record["arrivals"][since:] if a["kind"] != "cancel"]
    assert [(a["source"], a["tag"]) for a in arrivals] == [("bank", f"groove={s}") for s in (1, 2, 3)], arrivals
    assert [a["patternId"] for a in arrivals] == [pattern_data(groove(s))["id"] for s in (1, 2, 3)]
    for arrival in arrivals:  # each switch before the server's rerun answered it, which confirmed it
        answers = [x for x in record["answers"] if x["tag"] == arrival["tag"]]
        assert answers and all(x["perfTime"] > arrival["perfTime"] for x in answers)
        assert answers[-1]["verdict"] == "confirm" and answers[-1]["patternId"] == arrival["patternId"]
    check_continuous(record["log"])
    assert transport(record["events"]) == ["play"]
