"""The looper's bank (issue 16, "a live instrument"): the Grid sends every cell's groove once, so the
browser switches on the input event and the rerun only confirms.

The data side only (no browser): :func:`musicvae.app.player.bank_data`, what the Grid hands the looper
through AppTest (every cell, the main groove is the bank's own, the tag, sent once per content, the
``cell:r,c`` command, humanized cells).  The browser side is ``tests/test_player_bank_browser.py``.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_app import APP, playing, run_ok, switch_mode  # noqa: E402,I001

from musicvae.app.player import bank_data, pattern_data  # noqa: E402
from musicvae.pattern import DrumPattern  # noqa: E402


def _grooves(count: int, seed: int = 0) -> list[DrumPattern]:
    rng = np.random.default_rng(seed)
    return [DrumPattern(rng.random((64, 9)) < 0.1, rng.integers(30, 127, (64, 9)).astype(np.uint8))
            for _ in range(count)]


def test_bank_data_is_every_groove_by_key_with_a_content_id():
    grooves = _grooves(9)
    bank = {f"cell:{i // 3 + 1},{i % 3 + 1}": g for i, g in enumerate(grooves)}
    payload = bank_data(bank)
    assert list(payload["patterns"]) == list(bank)
    for key, groove in bank.items():
        assert payload["patterns"][key] == pattern_data(groove)  # exactly what looper() sends as the groove
    assert len(payload["id"]) == 12
    copies = {k: DrumPattern(g.hits.copy(), g.velocities.copy()) for k, g in bank.items()}
    again = bank_data(copies)
    assert again["id"] == payload["id"] and again is payload  # the same content: built once
    louder = dict(copies)
    louder["cell:2,2"] = DrumPattern(copies["cell:2,2"].hits, np.full((64, 9), 127, dtype=np.uint8))
    assert bank_data(louder)["id"] != payload["id"]  # a new feel is a new bank
    swapped = dict(copies)
    swapped["cell:1,1"], swapped["cell:1,2"] = copies["cell:1,2"], copies["cell:1,1"]
    assert bank_data(swapped)["id"] != payload["id"]  # the same grooves at other keys too
    offsets = np.zeros((64, 9), dtype=np.float32)
    offsets[tuple(np.argwhere(copies["cell:3,3"].hits)[0])] = 0.3  # on a hit: offsets of silence are dropped
    felt = dict(copies)
    felt["cell:3,3"] = DrumPattern(copies["cell:3,3"].hits, copies["cell:3,3"].velocities, offsets=offsets)
    assert bank_data(felt)["id"] != payload["id"]


@pytest.fixture
def app(feel_models, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MUSICVAE_CHECKPOINTS_DIR", str(feel_models))
    return AppTest.from_file(APP, default_timeout=120)


def _check_bank(data: dict, bank: dict, n: int, row: int, col: int) -> None:
    assert data["bank_id"] == bank["id"] and len(bank["patterns"]) == n * n
    assert set(bank["patterns"]) == {f"cell:{r},{c}" for r in range(1, n + 1) for c in range(1, n + 1)}
    assert data["tag"] == f"cell:{row},{col}"
    assert data["nav"] == {"n": n, "row": row, "col": col, "chart": "grid_chart", "roll": "roll_grid_cell",
                           "label": "♪ grid cell row {row}, column {col}"}
    assert data["label"] == f"♪ grid cell row {row}, column {col}"  # what the browser writes from nav["label"]
    assert data["pattern"] == bank["patterns"][f"cell:{row},{col}"]  # the browser's early switch is the groove


def test_grid_sends_its_cells_once_and_plays_the_banks_groove(app):
    at = run_ok(app)
    switch_mode(at, "grid")
    data = playing(at)
    bank = data["bank"]
    assert bank is not None
    _check_bank(data, bank, 5, 1, 1)
    at.selectbox(key="grid_col").set_value(3)
    run_ok(at)
    again = playing(at)
    assert again["bank"] is None and again["bank_id"] == bank["id"]  # sent once: a rerun carries the id only
    _check_bank(again, bank, 5, 1, 3)
    at.session_state["looper"] = {**(at.session_state["looper"] or {}), "bank_missing": bank["id"]}
    run_ok(at)  # the browser says it lacks it (a reload): sent again, once
    assert playing(at)["bank"] == bank
    run_ok(at)
    assert playing(at)["bank"] is None
    at.button(key="play_corner_src_1").click()
    run_ok(at)
    assert playing(at)["tag"] == "play:corner_src_1"  # not a cell: a browser switch is no answer to it


def test_cell_command_moves_the_cell_and_puck_tags(app):
    from musicvae.app import grid

    at = run_ok(app)
    switch_mode(at, "grid")
    calls = []

    def command(value):
        calls.append(value)
        grid._command(value)

    # the command the looper sends after switching from its bank ("cell:r,c", absolute: a lost
    # trigger cannot leave the server a cell behind)
    at.session_state["grid_row"], at.session_state["grid_col"] = 1, 1
    import streamlit as st

    with pytest.MonkeyPatch.context() as patch:
        state: dict = {"grid_n": 5, "grid_row": 1, "grid_col": 1}
        patch.setattr(st, "session_state", state)
        command("cell:4,2")
        assert (state["grid_row"], state["grid_col"], state["grid_source"]) == (4, 2, "cell")
        command("cell:9,0")  # clamped into the grid
        assert (state["grid_row"], state["grid_col"]) == (5, 1)
        command("cell:x")  # garbage: nothing moves
        assert (state["grid_row"], state["grid_col"]) == (5, 1)
        command("up")
        assert (state["grid_row"], state["grid_col"]) == (4, 1)
    at.session_state["grid_puck"] = [0.25, 0.5]
    at.session_state["grid_source"] = "puck"
    run_ok(at)
    data = playing(at)
    assert data["tag"] == "puck:0.250,0.500"  # as the pad announced its position to the looper
    assert data["pattern"]["id"] != data.get("bank_id")
    assert data["nav"]["n"] == 5


def test_humanized_bank_holds_the_grooves_the_server_sends(app):
    app.query_params.update({"mode": "grid", "humanize": "1", "cell": "2,3"})
    at = run_ok(app)
    assert at.session_state["humanize"]
    data = playing(at)
    bank = data["bank"]
    _check_bank(data, bank, 5, 2, 3)
    velocities = {e[2] for p in bank["patterns"].values() for e in p["events"]}
    offsets = {e[3] for p in bank["patterns"].values() for e in p["events"]}
    assert len(velocities) > 3 and offsets != {0.0}  # the cells carry the groove model's feel
    at.selectbox(key="grid_row").set_value(4)
    run_ok(at)
    _check_bank(playing(at), bank, 5, 4, 3)  # the server's groove for the new cell is the banked one
    at.toggle(key="humanize").set_value(False)
    run_ok(at)
    plain = playing(at)
    assert plain["bank"] is not None and plain["bank_id"] != bank["id"]  # off: another bank, sent
    assert {e[3] for p in plain["bank"]["patterns"].values() for e in p["events"]} == {0.0}
    _check_bank(plain, plain["bank"], 5, 4, 3)


def test_slider_bank_holds_the_neighbouring_values():
    from musicvae.app.stage import slider_bank

    made = []

    def groove_at(v):
        made.append(v)
        return _grooves(1, seed=int(round(v * 100)))[0]

    bank, nav, tag = slider_bank("temperature", 0.5, 0.05, 0.1, 2.0, groove_at, salt="seed 7")
    assert made == [0.45, 0.5, 0.55]  # no float drift: 0.5 + 0.05 is 0.55
    assert list(bank) == ["temperature:0.45", "temperature:0.5", "temperature:0.55"]
    assert tag == "temperature=0.5|seed 7"
    assert nav == {"sliders": [{"key": "temperature", "points": [
        [0.45, "temperature:0.45", "temperature=0.45|seed 7"], [0.5, "temperature:0.5", "temperature=0.5|seed 7"],
        [0.55, "temperature:0.55", "temperature=0.55|seed 7"]]}]}
    bank, nav, tag = slider_bank("temperature", 2.0, 0.05, 0.1, 2.0, groove_at)  # at the end: one neighbour
    assert list(bank) == ["temperature:1.95", "temperature:2"] and tag == "temperature=2"
    bank, nav, _ = slider_bank("groove", 0, 1, 0, 200, groove_at)
    assert [p[0] for p in nav["sliders"][0]["points"]] == [0, 1]


def _point(data: dict, slider: str, value: float) -> list:
    """The nav point [value, bank key, tag] of ``slider`` (its .st-key- class name) at ``value``."""
    found = [p for s in data["nav"]["sliders"] if s["key"] == slider for p in s["points"] if abs(p[0] - value) < 1e-9]
    assert len(found) == 1, (slider, value, data["nav"])
    return found[0]


def _step_matches_the_bank(at, data: dict, slider: str, value: float, move) -> dict:
    """Move a slider to a banked value: the rerun plays the banked groove, with the point's tag."""
    _, key, tag = _point(data, slider, value)
    banked = (data["bank"] or {}).get("patterns", {}).get(key) or _BANKED[data["bank_id"]][key]
    move()
    run_ok(at)
    after = playing(at)
    assert after["pattern"] == banked and after["tag"] == tag  # exactly the groove the browser switched to
    return after


