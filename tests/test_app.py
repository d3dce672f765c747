"""The Streamlit playground through ``streamlit.testing.v1.AppTest``: every mode, uploads, URL state.

A tiny real model (the ``tiny-hier-drums_4bar`` config trained for a few steps on six GMD files)
is built once per session and served through ``MUSICVAE_CHECKPOINTS_DIR``.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from musicvae.data.sources import default_gmd_dir

ROOT = Path(__file__).resolve().parent.parent
APP = str(ROOT / "streamlit_app.py")
GROOVE = default_gmd_dir()
MODEL_NAMES = ("hier-drums_4bar_small_aug", "hier-drums_4bar_small_hikl_aug")


def gmd_files(n: int) -> list[Path]:
    files = sorted((GROOVE / "drummer1" / "session1").glob("*_beat_4-4.mid"))
    if len(files) < n:
        pytest.skip(f"GMD not found under {GROOVE}")
    return files[:n]


def build_tiny_models(base: Path) -> Path:
    """A checkpoints folder with both shipped names holding one tiny trained model (+ directions)."""
    out = base / "checkpoints"
    if all((out / name / "model.safetensors").exists() for name in MODEL_NAMES):
        return out
    import torch

    from musicvae.api import TrainedModel
    from musicvae.configs import get_config
    from musicvae.data.prepare import prepare
    from musicvae.data.sources import PrepareSettings
    from musicvae.data.storage import load_split
    from musicvae.latent.directions import compute_directions, save_directions
    from musicvae.training.checkpoint import resolve_model_dir
    from musicvae.training.loop import train

    midi = base / "midi"
    midi.mkdir(parents=True, exist_ok=True)
    for path in gmd_files(6):
        shutil.copy(path, midi / path.name)
    prepare(midi, base / "data", PrepareSettings(), num_workers=1, progress=False)
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        torch.manual_seed(0)
        train(get_config("tiny-hier-drums_4bar"), base / "run", base / "data", 60, checkpoint_secs=1e9, progress=False)
    finally:
        torch.set_num_threads(threads)
    folder = resolve_model_dir(base / "run")
    directions = compute_directions(TrainedModel.load(folder), load_split(base / "data", "train").tokens, k=8)
    for name in MODEL_NAMES:
        (out / name).mkdir(parents=True, exist_ok=True)
        for file in ("model.safetensors", "config.json"):
            shutil.copy(folder / file, out / name / file)
        save_directions(out / name, directions)
    (out / MODEL_NAMES[1] / "metrics.json").write_text(json.dumps({"test": {"hit_f1": 0.5, "accuracy": 0.6}}))
    return out


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory) -> Path:
    return build_tiny_models(tmp_path_factory.getbasetemp() / "tiny-models")


@pytest.fixture
def app(tiny_models, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MUSICVAE_CHECKPOINTS_DIR", str(tiny_models))
    return AppTest.from_file(APP, default_timeout=120)


def run_ok(at):
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def switch_mode(at, mode: str):
    """Pick a playground mode in the sidebar and rerun (asserting no exception)."""
    at.radio(key="mode").set_value(mode)
    return run_ok(at)


def roll_specs(at) -> list[str]:
    return [chart.proto.spec for chart in at.get("plotly_chart")]


def texts(elements) -> str:
    return "\n".join(str(e.value) for e in elements)


def loopers(at) -> list[dict]:
    """The data of every looper on the page (there must be at most one per screen)."""
    from musicvae.app.player import COMPONENT_NAME

    found = [json.loads(e.proto.bytes) for e in at.main if getattr(e.proto, "component_name", None) == COMPONENT_NAME]
    assert len(found) <= 1, "more than one looper on one screen"
    return found


def playing(at) -> dict:
    """The groove the screen's one looper plays (its data: pattern, qpm, label, roll)."""
    found = loopers(at)
    assert found, "no looper on the page"
    return found[0]


