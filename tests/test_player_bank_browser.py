"""The Grid's bank in a real browser (Debian's chromium, Playwright, ``streamlit run streamlit_app.py``
with the tiny test models): the looper switches on the input event, before the server's rerun.

Play, then move through the grid with the arrow keys (two of them in quick succession) and with clicks
on cells, then drag the blend pad's puck.  Each cell switch must come from the looper's bank
(``arrivals[].source == "bank"``) before the server answers with the same tag, the server's answer must
change nothing (the same groove: no second switch), an answer to an older input is not taken, the
puck's exact decode replaces the nearest cell's groove on release, and the scheduler's log shows no gap.

Run with ``pytest -m browser tests/test_player_bank_browser.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_browser import TIMEOUT_MS, click_cell, settle, tiny_app, wait_player  # noqa: E402
from test_player_browser import check_continuous, chromium_page, looper_log, transport  # noqa: E402

pytestmark = pytest.mark.browser
ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def server(tmp_path_factory):
    with tiny_app(tmp_path_factory, "streamlit-bank.log", {"OMP_NUM_THREADS": "1"}) as url:
        yield url


@pytest.fixture
def page(server):
    with chromium_page(1400, 1000, TIMEOUT_MS) as page:
        yield page


def answered(page, tag: str) -> None:
    """The server's rerun for ``tag`` reached the looper (it confirms, or it was the latest anyway)."""
    page.wait_for_function("t => window.__musicvaeLooper.tag === t && !window.__musicvaeLooper.expect.length",
                           arg=tag, timeout=TIMEOUT_MS)


def bank_id(page, key: str) -> str:
    return page.evaluate("k => window.__musicvaeLooper.banked(k).id", key)


def playing_next(page) -> str:
    return page.evaluate("() => { const s = window.__musicvaeLooper.state(); return s.pendingId || s.scheduledId; }")


def check_local(record: dict, since: int, tags: list[str], answered_tags: list[str]) -> None:
    """The grooves that arrived since arrival ``since``: one local switch per tag, each before the
    server's answer for it; no groove from the server in between (its answers changed nothing)."""
    arrivals = [a for a in record["arrivals"][since:] if a["kind"] != "cancel"]
    assert [a["source"] for a in arrivals] == ["bank"] * len(tags), arrivals
    assert [a["tag"] for a in arrivals] == tags, arrivals
    for arrival in arrivals:
        answers = [x for x in record["answers"] if x["tag"] == arrival["tag"]]
        assert all(x["perfTime"] > arrival["perfTime"] for x in answers)  # the switch came first, the rerun after
        if arrival["tag"] in answered_tags:  # (an input followed at once by the next may get no rerun of its own)
            assert answers, f"the server never answered {arrival['tag']}"
    last = record["answers"][-1]
    assert last["tag"] == tags[-1] and last["verdict"] == "confirm" and last["patternId"] == arrivals[-1]["patternId"]


def open_banked(page, url: str, key: str) -> None:
    """Open ``url`` and wait until the page is drawn and ``key`` is in the looper's bank (with its nav)."""
    page.goto(url)
    wait_player(page)
    settle(page)
    page.wait_for_function("k => window.__musicvaeLooper.nav && window.__musicvaeLooper.banked(k)", arg=key,
                           timeout=TIMEOUT_MS)


def play(page) -> int:
    """Press play; the looper's arrivals so far, once the rerun its play report causes has finished
    (the inputs measured after this are the test's own)."""
    page.locator(".mv-play").click()
    page.wait_for_function("() => window.__musicvaeLooper.state().playing && window.__musicvaeLooper.log.length > 8")
    settle(page)
    return page.evaluate("() => window.__musicvaeLooper.arrivals.length")