_BANKED: dict[str, dict] = {}


def _one_groove_per_tag(data: dict) -> None:
    """Banks of several sliders merged: a tag never names two grooves (the browser would take an
    answer about one for a confirmation of the other), and the current value's tag is the run's."""
    patterns = (data["bank"] or {}).get("patterns") or _BANKED[data["bank_id"]]
    grooves: dict[str, set] = {}
    for slider in data["nav"]["sliders"]:
        for _, key, tag in slider["points"]:
            grooves.setdefault(tag, set()).add(patterns[key]["id"])
    assert all(len(ids) == 1 for ids in grooves.values()), grooves
    assert grooves[data["tag"]] == {data["pattern"]["id"]}
    current = {tag for slider in data["nav"]["sliders"] for _, _, tag in slider["points"] if tag == data["tag"]}
    assert current == {data["tag"]}


def _remember(data: dict) -> dict:
    if data.get("bank"):
        _BANKED[data["bank_id"]] = data["bank"]["patterns"]
    return data


@pytest.mark.parametrize("humanize", [False, True])
def test_sample_banks_the_played_variation_at_the_neighbouring_temperatures(app, humanize):
    app.query_params.update({"mode": "sample", "humanize": "1" if humanize else "0"})
    at = run_ok(app)
    assert bool(at.session_state["humanize"]) == humanize
    data = _remember(playing(at))
    assert set(data["bank"]["patterns"]) == {"temperature:0.45", "temperature:0.5", "temperature:0.55", "next"}
    assert data["pattern"] == data["bank"]["patterns"]["temperature:0.5"] and data["nav"]["roll"] == "roll_sample_0"
    assert data["tag"] == _point(data, "temperature", 0.5)[2] and data["tag"].startswith("temperature=0.5|sample_0")
    offsets = {e[3] for p in data["bank"]["patterns"].values() for e in p["events"]}
    assert (offsets != {0.0}) == humanize  # played with feel exactly when the switch is on
    data = _remember(_step_matches_the_bank(at, data, "temperature", 0.55,
                                            lambda: at.slider(key="temperature").set_value(0.55)))
    assert {k for k in _BANKED[data["bank_id"]]} == {"temperature:0.5", "temperature:0.55", "temperature:0.6", "next"}
    at.button(key="play_sample_2").click()  # another variation plays: the bank follows it
    run_ok(at)
    data = _remember(playing(at))
    assert data["nav"]["roll"] == "roll_sample_2" and data["tag"].startswith("temperature=0.55|sample_2")
    data = _step_matches_the_bank(at, data, "temperature", 0.5, lambda: at.slider(key="temperature").set_value(0.5))
    assert at.session_state["playsel_sample"] == "sample_2"


