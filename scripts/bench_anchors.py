"""Anchored codes: exactness, cost, and how the anchor's fade shapes morphs (docs/models.md).

    .venv/bin/python scripts/bench_anchors.py [--part exact|time|morph|all] [--threads 2]

exact: every GMD test window (data/gmd/test.npz) and constructed outside-GMD grooves (written as
MIDI and read back by the upload loader: empty, one hit, every class at every step, random densities,
toms/crash fills) decoded greedily at their own code with weight 1; counts the windows that come back
exactly.  time: a preset's MIDI bytes -> loader -> refined code (the app's budget) -> anchor ->
anchored decode, per stage.  morph: preset pairs (consecutive presets), 7 even steps, greedy, for fade
powers 1, 2, 4 and no anchor: largest/smallest step change, first step vs the median step, and the
hit F1 of each step against A (how quickly the model's own groove takes over).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from musicvae import api
from musicvae.api import DEFAULT_INTERPOLATE_MODEL, TrainedModel, shipped_checkpoint
from musicvae.app.core import load_presets
from musicvae.evaluation.quality import window_f1
from musicvae.pattern import NUM_CLASSES, DrumPattern

REPO = Path(__file__).resolve().parent.parent


def constructed_grooves(steps: int, seed: int = 0) -> list[DrumPattern]:
    """Drum grooves no GMD drummer played, through MIDI bytes and the upload loader."""
    from musicvae.midi.loader import InputError, load_grooves

    rng = np.random.default_rng(seed)
    grids = [np.zeros((steps, NUM_CLASSES), bool)]  # empty
    one = np.zeros((steps, NUM_CLASSES), bool)
    one[0, 0] = True
    grids.append(one)  # a single kick
    grids.append(np.ones((steps, NUM_CLASSES), bool))  # every class at every step (the density limit)
    for density in (0.03, 0.1, 0.25, 0.5, 0.75, 0.9):  # random grooves at many densities
        for _ in range(4):
            grids.append(rng.random((steps, NUM_CLASSES)) < density)
    for _ in range(8):  # a beat with tom fills, crashes and off-beat open hats (what the model drops)
        g = np.zeros((steps, NUM_CLASSES), bool)
        g[::4, 0] = True
        g[4::8, 1] = True
        g[::2, 2] = True
        fill = rng.integers(0, steps // 16) * 16 + 12
        g[fill : fill + 4, rng.choice([4, 5, 6], 4)] = True
        g[rng.integers(0, steps, 3), 7] = True
        g[rng.integers(0, steps // 2, 3) * 2 + 1, 3] = True
        grids.append(g)
    grooves = []
    for i, grid in enumerate(grids):
        try:  # the loader refuses an empty file with its reason: an empty groove comes from editing, as here
            loaded = load_grooves(DrumPattern(grid).to_midi_bytes(120), f"constructed_{i}.mid")
            grooves.append(loaded.windows[0])
        except InputError:
            grooves.append(DrumPattern(grid))
    return grooves


def anchored_exact(model: TrainedModel, grooves: list[DrumPattern], batch: int = 128) -> tuple[int, int]:
    exact = 0
    for lo in range(0, len(grooves), batch):
        part = grooves[lo : lo + batch]
        out = model.reconstruct(part, anchor=True)
        exact += sum(bool(np.array_equal(p.hits, q.hits)) for p, q in zip(part, out))
    return exact, len(grooves)


def part_exact(model: TrainedModel, gmd_windows: bool = True) -> None:
    tokens = np.load(REPO / "data" / "gmd" / "test.npz")["tokens"]  # `musicvae prepare` output
    gmd = [DrumPattern.from_tokens(t) for t in tokens] if gmd_windows else []
    started = time.perf_counter()
    if not gmd:
        return _constructed(model)
    exact, total = anchored_exact(model, gmd)
    own = model.reconstruct(gmd[:256])
    f1 = window_f1(np.stack([p.hits for p in gmd[:256]]), np.stack([p.hits for p in own]))
    print(f"GMD test windows: {exact}/{total} exact when anchored ({time.perf_counter() - started:.0f} s); "
          f"the model's own greedy decode (first 256): hit F1 {f1.mean():.3f}, "
          f"{np.mean([np.array_equal(p.hits, q.hits) for p, q in zip(gmd, own)]):.1%} exact")
    _constructed(model)


def _constructed(model: TrainedModel) -> None:
    made = constructed_grooves(model.num_steps)
    exact, total = anchored_exact(model, made)
    print(f"constructed outside-GMD grooves: {exact}/{total} exact when anchored")
    refined = api.RefineSettings(steps=30, time_budget_s=None)
    sub = made[:12]
    out = model.reconstruct(sub, refined, anchor=True)
    print(f"  refined codes (30 steps), first 12: {sum(np.array_equal(p.hits, q.hits) for p, q in zip(sub, out))}/12")


def part_time(model: TrainedModel, repeats: int = 5) -> None:
    from musicvae.app.modes import REFINE_BUDGET_S
    from musicvae.midi.loader import load_grooves
    from musicvae.model.anchor import make_anchors
    from musicvae.model.refine import RefineSettings

    files = sorted((REPO / "assets" / "presets").glob("*.mid"))[:repeats]
    rows = []
    for path in files:
        t0 = time.perf_counter()
        loaded = load_grooves(path.read_bytes(), path.name)
        groove = loaded.windows[loaded.default_index]
        t1 = time.perf_counter()
        code = model.codes([groove], RefineSettings(steps=200, time_budget_s=REFINE_BUDGET_S))
        t2 = time.perf_counter()
        tokens = torch.from_numpy(groove.to_tokens()[None]).long()
        [anchor] = make_anchors(model.model, code, tokens)
        t3 = time.perf_counter()
        [out] = model.decode(code, 0.0, anchors=[anchor], weights=np.ones((1, 1), np.float32))
        t4 = time.perf_counter()
        assert np.array_equal(out.hits, groove.hits)
        rows.append((t1 - t0, t2 - t1, t3 - t2, t4 - t3, t4 - t0))
    med = np.median(np.array(rows), axis=0) * 1000
    print("| load | refined encode | anchor | anchored decode | upload -> anchored groove |")
    print("|---|---|---|---|---|")
    print("| " + " | ".join(f"{v:.0f} ms" for v in med) + " |")


def part_morph(model: TrainedModel, steps: int, pairs: int) -> None:
    grooves = [p.pattern for p in load_presets()]
    pairs_ab = list(zip(grooves[0::2], grooves[1::2]))[:pairs]
    ends = [model.encode_anchored([a, b]) for a, b in pairs_ab]
    print(f"model {model.name}, {len(pairs_ab)} preset pairs, {steps} even steps, greedy")
    print("| anchor fade | max/min change: median | worst | pairs <= 2.5x | first step <= median step | "
          "mean hit changes per step | F1 vs A, steps 1..4 |")
    print("|---|---|---|---|---|---|---|")
    for power in (None, 1.0, 2.0, 4.0):
        ratios, first_ok, changes_all, f1s = [], [], [], []
        for (a, b), anchored in zip(pairs_ab, ends):
            if power is None:
                path = model.interpolate(a, b, steps, temperature=0.0, spacing="even",
                                         ends=torch.stack([g.code for g in anchored]))
            else:
                api.ANCHOR_FADE_POWER = power
                path = model.interpolate(a, b, steps, temperature=0.0, spacing="even", ends=anchored)
            changes = np.array([int((x.hits != y.hits).sum()) for x, y in zip(path[:-1], path[1:])])
            ratios.append(changes.max() / max(changes.min(), 0.5))
            first_ok.append(changes[0] <= np.median(changes))
            changes_all.append(changes)
            f1s.append(window_f1(np.stack([a.hits] * 4), np.stack([p.hits for p in path[:4]])))
        r = np.array(ratios)
        name = "none (the model's own)" if power is None else f"(1-t)^{power:g}"
        print(f"| {name} | {np.median(r):.2f} | {r.max():.1f} | {np.mean(r <= 2.5):.0%} | {np.mean(first_ok):.0%} | "
              f"{', '.join(f'{v:.1f}' for v in np.mean(changes_all, axis=0))} | "
              f"{', '.join(f'{v:.2f}' for v in np.mean(f1s, axis=0))} |")
    api.ANCHOR_FADE_POWER = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--checkpoint", type=Path, default=None)
    parser.add_argument("--part", choices=["exact", "constructed", "time", "morph", "all"], default="all")
    parser.add_argument("--steps", type=int, default=7)
    parser.add_argument("--pairs", type=int, default=20)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    model = TrainedModel.load(args.checkpoint or shipped_checkpoint(DEFAULT_INTERPOLATE_MODEL))
    if args.part in ("exact", "all"):
        part_exact(model)
    if args.part == "constructed":
        part_exact(model, gmd_windows=False)
    if args.part in ("time", "all"):
        part_time(model)
    if args.part in ("morph", "all"):
        part_morph(model, args.steps, args.pairs)


if __name__ == "__main__":
    main()
