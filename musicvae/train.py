"""Training and evaluation loops (``musicvae train --mode train|eval``).

Training resumes by itself: re-running the same command restores model, optimizer, step,
data position and RNG state from the newest complete checkpoint in ``run_dir``.
"""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path

import numpy as np
import torch

from musicvae import checkpoint as ckpt
from musicvae.configs import Config
from musicvae.data import fingerprint, load_split
from musicvae.model import MusicVAE, compute_loss, learning_rate_at, roll_tensor
from musicvae.pattern import NUM_CLASSES, hits_from_tokens


class TrainingError(RuntimeError):
    """A training set-up problem with a one-line explanation."""


def batches_for_epoch(num_examples: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """[num_batches, batch_size] example indices; a fixed permutation per (seed, epoch)."""
    order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    usable = (num_examples // batch_size) * batch_size  # drop_remainder, as Magenta does
    return order[:usable].reshape(-1, batch_size)


def train(
    config: Config,
    run_dir: Path,
    data_dir: Path,
    num_steps: int,
    checkpoint_secs: float = 60.0,
    keep_checkpoints: int = 3,
    eval_every_steps: int = 0,
    eval_examples: int = 512,
    log_every_steps: int = 10,
    seed: int = 0,
    progress: bool = True,
) -> dict:
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    hp = config.hparams
    run_dir = Path(run_dir)
    run_dir.mkdir(parents=True, exist_ok=True)
    train_split = load_split(data_dir, "train")
    steps_per_window = train_split.tokens.shape[1]
    if steps_per_window != hp.max_seq_len:
        raise TrainingError(
            f"the data has {steps_per_window}-step windows but {config.name} needs {hp.max_seq_len}: "
            f"re-run prepare with --slice_bars {hp.slice_bars}"
        )
    if len(train_split) < hp.batch_size:
        raise TrainingError(
            f"only {len(train_split)} training windows for batch_size {hp.batch_size}: "
            "add data or pass --hparams=batch_size=N"
        )
    validation = None
    if eval_every_steps:
        try:
            validation = load_split(data_dir, "validation").tokens[:eval_examples]
        except FileNotFoundError:
            validation = None
    data_fp = fingerprint(data_dir)

    torch.manual_seed(seed)
    model = MusicVAE(hp)
    optimizer = torch.optim.Adam(model.parameters(), lr=hp.learning_rate, betas=(0.9, 0.999), eps=1e-8)
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "elapsed_secs": 0.0, "seed": seed}
    latest = ckpt.latest_checkpoint(run_dir)
    if latest is not None:
        meta = ckpt.read_meta(latest)
        if meta["config"] != config.name or meta["hparams"] != hp.to_dict():
            raise TrainingError(f"{run_dir} holds a run of a different config/hparams: use a new --run_dir")
        state.update(ckpt.restore_training(latest, model, optimizer))
        print(f"resuming from {latest.name} (step {state['step']})", flush=True)
    model.train()

    writer = SummaryWriter(str(run_dir))
    stop = {"now": False}

    def request_stop(signum, frame):  # Ctrl-C / SIGTERM: finish the step, save, exit cleanly
        stop["now"] = True

    previous_handlers = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def save() -> None:
        meta = ckpt.model_meta(config, state["step"], data_fp)
        ckpt.save_training_checkpoint(run_dir, model, optimizer, meta, dict(state), keep_checkpoints)

    tokens_all = torch.from_numpy(train_split.tokens.astype(np.int64))
    bar = tqdm(total=num_steps, initial=min(state["step"], num_steps), desc="train", disable=not progress)
    last_save = time.monotonic()
    started = time.monotonic()
    base_elapsed = state["elapsed_secs"]
    out: dict = {}
    try:
        while state["step"] < num_steps and not stop["now"]:
            schedule = batches_for_epoch(len(train_split), hp.batch_size, seed, state["epoch"])
            if state["batch_in_epoch"] >= len(schedule):
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
                continue
            batch = tokens_all[schedule[state["batch_in_epoch"]]]
            step = state["step"]
            lr = learning_rate_at(hp, step)
            for group in optimizer.param_groups:
                group["lr"] = lr
            out = compute_loss(model, batch, step)
            optimizer.zero_grad(set_to_none=True)
            out["loss"].backward()
            norm = clip_gradients(model, hp.grad_clip, hp.grad_norm_clip_to_zero)
            optimizer.step()
            state["step"] += 1
            state["batch_in_epoch"] += 1
            state["elapsed_secs"] = base_elapsed + time.monotonic() - started
            bar.update(1)
            if state["step"] % log_every_steps == 0 or state["step"] == num_steps:
                scalars = {k: float(v.detach()) for k, v in out.items() if k != "segment_accuracy"}
                scalars.update({"learning_rate": lr, "global_norm": norm})
                for key, value in scalars.items():
                    writer.add_scalar(key, value, state["step"])
                bar.set_postfix(loss=f"{scalars['loss']:.1f}", acc=f"{scalars['metrics/accuracy']:.3f}",
                                kl=f"{scalars['losses/kl_bits']:.0f}")
            if validation is not None and state["step"] % eval_every_steps == 0:
                record_validation(model, validation, state, writer, run_dir, hp.batch_size)
            if time.monotonic() - last_save >= checkpoint_secs:
                save()
                last_save = time.monotonic()
        save()
    finally:
        bar.close()
        writer.close()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    return {"step": state["step"], **{k: float(v.detach()) for k, v in out.items() if k != "segment_accuracy"}}


def clip_gradients(model: MusicVAE, clip: float, clip_to_zero: float) -> float:
    """Global-norm clipping; above ``clip_to_zero`` every gradient becomes zero (spec §2.6)."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
    if not math.isfinite(norm) or norm > clip_to_zero:
        for p in params:
            p.grad.zero_()
    return norm


def record_validation(model, tokens: np.ndarray, state: dict, writer, run_dir: Path, batch_size: int) -> dict:
    model.eval()
    metrics = evaluate(model, tokens, batch_size=min(batch_size, 256), step=state["step"])
    model.train()
    for key, value in metrics.items():
        if isinstance(value, float):
            writer.add_scalar(f"validation/{key}", value, state["step"])
    with open(run_dir / "curve.jsonl", "a") as handle:
        row = {"step": state["step"], "wall_hours": round(state["elapsed_secs"] / 3600, 4), **metrics}
        handle.write(json.dumps(row) + "\n")
    return metrics


@torch.inference_mode()
def evaluate(model: MusicVAE, tokens: np.ndarray, batch_size: int = 256, step: int = 10**9, seed: int = 0) -> dict:
    """Metrics over every window (no remainder dropped).

    - ``accuracy``: teacher-forced per-step token accuracy (Magenta's metrics/accuracy);
    - ``sampled_accuracy``: free-running, z ~ q(z|x), each next input sampled at T=1 (Magenta's
      eval with sampling_rate=1);
    - ``hit_precision/recall/f1``: per (step, instrument) hits of the greedy (T=0) decode of mu,
      what a user sees as a reconstruction; silence cannot inflate it;
    - ``distinct_reconstructions``: how many different greedy reconstructions (a decoder that
      ignores z gives 1).
    """
    generator = torch.Generator().manual_seed(seed)
    totals: dict[str, float] = {}
    segments = np.zeros(model.num_segments)
    true_pos = false_pos = false_neg = 0
    distinct: set[bytes] = set()
    count = 0
    for lo in range(0, len(tokens), batch_size):
        batch = torch.from_numpy(tokens[lo : lo + batch_size].astype(np.int64))
        n = batch.shape[0]
        out = compute_loss(model, batch, step, generator)
        mu, sigma = model.encode(roll_tensor(batch))
        z = mu + sigma * torch.randn(mu.shape, generator=generator)
        sampled_logits, _ = model.free_run(z, 1.0, generator)
        _, greedy = model.free_run(mu, 0.0)
        for key in ("loss", "losses/r_loss", "losses/kl_bits"):
            totals[key] = totals.get(key, 0.0) + float(out[key]) * n
        totals["accuracy"] = totals.get("accuracy", 0.0) + float(out["metrics/accuracy"]) * n
        sampled_acc = (sampled_logits.argmax(-1) == batch).float().mean()
        totals["sampled_accuracy"] = totals.get("sampled_accuracy", 0.0) + float(sampled_acc) * n
        segments += out["segment_accuracy"].numpy() * n
        truth = hits_from_tokens(batch.numpy())
        guess = hits_from_tokens(greedy.numpy())
        true_pos += int((truth & guess).sum())
        false_pos += int((~truth & guess).sum())
        false_neg += int((truth & ~guess).sum())
        distinct.update(row.tobytes() for row in greedy.numpy().astype(np.uint16))
        count += n
    precision = true_pos / max(true_pos + false_pos, 1)
    recall = true_pos / max(true_pos + false_neg, 1)
    result = {
        "examples": count,
        "loss": totals["loss"] / count,
        "r_loss": totals["losses/r_loss"] / count,
        "kl_bits": totals["losses/kl_bits"] / count,
        "accuracy": totals["accuracy"] / count,
        "sampled_accuracy": totals["sampled_accuracy"] / count,
        "segment_accuracy": [round(float(a), 4) for a in segments / count],
        "hit_precision": precision,
        "hit_recall": recall,
        "hit_f1": 2 * precision * recall / max(precision + recall, 1e-12),
        "distinct_reconstructions": len(distinct),
        "num_instruments": NUM_CLASSES,
    }
    return result