@pytest.mark.parametrize("humanize", [False, True])
def test_sample_banks_the_similarity_slider_beside_the_temperature(app, humanize):
    # (hot and mostly random: the tiny test model's variations change with each similarity step there)
    app.query_params.update({"mode": "sample", "humanize": "1" if humanize else "0", "temperature": "1.5"})
    at = run_ok(app)
    at.toggle(key="similar_on").set_value(True)
    run_ok(at)
    at.slider(key="similarity").set_value(0.1)
    run_ok(at)
    data = _remember(playing(at))
    similarity = 0.1
    near = (0.05, 0.1, 0.15)
    bank = data["bank"]["patterns"]
    assert set(bank) == {f"temperature:{t:g}" for t in (1.45, 1.5, 1.55)} | {f"similarity:{s:g}" for s in near} | {
        "next"}
    assert [s["key"] for s in data["nav"]["sliders"]] == ["temperature", "similarity"]
    assert data["pattern"] == bank[f"similarity:{similarity:g}"] == bank["temperature:1.5"]
    assert data["nav"]["roll"] == "roll_sample_0"
    assert len({bank[f"similarity:{s:g}"]["id"] for s in near}) == 3  # each neighbour is another groove
    _one_groove_per_tag(data)
    offsets = {e[3] for p in bank.values() for e in p["events"]}
    assert (offsets != {0.0}) == humanize  # played with feel exactly when the switch is on
    seen = {data["pattern"]["id"]}
    for slider, value in (("similarity", near[2]), ("temperature", 1.55), ("similarity", round(near[2] + 0.05, 2)),
                          ("similarity", near[2])):
        data = _remember(_step_matches_the_bank(at, data, slider, value,
                                                lambda s=slider, v=value: at.slider(key=s).set_value(v)))
        _one_groove_per_tag(data)
        seen.add(data["pattern"]["id"])
        now = value if slider == "similarity" else near[2]
        assert f"temperature={at.session_state['temperature']:g},similarity={now:g}|" in data["tag"]
    assert len(seen) > 1  # steps that change the groove: the bank had them right
    at.button(key="play_sample_1").click()  # another variation plays: both banks follow it
    run_ok(at)
    data = _remember(playing(at))
    assert data["nav"]["roll"] == "roll_sample_1" and "|sample_1 of 3" in data["tag"]
    data = _step_matches_the_bank(at, data, "similarity", similarity,
                                  lambda: at.slider(key="similarity").set_value(similarity))
    assert at.session_state["playsel_sample"] == "sample_1"
    at.button(key="play_sim_src").click()  # the groove varied: no slider changes it, nothing is banked
    run_ok(at)
    assert "bank_id" not in playing(at)