def test_no_model_installed_every_mode_shows_a_playable_preset(tmp_path, monkeypatch):
    from streamlit.testing.v1 import AppTest

    monkeypatch.setenv("MUSICVAE_CHECKPOINTS_DIR", str(tmp_path))
    at = run_ok(AppTest.from_file(APP, default_timeout=120))
    for mode in ("sample", "latent", "interpolate", "grid"):
        switch_mode(at, mode)
        assert "No trained model is installed" in texts(at.warning), mode
        assert loopers(at) and at.get("plotly_chart") and not at.get("audio"), mode


def test_a_broken_checkpoint_is_one_sentence_and_presets_play(tiny_models, tmp_path, monkeypatch):
    import shutil

    from streamlit.testing.v1 import AppTest

    broken = tmp_path / "checkpoints"
    shutil.copytree(tiny_models, broken)
    for weights in broken.glob("*/model.safetensors"):
        weights.write_bytes(b"not a checkpoint at all")
    monkeypatch.setenv("MUSICVAE_CHECKPOINTS_DIR", str(broken))
    at = run_ok(AppTest.from_file(APP, default_timeout=120))  # no traceback
    for mode in ("sample", "grid"):
        switch_mode(at, mode)
        assert "could not be loaded" in texts(at.warning), mode
        assert loopers(at) and at.get("plotly_chart"), mode


def test_sample_mode_widgets_and_seed(app):
    at = run_ok(app)
    assert at.session_state["mode"] == "sample"
    temperature = at.slider(key="temperature")
    assert (temperature.min, temperature.max, temperature.value) == (0.1, 2.0, 0.5)
    assert at.number_input(key="seed") and at.button(key="new_seed_btn") and at.toggle(key="similar_on")
    assert not at.get("audio") and at.slider(key="n_var").value == 3
    assert playing(at)["roll"] == "roll_sample_0"  # one looper, on the first variation
    assert [b.label for b in at.button if str(b.key).startswith("play_sample_")] == ["🔊 Playing", "▶ Play", "▶ Play"]
    assert len(at.download_button) >= 6  # MIDI + WAV per variation
    assert "hit F1 0.5" in texts(at.markdown)  # the About panel shows metrics.json's headline numbers
    first = roll_specs(at)
    first_groove = playing(at)["pattern"]["id"]
    at.button(key="play_sample_2").click()
    run_ok(at)
    assert playing(at)["roll"] == "roll_sample_2" and playing(at)["pattern"]["id"] != first_groove
    at.number_input(key="seed").set_value(2)
    run_ok(at)
    second = roll_specs(at)
    assert first != second
    assert playing(at)["roll"] == "roll_sample_2"  # the looper stays on the chosen variation
    at.number_input(key="seed").set_value(1)
    run_ok(at)
    assert roll_specs(at) == first  # the same seed gives the same grooves
    at.button(key="new_seed_btn").click()
    run_ok(at)
    at.slider(key="n_var").set_value(1)
    run_ok(at)
    assert playing(at)["roll"] == "roll_sample_0"  # the chosen variation is gone: back to the first


def test_similar_and_keep_for_other_modes(app):
    at = run_ok(app)
    at.toggle(key="similar_on").set_value(True)
    run_ok(at)
    assert at.selectbox(key="sim_base") and at.slider(key="similarity")
    at.button(key="pin_0").click()
    run_ok(at)
    switch_mode(at, "interpolate")
    assert any(option.startswith("★ similar 1") for option in at.selectbox(key="interp_a").options)


def test_latent_sliders_move_the_groove(app):
    at = run_ok(app)
    switch_mode(at, "latent")
    chosen = at.multiselect(key="latent_dirs").value
    assert chosen == ["pc:0", "pc:1", "pc:2"]
    assert "carry no meaning" in texts(at.caption)
    before = roll_specs(at)
    slider = at.slider(key="lat_pc:0")
    slider.set_value(3.0)
    run_ok(at)
    assert roll_specs(at) != before
    at.button(key="latent_reset").click()
    run_ok(at)
    assert at.slider(key="lat_pc:0").value == 0.0
    assert roll_specs(at) == before