def test_grid_switches_in_the_browser_before_the_rerun(page, server):
    open_banked(page, server + "/?mode=grid&cell=1,1", "cell:5,5")
    since = play(page)

    # arrow keys: the looper's own key commands, the bank's groove at once
    page.locator("h2").first.click()
    page.keyboard.press("ArrowRight")
    assert playing_next(page) == bank_id(page, "cell:1,2")  # at once, from the bank
    assert page.locator(".mv-label").inner_text() == "♪ grid cell row 1, column 2"  # said at once too
    answered(page, "cell:1,2")
    settle(page)
    page.keyboard.press("ArrowDown")
    page.keyboard.press("ArrowRight")  # before the first one's rerun: its answer is an older input's
    assert playing_next(page) == bank_id(page, "cell:2,3")
    answered(page, "cell:2,3")
    page.get_by_text("grid cell row 2, column 3").first.wait_for()
    settle(page)
    # clicks on cells of the grid chart
    chart = page.locator(".st-key-grid_chart .js-plotly-plot")
    for row, col in ((4, 4), (5, 1)):
        click_cell(page, chart, row, col, 5, 5)
        answered(page, f"cell:{row},{col}")
        page.get_by_text(f"grid cell row {row}, column {col}").first.wait_for()
        settle(page)
    record = looper_log(page) | page.evaluate("() => ({answers: window.__musicvaeLooper.answers.slice()})")
    check_local(record, since, ["cell:1,2", "cell:2,2", "cell:2,3", "cell:4,4", "cell:5,1"],
                ["cell:1,2", "cell:2,3", "cell:4,4", "cell:5,1"])
    assert playing_next(page) == bank_id(page, "cell:5,1")
    stale = [x for x in record["answers"] if x["verdict"] == "stale"]
    # never the latest input; "cell:1,1" (before any input) is the rerun pressing play causes (the looper
    # reports it), which a busy server may answer after the first arrow key: rightly not taken
    assert all(x["tag"] in ("cell:1,1", "cell:1,2", "cell:2,2") for x in stale), stale

    # the puck: the nearest cell's groove while it moves, the server's exact decode after release
    since = page.evaluate("() => window.__musicvaeLooper.arrivals.length")
    box = page.locator(".mv-pad").bounding_box()
    x0, y0, w, h = box["x"], box["y"], box["width"], box["height"]
    page.mouse.move(x0 + w * 0.5, y0 + h * 0.5)
    page.mouse.down()
    for i in range(1, 9):  # towards the top right corner
        page.mouse.move(x0 + w * (0.5 + 0.05 * i), y0 + h * (0.5 - 0.05 * i), steps=3)
        page.wait_for_timeout(40)
    page.mouse.up()
    tag = page.evaluate("() => window.__musicvaeLooper.expect.slice(-1)[0].tag")
    x, y = (float(v) for v in tag.removeprefix("puck:").split(","))
    assert abs(x - 0.9) < 0.03 and abs(y - 0.1) < 0.03, tag
    answered(page, tag)
    settle(page)
    record = looper_log(page) | page.evaluate("() => ({answers: window.__musicvaeLooper.answers.slice()})")
    arrivals = [a for a in record["arrivals"][since:] if a["kind"] != "cancel"]
    local = [a for a in arrivals if a["source"] == "bank"]
    assert local and local[0]["tag"] is None  # the nearest cell, before any answer
    assert bank_id(page, "cell:3,3") == local[0]["patternId"]
    assert bank_id(page, "cell:1,5") in [a["patternId"] for a in local]
    server_side = [a for a in arrivals if a["source"] == "server"]
    assert server_side and server_side[-1]["tag"] == tag  # the exact decode for where the puck stopped
    assert playing_next(page) == server_side[-1]["patternId"]
    verdicts = {x["tag"]: x["verdict"] for x in record["answers"]}
    assert all(verdicts[a["tag"]] == "confirm" for a in server_side), (server_side, record["answers"][-12:])
    page.wait_for_timeout(600)
    record = looper_log(page)
    start = [e for e in record["events"] if e["kind"] == "play"][-1]["audioTime"]
    check_continuous([e for e in record["log"] if e["audioTime"] >= start])  # no gap, the step clock ran on
    assert transport(record["events"]) == ["play"]
    for switch in record["switches"]:
        assert switch["pos"] % 16 == 0, switch  # every groove took over on a bar line


def slider_steps(page, steps: list[tuple], since: int) -> None:
    """Move sliders one arrow key at a time (``steps``: (slider locator, the bank key of the value it
    moves to, key)) while the loop plays: see :func:`local_steps`."""
    def step(slider, press):
        def act():
            slider.focus()
            slider.press(press)
        return act

    point = "window.__musicvaeLooper.nav.sliders.flatMap(s => s.points).find(p => p[1] === {key!r})[2]"
    local_steps(page, [(step(slider, press), key, point.format(key=key)) for slider, key, press in steps], since)


