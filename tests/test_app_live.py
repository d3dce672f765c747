"""The playground's one-looper screens through AppTest: presentation mode, the URL, the issue-16 bugs."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

sys.path.insert(0, str(Path(__file__).resolve().parent))
from test_app import APP, build_tiny_models, gmd_files, loopers, playing, roll_specs, run_ok, switch_mode, texts  # noqa: E402,I001


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    return build_tiny_models(tmp_path_factory.getbasetemp() / "tiny-models")  # the same folder as test_app's


@pytest.fixture
def app(tiny_models, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MUSICVAE_CHECKPOINTS_DIR", str(tiny_models))
    return AppTest.from_file(APP, default_timeout=120)


def test_every_mode_has_one_looper_and_no_audio_player(app):
    at = run_ok(app)
    for mode in ("sample", "latent", "interpolate", "grid"):
        switch_mode(at, mode)
        assert len(loopers(at)) == 1 and not at.get("audio"), mode
        assert [b for b in at.button if str(b.key).startswith("play_")], mode  # each roll's play toggle


def test_interpolation_strip_never_wraps(app):
    from musicvae.media.plots import decode_typed

    app.query_params.update({"mode": "interpolate", "steps": "9"})
    at = run_ok(app)
    strip = next(c for c in at.get("plotly_chart") if "click to play it" in c.proto.spec)
    spec = json.loads(strip.proto.spec)
    z = decode_typed(spec["data"][0]["z"])
    assert z.shape == (9, 9 * 65 - 1)  # one row of 9 rolls (64 steps + a gap each)
    assert [a["text"] for a in spec["layout"]["annotations"]] == ["A", "2", "3", "4", "5", "6", "7", "8", "B"]


def test_latent_raw_z_added_one_at_a_time(app):
    at = run_ok(app)
    switch_mode(at, "latent")
    options = at.multiselect(key="latent_dirs").options
    assert not [o for o in options if "(raw)" in o]  # no 256 raw dimensions to flood the type-ahead
    at.number_input(key="raw_z").set_value(0)
    at.button(key="raw_z_add").click()
    run_ok(at)
    assert at.multiselect(key="latent_dirs").value == ["pc:0", "pc:1", "pc:2", "z:0"]
    assert at.slider(key="lat_z:0")


def test_one_velocity_grooves_have_no_velocity_scale():
    import numpy as np

    from musicvae.media.plots import piano_roll
    from musicvae.pattern import DrumPattern

    hits = np.zeros((64, 9), dtype=bool)
    hits[::4, 0] = True
    assert not piano_roll(DrumPattern(hits)).data[0].showscale  # every hit at 80: a scale says nothing
    velocities = np.where(hits, 40, 0).astype(np.uint8)
    velocities[::8, 0] = 120
    assert piano_roll(DrumPattern(hits, velocities)).data[0].showscale


def test_upload_window_label_and_link_notice(app):
    good = gmd_files(1)[0]
    at = run_ok(app)
    at.file_uploader(key="uploads").set_value([(good.name, good.read_bytes(), "audio/midi")])
    run_ok(at)
    window = next(s for s in at.selectbox if str(s.key).startswith("win_"))
    assert window.label == f"Window of {good.name}"  # plain text, no markdown escapes
    assert "cannot carry" in texts(at.caption) and "plays back" in texts(at.caption)
    switch_mode(at, "interpolate")
    assert "cannot carry" in texts(at.caption)
    at.button(key="play_src_b").click()
    run_ok(at)
    assert playing(at)["roll"] == "roll_src_b"


def test_scene_in_the_url(app):
    app.query_params.update({"mode": "latent", "lat": "pc:1:1.5;z:7:-2", "repeats": "3", "switch": "beat",
                             "model": "latent:sample", "cell": "2,4"})
    at = run_ok(app)
    state = at.session_state
    assert at.multiselect(key="latent_dirs").value == ["pc:1", "z:7"]
    assert at.slider(key="lat_pc:1").value == 1.5 and at.slider(key="lat_z:7").value == -2.0
    assert (state["repeats"], state["switch_at"], state["model_latent"]) == (3, "beat", "sample")
    assert (state["grid_row"], state["grid_col"]) == (2, 4)
    assert playing(at)["switch_at"] == "beat"
    assert at.query_params["lat"] in ("pc:1:1.5;z:7:-2", ["pc:1:1.5;z:7:-2"])
    at.slider(key="lat_pc:1").set_value(0.5)
    run_ok(at)
    assert "pc:1:0.5" in str(at.query_params["lat"])


@pytest.mark.parametrize("mode", ["sample", "latent", "interpolate", "grid"])
def test_presentation_mode_hides_developer_figures(app, mode):
    app.query_params.update({"present": "1", "mode": mode})
    at = run_ok(app)
    shown = texts(at.caption) + texts(at.markdown) + "\n".join(str(s.label) for s in at.slider)
    for developer in ("measured ρ", "PC = principal direction", "own reconstruction", "ms ·", "hit F1"):
        assert developer not in shown, (mode, developer)
    assert not [s for s in at.selectbox if s.key in ("grid_row", "grid_col")]
    assert len(loopers(at)) == 1


def test_grid_cell_brings_the_looper_back_from_a_corner(app):
    at = run_ok(app)
    switch_mode(at, "grid")
    at.button(key="play_corner_src_1").click()
    run_ok(at)
    assert playing(at)["roll"] == "roll_corner_src_1"
    at.selectbox(key="grid_col").set_value(5)
    run_ok(at)
    assert playing(at)["roll"] == "roll_grid_cell" and any("row 1, column 5" in s for s in roll_specs(at))


def test_grid_puck_and_path_in_apptest(app):
    """The pad's callbacks (what the browser sends on a drag or a drawn path) drive the looper."""
    from musicvae.app.pad import resample
    from musicvae.latent.morph import corner_weights as mix_weights

    assert mix_weights(0.0, 0.0).tolist() == [1, 0, 0, 0] and mix_weights(1.0, 1.0).tolist() == [0, 0, 0, 1]
    assert resample([[0, 0], [1, 0]], 5) == [(0.0, 0.0), (0.25, 0.0), (0.5, 0.0), (0.75, 0.0), (1.0, 0.0)]
    app.query_params.update({"mode": "grid", "puck": "0.3,0.8"})
    at = run_ok(app)
    assert at.session_state["grid_source"] == "puck" and "puck at 0.30 across, 0.80 down" in playing(at)["label"]
    assert "puck=0.30,0.80" in "&".join(f"{k}={v}" for k, v in at.query_params.items()) or \
        at.query_params["puck"] in ("0.30,0.80", ["0.30,0.80"])
    at.session_state["grid_path"] = [[0.0, 0.0], [1.0, 1.0]]
    at.session_state["grid_source"] = "path"
    run_ok(at)
    data = playing(at)
    assert data["queue"] and len(data["queue"]["patterns"]) == 8 and data["roll"] == ""
    at.selectbox(key="grid_col").set_value(2)  # a cell again: no queue
    run_ok(at)
    assert playing(at)["queue"] is None and at.session_state["grid_source"] == "cell"