def test_upload_gmd_file_and_broken_file(app):
    good = gmd_files(1)[0]
    at = run_ok(app)
    at.file_uploader(key="uploads").set_value([
        (good.name, good.read_bytes(), "audio/midi"),
        ("broken.mid", b"this is not a MIDI file at all", "audio/midi"),
    ])
    run_ok(at)
    errors = texts(at.error)
    assert "broken" in errors and len(at.error) == 1
    assert not any("Traceback" in e for e in errors.splitlines())
    windows = [s for s in at.selectbox if str(s.key).startswith("win_")]
    assert windows and len(windows[0].options) > 1  # a long file offers its 4-bar windows
    assert at.session_state["similar_on"] and str(at.session_state["sim_base"]).startswith("upload:")
    windows[0].set_value(0)
    run_ok(at)
    switch_mode(at, "interpolate")
    assert str(at.session_state["interp_b"]).startswith("upload:")


def test_interpolate_steps_method_and_anchored_ends(app):
    at = run_ok(app)
    switch_mode(at, "interpolate")
    at.slider(key="steps").set_value(5)
    run_ok(at)
    assert len(at.select_slider(key="interp_step").options) == 5
    assert not at.get("audio") and playing(at)["roll"] == "roll_interp_view"
    assert "The model's own reconstruction" in texts(at.caption) and "plays back" in texts(at.caption)
    assert "ends on B exactly" in texts(at.caption)
    assert at.download_button(key="morph_wav")
    at.button(key="play_src_a").click()  # A has its own roll and play toggle
    run_ok(at)
    assert playing(at)["roll"] == "roll_src_a"
    at.select_slider(key="interp_step").set_value(3)  # the main control brings the looper back
    run_ok(at)
    assert playing(at)["roll"] == "roll_interp_view"
    assert at.download_button(key="interp_zip")
    at.radio(key="method").set_value("lerp")
    at.select_slider(key="interp_step").set_value(1)
    run_ok(at)
    assert any("step A of 5" in spec for spec in roll_specs(at))


def test_grid_size_and_cell_pick(app):
    at = run_ok(app)
    switch_mode(at, "grid")
    at.slider(key="grid_n").set_value(4)
    run_ok(at)
    assert at.selectbox(key="grid_row").options == ["1", "2", "3", "4"]
    at.selectbox(key="grid_row").set_value(2)
    at.selectbox(key="grid_col").set_value(3)
    run_ok(at)
    assert any("grid cell row 2, column 3" in spec for spec in roll_specs(at))
    assert at.download_button(key="grid_zip") and playing(at)["roll"] == "roll_grid_cell"
    cell = playing(at)["pattern"]["id"]
    at.button(key="play_corner_src_0").click()
    run_ok(at)
    assert playing(at)["roll"] == "roll_corner_src_0" and playing(at)["pattern"]["id"] != cell


def test_query_params_restore_state(app):
    from musicvae.app.core import load_presets

    keys = [p.key for p in load_presets()]
    app.query_params.update({"mode": "interpolate", "seed": "42", "temperature": "1.25", "tempo": "90",
                             "steps": "99", "method": "lerp", "a": keys[3], "b": keys[5], "grid": "junk"})
    at = run_ok(app)
    state = at.session_state
    assert (state["mode"], state["seed"], state["temperature"], state["qpm"]) == ("interpolate", 42, 1.25, 90)
    assert state["steps"] == 16 and state["method"] == "lerp" and state["grid_n"] == 5  # clamped / default
    assert (state["interp_a"], state["interp_b"]) == (f"preset:{keys[3]}", f"preset:{keys[5]}")
    assert at.slider(key="steps").value == 16
    assert at.query_params["a"] == [keys[3]] or at.query_params["a"] == keys[3]


def test_presentation_mode_hides_developer_controls(app):
    app.query_params["present"] = "1"
    at = run_ok(app)
    assert at.session_state["present"]
    assert not [r for r in at.radio if r.key == "model_sample"]
    assert not [n for n in at.number_input if n.key == "seed"]
    assert playing(at) and not at.get("audio")


