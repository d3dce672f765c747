"""CLI smoke tests: prepare, train, eval JSON, generate, inspect, info (real subprocesses)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pretty_midi
import pytest

TINY = "tiny-hier-drums_4bar"
GROOVE_138 = "drummer1/eval_session/1_funk-groove1_138_beat_4-4.mid"


def musicvae(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "musicvae.cli", *map(str, args)],
                          capture_output=True, text=True, timeout=timeout)


@pytest.fixture(scope="module")
def trained_run(small_gmd, tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("cli")
    result = musicvae("prepare", "--examples_path", small_gmd, "--output_dir", root / "data", "--num_workers", "1")
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip().splitlines()[-1] == "windows: train=26 validation=69 test=13"
    result = musicvae("train", "--config", TINY, "--run_dir", root / "run", "--examples_path", root / "data",
                      "--num_steps", "3", "--num_threads", "1")
    assert result.returncode == 0, result.stderr
    assert list((root / "run").glob("events.out.tfevents.*"))
    return root


def test_eval_prints_json_last(trained_run):
    result = musicvae("train", "--config", TINY, "--run_dir", trained_run / "run", "--mode", "eval",
                      "--examples_path", trained_run / "data", "--eval_split", "test")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["examples"] == 13 and metrics["step"] == 3
    for key in ("loss", "r_loss", "kl_bits", "accuracy", "sampled_accuracy", "hit_f1", "segment_accuracy"):
        assert key in metrics
    assert len(metrics["segment_accuracy"]) == 4


def test_generate_sample_and_interpolate(trained_run, gmd, tmp_path):
    out = tmp_path / "out"
    result = musicvae("generate", "--config", TINY, "--run_dir", trained_run / "run", "--mode", "sample",
                      "--num_outputs", "3", "--output_dir", out, "--seed", "1", "--qpm", "100")
    assert result.returncode == 0, result.stderr
    files = sorted(out.glob("*.mid"))
    assert len(files) == 3
    midi = pretty_midi.PrettyMIDI(str(files[0]))
    assert midi.get_tempo_changes()[1][0] == pytest.approx(100.0, rel=1e-3)
    result = musicvae("generate", "--run_dir", trained_run / "run", "--mode", "interpolate", "--num_outputs", "4",
                      "--input_midi_1", gmd / GROOVE_138, "--input_midi_2", gmd / GROOVE_138, "--window_2", "5",
                      "--output_dir", tmp_path / "interp")
    assert result.returncode == 0, result.stderr
    assert len(list((tmp_path / "interp").glob("*.mid"))) == 4


def test_generate_errors_are_one_line(trained_run, tmp_path):
    bad = tmp_path / "bad.mid"
    bad.write_bytes(b"hello")
    result = musicvae("generate", "--run_dir", trained_run / "run", "--mode", "interpolate",
                      "--input_midi_1", bad, "--input_midi_2", bad, "--output_dir", tmp_path / "o")
    assert result.returncode != 0
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    result = musicvae("generate", "--config", "cat-drums_2bar_small", "--run_dir", trained_run / "run",
                      "--mode", "sample", "--output_dir", tmp_path / "o")
    assert result.returncode != 0 and "does not match" in result.stderr


def test_inspect_exit_codes(gmd, tmp_path):
    ok = musicvae("inspect", gmd / GROOVE_138)
    assert ok.returncode == 0 and "13 usable 4-bar window(s)" in ok.stdout
    text = tmp_path / "notes.mid"
    text.write_text("not midi at all")
    bad = musicvae("inspect", text)
    assert bad.returncode != 0 and "Traceback" not in bad.stderr + bad.stdout
    assert len(bad.stdout.strip().splitlines()) == 1
    fill = musicvae("inspect", "--json", gmd / "drummer1/session1/10_jazz-funk_116_fill_4-4.mid")
    assert json.loads(fill.stdout)["ok"] is True  # a 1-bar fill is repeated to 4 bars


def test_info_counts_parameters():
    result = musicvae("info", "--config", "hier-drums_4bar_small")
    assert result.returncode == 0
    assert "5,697,536 (5,689,344 with TF's single LSTM bias" in result.stdout
    listing = musicvae("info", "--list")
    assert "hier-drums_4bar_small_hikl" in listing.stdout


def assert_clear_error(result: subprocess.CompletedProcess, *words: str) -> None:
    """A non-zero exit with one `error: ...` sentence on stderr naming ``words``, no traceback."""
    assert result.returncode == 2, (result.returncode, result.stderr[-2000:])
    assert "Traceback" not in result.stderr + result.stdout, result.stderr[-2000:]
    lines = [line for line in result.stderr.strip().splitlines() if "%|" not in line]  # not tqdm's bars
    assert len(lines) == 1 and lines[0].startswith("error: ") and lines[0].endswith("."), lines
    for word in words:
        assert word in lines[0], (word, lines[0])


def test_unwritable_output_dir_is_one_sentence(small_gmd, trained_run, tmp_path):
    blocker = tmp_path / "a-file"  # a file where a folder should be: fails for root as well
    blocker.write_text("not a folder")
    result = musicvae("prepare", "--examples_path", small_gmd, "--output_dir", blocker / "data", "--num_workers", "1")
    assert_clear_error(result, str(blocker / "data"), "Not a directory")
    result = musicvae("generate", "--run_dir", trained_run / "run", "--mode", "sample", "--num_outputs", "1",
                      "--output_dir", blocker / "out")
    assert_clear_error(result, str(blocker / "out"), "Not a directory")


def test_damaged_model_file_is_one_sentence(trained_run, tmp_path):
    from musicvae.training.checkpoint import resolve_model_dir

    source = resolve_model_dir(trained_run / "run")
    folder = tmp_path / "model"
    folder.mkdir()
    for name in ("model.safetensors", "config.json"):
        shutil.copy(source / name, folder / name)
    weights = folder / "model.safetensors"
    whole = weights.read_bytes()
    for damaged in (b"not safetensors at all", whole[: len(whole) // 2]):  # garbage; a cut download
        weights.write_bytes(damaged)
        result = musicvae("generate", "--checkpoint", folder, "--mode", "sample", "--num_outputs", "1",
                          "--output_dir", tmp_path / "out")
        assert_clear_error(result, str(weights), "damaged or incomplete")
    assert not (tmp_path / "out").exists()


def test_render_reads_the_files_the_app_reads(gmd, tmp_path):
    """`musicvae render` reads with the loader's reader: a cut download and a file behind a 128-byte
    header (pretty_midi rejects both) play, as they load in the app; a non-MIDI file is one sentence."""
    from musicvae.media import audio

    try:
        audio.find_soundfont()
    except audio.AudioError as error:
        pytest.skip(str(error))
    data = (gmd / GROOVE_138).read_bytes()
    for name, damaged in {"cut.mid": data[: len(data) // 2], "prefixed.mid": bytes(128) + data}.items():
        path, out = tmp_path / name, tmp_path / f"{name}.wav"
        path.write_bytes(damaged)
        result = musicvae("render", path, out)
        assert result.returncode == 0, result.stderr[-2000:]
        samples, rate = audio.decode_wav(out.read_bytes())
        assert len(samples) > 10 * rate and audio.rms(samples) > 0.01
    text = tmp_path / "notes.mid"
    text.write_text("not midi at all")
    assert_clear_error(musicvae("render", text, tmp_path / "x.wav"), "not a MIDI file")