def test_grid_corner_roll_click_toggles_a_hit(app):
    from musicvae.app import grid

    at = run_ok(app)
    switch_mode(at, "grid")
    before = at.session_state["corner_0"]
    # what Streamlit stores for a click on the corner roll's invisible cell markers: (step, class)
    at.session_state["roll_corner_src_0"] = {"selection": {"points": [{"customdata": [5, 7]}]}}
    assert grid._edit_corner  # (the handler the next run calls)
    run_ok(at)
    assert at.session_state["corner_0"] == "edit:0" != before
    edited = at.session_state["pinned"]["edit:0"][1]
    from musicvae.app.core import load_presets

    original = {f"preset:{p.key}": p.pattern for p in load_presets()}[before]
    assert edited.hits[5, 7] != original.hits[5, 7] and (edited.hits != original.hits).sum() == 1
    assert "cannot carry" in texts(at.caption)


def test_interpolate_walk_the_morph_hands_the_looper_a_queue(app):
    app.query_params.update({"mode": "interpolate", "steps": "5"})
    at = run_ok(app)
    assert playing(at)["queue"] is None
    at.toggle(key="interp_follow").set_value(True)
    run_ok(at)
    assert len(playing(at)["queue"]["patterns"]) == 5


def test_a_morph_between_two_uploads_starts_and_ends_on_them_exactly(app):
    """Anchored codes: the morph's first and last steps are the uploads' own hits (the tiny model alone
    reproduces neither), and so are the grid's corner cells."""
    import numpy as np

    from musicvae.midi.loader import load_grooves

    files = gmd_files(2)
    at = run_ok(app)
    at.file_uploader(key="uploads").set_value([(f.name, f.read_bytes(), "audio/midi") for f in files])
    run_ok(at)
    switch_mode(at, "interpolate")
    steps = int(at.session_state["steps"])
    bank = playing(at)["bank"]["patterns"]
    for f, key in zip(files, ("cell:1,1", f"cell:1,{steps}")):
        loaded = load_grooves(f.read_bytes(), f.name)
        hits = loaded.windows[loaded.default_index].hits
        assert sorted((e[0], e[1]) for e in bank[key]["events"]) == sorted(zip(*np.nonzero(hits)))