def test_no_soundfont_is_said_plainly_never_silent_audio(app, monkeypatch):
    from musicvae.app import ui as app_ui
    from musicvae.media import audio

    monkeypatch.setattr(audio, "soundfont_candidates", lambda: [])
    monkeypatch.setattr(audio, "_DEFAULT", {})
    app_ui.get_synth.clear()
    try:
        at = run_ok(app)
        assert "No soundfont found" in texts(at.error) and "fluid-soundfont-gm" in texts(at.error)
        assert not loopers(at) and at.get("plotly_chart")  # rolls still shown, no silent player
    finally:
        app_ui.get_synth.clear()


class SilentSynth:
    """A synth whose drum kit plays nothing: render_pattern raises AudioError ('rendered silence')."""

    sample_rate = 22050
    description = "a silent test synth"
    soundfont = str(ROOT / "pyproject.toml")  # any existing file: the kit's cache key stats it
    kit_name = "silence"

    def render_events(self, events, seconds: float, loop: bool = False):
        import numpy as np

        return np.zeros(int(round(seconds * self.sample_rate)), np.float32)


def test_silent_synth_is_an_error_message_not_an_exception(app, monkeypatch, tmp_path):
    from musicvae.app import modes as app_modes
    from musicvae.app import ui as app_ui
    from musicvae.media import audio, drumkit

    monkeypatch.setenv(drumkit.CACHE_ENV, str(tmp_path))

    monkeypatch.setattr(audio, "default_synth", lambda *args, **kwargs: SilentSynth())
    caches = (app_ui.get_synth, app_ui.get_kit, app_ui._wav, app_modes._morph_wav)
    for cache in caches:
        cache.clear()
    try:
        at = run_ok(app)
        assert "rendered silence" in texts(at.error), texts(at.error)
        assert not loopers(at) and at.get("plotly_chart")  # rolls still shown, no silent player
        switch_mode(at, "interpolate")
        assert "rendered silence" in texts(at.error) and not loopers(at)
    finally:
        for cache in caches:
            cache.clear()


def test_importing_the_app_modules_starts_no_thread():
    """The audio warm-up starts on the first page run (a cached resource), the prefetch thread on the
    first slider move: importing the modules (tests, scripts) starts nothing."""
    import subprocess
    import sys

    code = ("import threading\nimport musicvae.app.latent, musicvae.app.modes, musicvae.app.ui\n"
            "print(sorted(t.name for t in threading.enumerate()))")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120, cwd=ROOT)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip().splitlines()[-1] == "['MainThread']"


def test_latent_prefetch_decodes_ahead_logs_failures_and_shuts_down(caplog):
    import numpy as np

    from musicvae.app import latent as app_latent
    from musicvae.pattern import DrumPattern

    class Model:
        def __init__(self) -> None:
            self.calls: list[float] = []

        def decode(self, z, temperature, seed):
            self.calls.append(round(float(z[0, 0]), 3))
            if z[0, 0] < 0:
                raise RuntimeError("no decoding below zero today")
            return [DrumPattern.empty()]

    model, z0 = Model(), np.zeros(4, np.float32)
    app_latent._prefetcher.clear()
    with caplog.at_level("WARNING", logger="musicvae.app.latent"):
        app_latent.prefetch(model, "fake-model", z0, {"z:0": 0.0}, "z:0", 1.0, None, 0.5, 1)
        executor = app_latent._prefetcher()
        executor.submit(lambda: None).result()  # one worker, first in first out: both jobs are done
    assert model.calls == [0.1, -0.1]  # the next step of the slider, then the step back
    assert app_latent._key("fake-model", z0, {"z:0": 0.1}, 0.5, 1) in app_latent._DECODED
    assert "prefetching a steered groove failed" in caplog.text and "below zero" in caplog.text
    assert not app_latent._PENDING
    app_latent._prefetcher.clear()
    assert executor._shutdown  # released with the cache, not left idling


def upload(at, *files: tuple[str, bytes]):
    at.file_uploader(key="uploads").set_value([(name, data, "audio/midi") for name, data in files])
    return run_ok(at)