def local_steps(page, steps: list[tuple], since: int) -> None:
    """Inputs the looper answers from its bank (``steps``: (do the input, the bank key it switches to,
    a JS expression of the tag the rerun will answer with)) while the loop plays: each step's groove
    comes from the bank sent with the previous run, at once, before the rerun answers with that tag and
    the same groove; the answer changes nothing.  ``since``: the looper's arrivals before the first step."""
    tags, changed = [], []
    for act, key, tag_js in steps:
        page.wait_for_function("k => window.__musicvaeLooper.banked(k)", arg=key, timeout=TIMEOUT_MS)
        expected = bank_id(page, key)
        before = playing_next(page)
        tag = page.evaluate(f"() => {tag_js}")
        act()
        # that it came from the bank, before the server, is asserted below from the arrivals; this wait
        # only guards a hang (a 2 s limit flaked under load: speed is bench_app_live's to measure)
        page.wait_for_function("id => { const s = window.__musicvaeLooper.state(); "
                               "return (s.pendingId || s.scheduledId) === id; }", arg=expected, timeout=10_000)
        answered(page, tag)
        settle(page)
        assert playing_next(page) == expected  # the server's answer changed nothing
        tags.append(tag)
        if expected != before:
            changed.append(tag)
    assert changed, "no step changed the groove: nothing was measured"
    record = looper_log(page) | page.evaluate("() => ({answers: window.__musicvaeLooper.answers.slice()})")
    # (a step back to the groove still playing, before the one waiting took over, cancels that one)
    arrivals = [a for a in record["arrivals"][since:] if a["kind"] != "cancel" or a["source"] == "bank"]
    assert [(a["source"], a["tag"]) for a in arrivals] == [("bank", t) for t in changed], (
        arrivals, "before:", record["arrivals"][:since], "answers:", record["answers"], "events:", record["events"])
    for arrival in arrivals:  # each switch before the server's rerun answered it, which confirmed it
        # (a state visited twice: its first answer came before the second switch)
        answers = [x for x in record["answers"] if x["tag"] == arrival["tag"] and x["perfTime"] > arrival["perfTime"]]
        assert answers and answers[0]["verdict"] == "confirm" and answers[0]["patternId"] == arrival["patternId"]
    check_continuous([e for e in record["log"] if e["audioTime"] >= record["log"][0]["audioTime"]])
    assert transport(record["events"]) == ["play"]


def test_sample_temperature_switches_in_the_browser_before_the_rerun(page, server):
    """Sample's temperature slider: each step's groove (the first variation at the new temperature,
    as the server decodes it) comes from the bank sent with the previous run, before the rerun
    answers with the same tag and groove."""
    open_banked(page, server + "/?mode=sample&temperature=1.5&seed=3", "temperature:1.55")
    since = play(page)
    slider = page.get_by_role("slider", name="Temperature")
    slider_steps(page, [(slider, f"temperature:{v}", "ArrowRight") for v in ("1.55", "1.6", "1.65", "1.7")], since)
    # a copy of the slider drawn again with an old value (as a page being replaced leaves one a moment)
    # is no move of the user's: the groove stays (it would be one the server never answers)
    slider.focus()
    before = page.evaluate("() => [window.__musicvaeLooper.arrivals.length, window.__musicvaeLooper.expect.length]")
    page.evaluate("""() => {
        const box = document.createElement('div');
        box.className = 'st-key-temperature';
        box.innerHTML = '<input type="range" min="0.1" max="2" step="0.05" value="1.7" aria-valuetext="1.70">';
        document.body.appendChild(box);
        box.firstChild.value = '1.65';
        box.firstChild.setAttribute('aria-valuetext', '1.65');
    }""")
    page.wait_for_timeout(300)
    after = page.evaluate("() => [window.__musicvaeLooper.arrivals.length, window.__musicvaeLooper.expect.length]")
    assert after == before, (before, after)


def test_sample_similarity_switches_in_the_browser_before_the_rerun(page, server):
    """"Similar to a groove": the similarity slider's neighbours are banked beside the temperature's,
    with tags that name both values; steps on either switch at once and the rerun confirms."""
    page.goto(server + "/?mode=sample&temperature=1.5&seed=1")
    wait_player(page)
    settle(page)
    page.get_by_text("Similar to a groove").click()
    page.wait_for_function("() => window.__musicvaeLooper.banked('similarity:0.75')", timeout=TIMEOUT_MS)
    similarity = page.get_by_role("slider", name="Similarity")
    similarity.focus()
    similarity.press("Home")  # mostly random: the tiny test model's variations change with each step there
    page.wait_for_function("() => window.__musicvaeLooper.banked('similarity:0.05')", timeout=TIMEOUT_MS)
    settle(page)
    since = play(page)
    temperature = page.get_by_role("slider", name="Temperature")
    slider_steps(page, [(similarity, "similarity:0.05", "ArrowRight"), (similarity, "similarity:0.1", "ArrowRight"),
                        (temperature, "temperature:1.55", "ArrowRight"), (similarity, "similarity:0.15", "ArrowRight"),
                        (similarity, "similarity:0.1", "ArrowLeft")], since)


