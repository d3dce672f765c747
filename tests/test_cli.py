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


def test_train_log_names_the_path_it_took(trained_run):
    """The default path: bfloat16 where the CPU has it, jemalloc (re-exec) where it is installed."""
    from musicvae.evaluation.speed import JEMALLOC
    from musicvae.training.loop import cpu_has_bf16

    result = musicvae("train", "--config", TINY, "--run_dir", trained_run / "run", "--examples_path",
                      trained_run / "data", "--num_steps", "4", "--num_threads", "1")
    assert result.returncode == 0, result.stderr
    [path] = [line for line in result.stdout.splitlines() if line.startswith("training path:")]
    assert ("bfloat16 autocast (chosen)" if cpu_has_bf16() else "float32 (chosen)") in path
    assert ("jemalloc" if JEMALLOC.exists() else "glibc malloc") in path


def test_generate_playable_flag(trained_run, tmp_path):
    for flag in ("--playable", "--no-playable"):
        result = musicvae("generate", "--run_dir", trained_run / "run", "--mode", "sample", "--num_outputs", "2",
                          "--output_dir", tmp_path / flag, "--seed", "1", flag)
        assert result.returncode == 0, result.stderr
        assert len(list((tmp_path / flag).glob("*.mid"))) == 2


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


def kicks_on_channel_1() -> bytes:
    from test_loader import KICK, STEP, note, smf, track

    return smf(track(note(0, KICK, channel=0) + note(8 * STEP, KICK, channel=0)))


def test_inspect_drum_channel_and_notices(tmp_path):
    from test_loader import shuffle, smf, track

    kicks, triplets = tmp_path / "kicks.mid", tmp_path / "shuffle.mid"
    kicks.write_bytes(kicks_on_channel_1())
    triplets.write_bytes(smf(track(shuffle())))
    refused = musicvae("inspect", kicks)
    assert refused.returncode == 1 and "channel 1 may be a drum part" in refused.stdout
    assert "--drum_channel 1" in refused.stdout and len(refused.stdout.strip().splitlines()) == 1
    read = musicvae("inspect", "--drum_channel", "1", kicks, triplets)
    assert read.returncode == 1  # the shuffle has no channel-1 notes
    assert "note: Channel 1 was read as drums, as asked." in read.stdout and "(channel 1)" in read.stdout
    assert "shuffle.mid: Channel 1 has no notes; the file's notes are on channel 10." in read.stdout
    shuffled = musicvae("inspect", "--json", triplets)
    assert "This groove has a triplet feel" in " ".join(json.loads(shuffled.stdout)["notices"])
    for bad in ("0", "17", "ten"):
        wrong = musicvae("inspect", "--drum_channel", bad, kicks)
        assert wrong.returncode == 2 and "from 1 to 16" in wrong.stderr and "Traceback" not in wrong.stderr


def test_generate_reads_the_drum_channel_it_is_told(trained_run, tmp_path):
    kicks = tmp_path / "kicks.mid"
    kicks.write_bytes(kicks_on_channel_1())
    args = ["generate", "--run_dir", trained_run / "run", "--mode", "interpolate", "--num_outputs", "3",
            "--input_midi_1", kicks, "--input_midi_2", kicks, "--refine_steps", "0"]
    refused = musicvae(*args, "--output_dir", tmp_path / "no")
    assert refused.returncode != 0 and "--drum_channel 1" in refused.stderr
    assert "Traceback" not in refused.stderr and len(refused.stderr.strip().splitlines()) == 1
    done = musicvae(*args, "--drum_channel", "1", "--output_dir", tmp_path / "yes")
    assert done.returncode == 0, done.stderr
    assert len(list((tmp_path / "yes").glob("*.mid"))) == 3


@pytest.fixture(scope="module")
def groove_run(trained_run) -> Path:
    """A tiny humanize model trained for a few steps on the module's prepared data."""
    result = musicvae("train", "--config", "tiny-groovae_4bar_humanize", "--run_dir", trained_run / "groove",
                      "--examples_path", trained_run / "data", "--num_steps", "20", "--num_threads", "1",
                      "--hparams", "learning_rate=0.01")
    assert result.returncode == 0, result.stderr
    return trained_run / "groove"


def test_generate_humanize_writes_quantized_and_humanized(groove_run, trained_run, gmd, tmp_path):
    out = tmp_path / "out"
    result = musicvae("generate", "--mode", "humanize", "--checkpoint", groove_run / "checkpoints" / "step-00000020",
                      "--input_midi_1", gmd / GROOVE_138, "--output_dir", out)
    assert result.returncode == 0, result.stderr
    stem = Path(GROOVE_138).stem
    quantized = pretty_midi.PrettyMIDI(str(out / f"{stem}_quantized.mid")).instruments[0].notes
    humanized = pretty_midi.PrettyMIDI(str(out / f"{stem}_humanized.mid")).instruments[0].notes
    assert {n.velocity for n in quantized} == {80}
    assert len({n.velocity for n in humanized}) > 1
    step = 60 / 120 / 4
    on_grid = [abs(n.start / step - round(n.start / step)) < 1e-3 for n in humanized]
    assert not all(on_grid) and min(n.start for n in humanized) >= 0
    assert sorted((round(n.start / step), n.pitch) for n in humanized) == \
        sorted((round(n.start / step), n.pitch) for n in quantized)  # the same notes, played
    assert "hits kept" in result.stdout
    # --humanize on sample: the categorical model's grooves, played by the groove model
    result = musicvae("generate", "--run_dir", trained_run / "run", "--mode", "sample", "--num_outputs", "2",
                      "--humanize", "--humanize_checkpoint", groove_run, "--output_dir", tmp_path / "s", "--seed", "2",
                      "--temperature", "1.0")  # an untrained decoder at T=1 plays many hits
    assert result.returncode == 0, result.stderr
    notes = pretty_midi.PrettyMIDI(str(sorted((tmp_path / "s").glob("*.mid"))[0])).instruments[0].notes
    assert len(notes) > 8 and len({n.velocity for n in notes}) > 1


def test_eval_of_a_groove_model_reports_its_figures(groove_run, trained_run):
    result = musicvae("train", "--config", "tiny-groovae_4bar_humanize", "--run_dir", groove_run, "--mode", "eval",
                      "--examples_path", trained_run / "data", "--eval_split", "test")
    assert result.returncode == 0, result.stderr
    metrics = json.loads(result.stdout.strip().splitlines()[-1])
    assert metrics["examples"] == 13 and metrics["hit_f1"] == 1.0
    for key in ("velocity_mae", "timing_mae_ms", "hits_loss", "velocities_loss", "offsets_loss", "kl_bits"):
        assert key in metrics


def test_generate_humanize_errors_are_one_line(groove_run, trained_run, tmp_path):
    result = musicvae("generate", "--mode", "humanize", "--checkpoint", groove_run, "--output_dir", tmp_path)
    assert result.returncode != 0 and "needs --input_midi_1" in result.stderr
    result = musicvae("generate", "--mode", "sample", "--checkpoint", groove_run / "checkpoints" / "step-00000020",
                      "--output_dir", tmp_path)
    assert result.returncode != 0 and "groove model" in result.stderr
    assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