@pytest.mark.parametrize("humanize", [False, True])
def test_latent_banks_every_sliders_neighbours(app, humanize):
    # (the tiny test model's grooves change little along a direction: a hot decode shows each step)
    app.query_params.update({"mode": "latent", "humanize": "1" if humanize else "0", "temperature": "2"})
    at = run_ok(app)
    data = _remember(playing(at))
    sliders = [s["key"] for s in data["nav"]["sliders"]]
    assert sliders == ["lat_pc-0", "lat_pc-1", "lat_pc-2", "temperature"]  # Streamlit's .st-key- class of each
    bank = data["bank"]["patterns"]
    assert set(bank) == {f"lat_pc:{i}:{v:g}" for i in range(3) for v in (-0.1, 0, 0.1)} | {
        "temperature:1.95", "temperature:2", "next"}  # (2 is the temperature's end; next: N's groove)
    _one_groove_per_tag(data)
    assert len({p["id"] for p in bank.values()}) > 1  # the current groove, and its neighbours
    offsets = {e[3] for p in bank.values() for e in p["events"]}
    assert (offsets != {0.0}) == humanize
    before = data["pattern"]["id"]
    data = _remember(_step_matches_the_bank(at, data, "lat_pc-0", -0.1,
                                            lambda: at.slider(key="lat_pc:0").set_value(-0.1)))
    assert data["pattern"]["id"] != before  # a step that changes the groove: the bank had it right
    data = _remember(_step_matches_the_bank(at, data, "lat_pc-1", 0.1,
                                            lambda: at.slider(key="lat_pc:1").set_value(0.1)))
    assert [s["key"] for s in data["nav"]["sliders"]] == ["lat_pc-1", "lat_pc-0", "lat_pc-2", "temperature"]
    assert len(_BANKED[data["bank_id"]]) == 12  # 4 + 1 new neighbours, the moved slider's, N's: all banked at once
    _one_groove_per_tag(data)
    data = _remember(_step_matches_the_bank(at, data, "lat_pc-0", -0.2,
                                            lambda: at.slider(key="lat_pc:0").set_value(-0.2)))
    seen = {data["pattern"]["id"]}
    for value in (1.95, 1.9):  # the temperature slider: its neighbours at the sliders' values, then moved first
        data = _remember(_step_matches_the_bank(at, data, "temperature", value,
                                                lambda v=value: at.slider(key="temperature").set_value(v)))
        assert [s["key"] for s in data["nav"]["sliders"]][0] == "temperature"
        assert len(_BANKED[data["bank_id"]]) == 13 and f" T={value:g}|" in data["tag"]
        _one_groove_per_tag(data)
        seen.add(data["pattern"]["id"])
    assert len(seen) > 1  # a temperature step that changes the groove
    _step_matches_the_bank(at, data, "lat_pc-1", 0.2, lambda: at.slider(key="lat_pc:1").set_value(0.2))