def test_latent_temperature_switches_in_the_browser_before_the_rerun(page, server):
    """Latent's temperature slider is banked with the direction sliders (tags name every value):
    temperature steps and a direction step between them switch at once; the rerun confirms."""
    open_banked(page, server + "/?mode=latent&temperature=1.5&seed=3", "temperature:1.55")
    since = play(page)
    temperature = page.get_by_role("slider", name="Temperature")
    direction = page.locator("[class*='st-key-lat_']").first.get_by_role("slider")
    first = page.evaluate("() => window.__musicvaeLooper.nav.sliders.find(s => s.key.startsWith('lat_')).key")
    key = "lat_" + first.removeprefix("lat_").replace("-", ":", 1)
    slider_steps(page, [(temperature, "temperature:1.55", "ArrowRight"), (temperature, "temperature:1.6", "ArrowRight"),
                        (direction, f"{key}:0.1", "ArrowRight"), (temperature, "temperature:1.65", "ArrowRight"),
                        (temperature, "temperature:1.6", "ArrowLeft")], since)


def test_interpolate_strip_switches_in_the_browser_before_the_rerun(page, server):
    """The Interpolate strip is a one-row bank: the arrow keys (up and down too) and clicks on its
    steps switch at once; the rerun answers with the same step."""
    open_banked(page, server + "/?mode=interpolate", "cell:1,3")
    steps = page.evaluate("() => window.__musicvaeLooper.nav.cols")
    since = play(page)
    start = page.evaluate("() => window.__musicvaeLooper.cell[1]")
    expected = []
    for key, col in (("ArrowRight", start + 1), ("ArrowDown", start + 2), ("ArrowUp", start + 1)):
        page.locator("h2").first.click()
        page.keyboard.press(key)
        assert playing_next(page) == bank_id(page, f"cell:1,{col}")  # at once, from the bank
        expected.append(f"cell:1,{col}")
        answered(page, f"cell:1,{col}")
        settle(page)
    chart = page.locator(".st-key-interp_strip .js-plotly-plot")
    click_cell(page, chart, 1, steps, 1, steps)
    answered(page, f"cell:1,{steps}")
    settle(page)
    expected.append(f"cell:1,{steps}")
    assert playing_next(page) == bank_id(page, f"cell:1,{steps}")
    record = looper_log(page) | page.evaluate("() => ({answers: window.__musicvaeLooper.answers.slice()})")
    arrivals = [a for a in record["arrivals"][since:] if a["kind"] != "cancel"]
    ids = [bank_id(page, tag) for tag in expected]
    changes = [tag for i, tag in enumerate(expected) if i == 0 or ids[i] != ids[i - 1]]
    assert [(a["source"], a["tag"]) for a in arrivals] == [("bank", t) for t in changes], arrivals
    for arrival in arrivals:  # (a step visited twice: its first answer came before the second switch)
        answers = [x for x in record["answers"] if x["tag"] == arrival["tag"] and x["perfTime"] > arrival["perfTime"]]
        assert answers and answers[0]["verdict"] == "confirm" and answers[0]["patternId"] == arrival["patternId"]
    assert transport(record["events"]) == ["play"]
    # the "Step to hear" slider is banked too (its range input's value is the step's index), and an
    # arrow key after it goes on from the step it chose
    since = page.evaluate("() => window.__musicvaeLooper.arrivals.length")
    slider = page.get_by_role("slider", name="Step to hear")
    slider_steps(page, [(slider, f"cell:1,{steps - 1}", "ArrowLeft"), (slider, f"cell:1,{steps - 2}", "ArrowLeft")],
                 since)
    page.locator("h2").first.click()
    page.keyboard.press("ArrowLeft")
    assert playing_next(page) == bank_id(page, f"cell:1,{steps - 3}")  # at once, from the bank
    answered(page, f"cell:1,{steps - 3}")


def test_new_seed_switches_in_the_browser_before_the_rerun(page, server):
    """N and the "New seed" button: the next seed's groove (decoded ahead, in the bank as "next") plays
    at once, in Sample and in Latent; the rerun confirms with the same groove."""
    def key_n():
        page.locator("h2").first.click()  # the focus off any widget: N is the looper's
        page.keyboard.press("n")

    def button():
        page.get_by_role("button", name="New seed").click()

    tag = "window.__musicvaeLooper.nav.next[1]"
    open_banked(page, server + "/?mode=sample&temperature=1.5&seed=3", "next")
    since = play(page)
    local_steps(page, [(key_n, "next", tag), (button, "next", tag), (key_n, "next", tag)], since)
    open_banked(page, server + "/?mode=latent&temperature=1.5&seed=3", "next")
    since = play(page)
    local_steps(page, [(button, "next", tag), (key_n, "next", tag)], since)