def test_removing_an_upload_never_leaves_two_choices_on_one_groove(app):
    from test_loader import groove

    one, two = ("one.mid", groove(4)), ("two.mid", groove(4, fill_last=True))
    at = run_ok(app)
    switch_mode(at, "interpolate")
    upload(at, one)
    upload(at, one, two)
    a, b = at.session_state["interp_a"], at.session_state["interp_b"]
    assert a != b and a.startswith("upload:") and b.startswith("upload:")
    upload(at, two)  # remove groove 1's chip
    state = at.session_state
    assert state["interp_b"] == b and state["interp_a"] != b and state["interp_a"].startswith("preset:")
    assert at.selectbox(key="interp_a").value == state["interp_a"]
    corners = [state[f"corner_{i}"] for i in range(4)]
    assert len(set(corners)) == 4 and b in corners
    assert "groove A, which is now ♪" in texts(at.info) and "top-left corner, which is now" in texts(at.info)
    switch_mode(at, "grid")
    assert [at.selectbox(key=f"corner_{i}").value for i in range(4)] == corners


def test_treat_channel_as_drums_re_reads_the_upload(app):
    import hashlib

    from test_loader import KICK, note, rock, smf, track

    kicks = smf(track(note(0, KICK, channel=0) + note(8 * 120, KICK, channel=0)))
    kit = smf(track(rock(4, channel=0)))
    at = upload(run_ok(app), ("kicks.mid", kicks), ("kit.mid", kit))
    assert "--drum_channel 1" in texts(at.error) and "treat channel 1 as drums" in texts(at.error)
    assert "looks like a drum part: read as drums" in texts(at.caption)
    choice = at.selectbox(key=f"drums_{hashlib.sha1(kicks).hexdigest()[:12]}")
    assert choice.options[1:] == ["treat channel 1 as drums"]  # shown for an upload with no channel-10 notes
    choice.set_value(1)
    run_ok(at)
    assert not at.error and len(at.session_state["uploaded"]) == 2
    assert "Channel 1 was read as drums, as asked." in texts(at.caption)
    assert at.selectbox(key=f"drums_{hashlib.sha1(kit).hexdigest()[:12]}")  # detected drums: offered too


def test_similar_to_a_groove_encodes_with_the_high_kl_model(app):
    at = run_ok(app)
    at.toggle(key="similar_on").set_value(True)
    run_ok(at)
    assert at.radio(key="model_sample").value == "sample"  # Sample itself keeps the low-KL model
    assert "Encoded and varied with `hier-drums_4bar_small_hikl_aug`" in texts(at.caption)


def test_user_grooves_are_encoded_refined_with_even_steps_by_default(app, monkeypatch):
    import streamlit as st

    from musicvae.api import TrainedModel

    calls: list[dict] = []
    original_refined, original_interpolate = TrainedModel.encode_refined, TrainedModel.interpolate

    def encode_refined(self, patterns, settings=None):
        calls.append({"refined": len(patterns), "budget": settings.time_budget_s})
        return original_refined(self, patterns, settings)

    def interpolate(self, *args, **kwargs):
        calls.append({"spacing": kwargs.get("spacing")})
        return original_interpolate(self, *args, **kwargs)

    monkeypatch.setattr(TrainedModel, "encode_refined", encode_refined)
    monkeypatch.setattr(TrainedModel, "interpolate", interpolate)
    st.cache_data.clear()
    at = run_ok(app)
    switch_mode(at, "interpolate")
    assert at.toggle(key="refine").value and at.toggle(key="even_steps").value
    assert {"refined": 2, "budget": 1.0} in calls and {"spacing": "even"} in calls
    calls.clear()
    at.toggle(key="refine").set_value(False)
    at.toggle(key="even_steps").set_value(False)
    run_ok(at)
    assert not any("refined" in c for c in calls) and {"spacing": "uniform"} in calls
    assert at.query_params["refine"] in ("0", ["0"]) and at.query_params["spacing"] in ("uniform", ["uniform"])


def test_refine_and_spacing_restore_from_the_url(app):
    app.query_params.update({"mode": "interpolate", "refine": "0", "spacing": "uniform"})
    at = run_ok(app)
    assert at.session_state["refine"] is False and at.session_state["even_steps"] is False