def test_latent_temperature_is_not_banked_while_the_starting_groove_plays(app):
    app.query_params.update({"mode": "latent"})
    at = run_ok(app)
    at.session_state["latent_base"] = at.session_state["sim_base"]  # a preset: the starting groove, with its toggle
    run_ok(at)
    assert "temperature" in [s["key"] for s in playing(at)["nav"]["sliders"]]
    at.button(key="play_latent_src").click()
    run_ok(at)
    data = playing(at)
    assert data["tag"] == "play:latent_src"  # the temperature leaves it playing: a switch would be overridden
    assert [s["key"] for s in data["nav"]["sliders"]] == ["lat_pc-0", "lat_pc-1", "lat_pc-2"]


@pytest.mark.parametrize("humanize", [False, True])
def test_interpolate_banks_its_strip_as_a_one_row_grid(app, humanize):
    app.query_params.update({"mode": "interpolate", "humanize": "1" if humanize else "0"})
    at = run_ok(app)
    data = _remember(playing(at))
    steps = int(at.session_state["steps"])
    bank = data["bank"]["patterns"]
    assert list(bank) == [f"cell:1,{i}" for i in range(1, steps + 1)]
    step = int(at.session_state["interp_step"])
    assert data["nav"] == {"n": steps, "rows": 1, "cols": steps, "row": 1, "col": step, "chart": "interp_strip",
                           "roll": "roll_interp_view", "sliders": [{"key": "interp_step", "points": [
                               [i - 1, f"cell:1,{i}", f"cell:1,{i}"] for i in range(1, steps + 1)]}]}
    assert data["tag"] == f"cell:1,{step}" and data["pattern"] == bank[f"cell:1,{step}"]
    model_made = [e[3] for p in list(bank.values())[1:-1] for e in p["events"]]
    assert (set(model_made) != {0.0}) == humanize  # the strip's steps, played with feel when on
    at.select_slider(key="interp_step").set_value(3)
    run_ok(at)
    after = playing(at)
    assert after["bank"] is None and after["bank_id"] == data["bank_id"]  # the same strip: not sent again
    assert after["tag"] == "cell:1,3" and after["pattern"] == bank["cell:1,3"]
    at.toggle(key="interp_follow").set_value(True)
    run_ok(at)
    assert "bank_id" not in playing(at)  # walking the morph: the strip's steps play one per bar


def test_interpolate_cell_command_moves_the_step():
    import streamlit as st

    from musicvae.app import interpolate

    with pytest.MonkeyPatch.context() as patch:
        state: dict = {"steps": 7, "interp_step": 1}
        patch.setattr(st, "session_state", state)
        interpolate._command("cell:1,5")
        assert state["interp_step"] == 5 and state["playsel_interpolate"] == interpolate.MAIN
        interpolate._command("cell:1,99")  # clamped into the strip
        assert state["interp_step"] == 7
        interpolate._command("cell:x")  # garbage: nothing moves
        assert state["interp_step"] == 7
        interpolate._command("left")
        assert state["interp_step"] == 6


def _next_matches_the_bank(at, data: dict) -> dict:
    """N / "New seed": the rerun plays exactly the bank's ``next`` groove, with nav.next's tag, at the
    seed drawn ahead; the new bank holds the seed after (another one)."""
    key, tag, button = data["nav"]["next"]
    assert button == "new_seed_btn"  # the class .st-key-new_seed_btn of the button the browser watches
    banked = (data["bank"] or {}).get("patterns", {}).get(key) or _BANKED[data["bank_id"]][key]
    upcoming = at.session_state["next_seed"]
    at.button(key="new_seed_btn").click()
    run_ok(at)
    after = _remember(playing(at))
    assert at.session_state["seed"] == upcoming
    assert after["pattern"] == banked and after["tag"] == tag
    assert at.session_state["next_seed"] != upcoming and after["nav"]["next"][1] != tag
    return after


@pytest.mark.parametrize("humanize", [False, True])
def test_new_seed_is_banked_in_sample_and_latent(app, humanize):
    app.query_params.update({"mode": "sample", "humanize": "1" if humanize else "0", "temperature": "1.5"})
    at = run_ok(app)
    data = _remember(playing(at))
    seen = {data["pattern"]["id"]}
    for _ in range(2):
        data = _next_matches_the_bank(at, data)
        seen.add(data["pattern"]["id"])
    assert len(seen) == 3  # each seed another groove: the bank had each one right
    at.button(key="play_sample_1").click()  # another variation: N brings that variation at the next seed
    run_ok(at)
    data = _remember(playing(at))
    assert "|sample_1 of 3" in data["nav"]["next"][1]
    data = _next_matches_the_bank(at, data)
    at.toggle(key="similar_on").set_value(True)  # "Similar to a groove": the variation of its code at that seed
    run_ok(at)
    data = _remember(playing(at))
    assert data["nav"]["next"][1].startswith("temperature=1.5,similarity=")
    _next_matches_the_bank(at, data)
    switch_mode(at, "latent")
    data = _remember(playing(at))
    before = data["pattern"]["id"]
    data = _next_matches_the_bank(at, data)
    assert data["pattern"]["id"] != before  # a random code from the next seed: another groove
    at.session_state["latent_base"] = at.session_state["sim_base"]  # a preset: the seed only reseeds the decode
    run_ok(at)
    _next_matches_the_bank(at, _remember(playing(at)))
    at.button(key="play_latent_src").click()  # the starting groove plays: "New seed" leaves it so, nothing banked
    run_ok(at)
    assert "next" not in playing(at)["nav"]
