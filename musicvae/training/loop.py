"""The training loop (``musicvae train``); the metrics it records come from ``evaluation.py``.

Training resumes by itself: re-running the same command restores model, optimizer, step,
data position and RNG state from the newest complete checkpoint in ``run_dir``.

The same loop runs one process or many (``torchrun``, see ``musicvae.training.distributed`` and
docs/scaling.md): with one process nothing distributed is touched and training is exactly what it
always was; with several, rank 0 alone logs, evaluates and writes checkpoints.
"""

from __future__ import annotations

import json
import math
import signal
import time
from pathlib import Path

import numpy as np
import torch

from musicvae.configs import Config
from musicvae.data.storage import ShardedSplit, ShardStream, fingerprint, is_sharded, load_split, read_windows
from musicvae.fileio import atomic_folder
from musicvae.model.groove import build_model
from musicvae.model.network import MusicVAE
from musicvae.model.objective import compute_loss, learning_rate_at
from musicvae.training import checkpoint as ckpt
from musicvae.training import distributed
from musicvae.training.augment import training_batch
from musicvae.training.distributed import DistContext
from musicvae.training.evaluation import evaluate, evaluate_grooves


class TrainingError(RuntimeError):
    """A training set-up problem with a one-line explanation."""


def batches_for_epoch(num_examples: int, batch_size: int, seed: int, epoch: int) -> np.ndarray:
    """[num_batches, batch_size] example indices; a fixed permutation per (seed, epoch)."""
    order = np.random.default_rng([seed, epoch]).permutation(num_examples)
    usable = (num_examples // batch_size) * batch_size  # drop_remainder, as Magenta does
    return order[:usable].reshape(-1, batch_size)


class _InMemoryBatches:
    """A small corpus held in memory: one seeded permutation of all windows per epoch."""

    def __init__(self, tokens: np.ndarray, global_batch: int, seed: int) -> None:
        self.tokens, self.global_batch, self.seed = tokens, global_batch, seed
        self._epoch: int | None = None
        self._schedule = np.zeros((0, global_batch), np.int64)

    def _schedule_for(self, epoch: int) -> np.ndarray:
        if self._epoch != epoch:
            self._schedule = batches_for_epoch(len(self.tokens), self.global_batch, self.seed, epoch)
            self._epoch = epoch
        return self._schedule

    def num_batches(self, epoch: int) -> int:
        return len(self._schedule_for(epoch))

    def batch(self, epoch: int, b: int, lo: int, hi: int) -> np.ndarray:
        return self.tokens[self._schedule_for(epoch)[b, lo:hi]]

    def close(self) -> None:
        pass


class _Objective(torch.nn.Module):
    """The loss as a module, so DistributedDataParallel can wrap it (and sync the model's gradients)."""

    def __init__(self, model: MusicVAE) -> None:
        super().__init__()
        self.model = model

    def forward(self, batch: torch.Tensor, step: int, encoder_batch: torch.Tensor | None = None) -> dict:
        return compute_loss(self.model, batch, step, encoder_tokens=encoder_batch)


def cpu_has_bf16() -> bool:
    """True where the CPU has bfloat16 units (AVX512-BF16 or AMX), read from /proc/cpuinfo."""
    try:
        flags = Path("/proc/cpuinfo").read_text()
    except OSError:
        return False
    return any(flag in flags.split() for flag in ("avx512_bf16", "amx_bf16"))


def allocator() -> str:
    """'jemalloc' when this process has it loaded (LD_PRELOAD), else 'glibc malloc'."""
    try:
        return "jemalloc" if "libjemalloc" in Path("/proc/self/maps").read_text() else "glibc malloc"
    except OSError:
        return "unknown allocator"


def pick_bf16(bf16: bool | None, device_type: str) -> bool:
    """``None`` (the CLI's default) -> bfloat16 where the hardware has it: a CUDA GPU that supports it,
    a CPU with AVX512-BF16 or AMX (measured equal loss at equal steps, docs/performance.md)."""
    if bf16 is not None:
        return bf16
    if device_type == "cuda":
        return torch.cuda.is_bf16_supported()
    return device_type == "cpu" and cpu_has_bf16()


def make_optimizer(model: torch.nn.Module, hp) -> torch.optim.Optimizer:
    """Adam as Magenta; AdamW (decoupled weight decay) when ``weight_decay`` > 0."""
    if hp.weight_decay > 0:
        return torch.optim.AdamW(model.parameters(), lr=hp.learning_rate, betas=(0.9, 0.999), eps=1e-8,
                                 weight_decay=hp.weight_decay)
    return torch.optim.Adam(model.parameters(), lr=hp.learning_rate, betas=(0.9, 0.999), eps=1e-8)


def _open_data(config: Config, data_dir: Path, ctx: DistContext, seed: int, eval_examples: int | None,
               shuffle_shards: int):
    """(batch source, validation tokens or None, data fingerprint, training windows).

    Groove models get groove frames [N, T, 27] instead of tokens, from the in-memory form only."""
    hp = config.hparams
    global_batch = hp.batch_size * ctx.world_size
    groove = hp.output == "groove"
    if groove and is_sharded(data_dir):
        raise TrainingError(f"{config.name} trains on velocities and offsets, which the sharded form does not "
                            "keep: prepare the data without --shard_windows")
    if is_sharded(data_dir):
        shards = ShardedSplit(data_dir, "train")
        steps_per_window, count = shards.steps, len(shards)
    else:
        train_split = load_split(data_dir, "train")
        steps_per_window, count = train_split.tokens.shape[1], len(train_split)
        if groove and not train_split.has_feel:
            raise TrainingError(f"{data_dir} was prepared before groove models (no velocities or offsets): "
                                "re-run `musicvae prepare` into it")
    if steps_per_window != hp.max_seq_len:
        raise TrainingError(
            f"the data has {steps_per_window}-step windows but {config.name} needs {hp.max_seq_len}: "
            f"re-run prepare with --slice_bars {hp.slice_bars}"
        )
    if count < global_batch:
        per_rank = f" x {ctx.world_size} processes" if ctx.enabled else ""
        raise TrainingError(
            f"only {count} training windows for batch_size {hp.batch_size}{per_rank}: "
            "add data or pass --hparams=batch_size=N"
        )
    validation = None
    if eval_examples is not None:
        try:
            if groove:
                validation = load_split(data_dir, "validation").groove_frames(slice(0, eval_examples))
            else:
                validation = read_windows(data_dir, "validation", eval_examples)
        except FileNotFoundError:
            validation = None
        if validation is not None and len(validation) == 0:
            validation = None
    if is_sharded(data_dir):
        source = ShardStream(shards, global_batch, seed, shuffle_shards)
    else:
        source = _InMemoryBatches(train_split.groove_frames() if groove else train_split.tokens, global_batch, seed)
    return source, validation, fingerprint(data_dir), count


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
    device: str = "cpu",
    bf16: bool | None = False,
    shuffle_shards: int = 8,
    init_from: Path | None = None,
) -> dict:
    """Train (or resume) a run; under ``torchrun`` every process calls this and they train as one.

    ``hparams.batch_size`` is the per-process batch: the global batch is ``batch_size * world size``
    (rank r takes rows ``[r * batch_size, (r + 1) * batch_size)`` of each global batch).
    ``device``: auto | cpu | cuda; ``bf16``: autocast the forward pass to bfloat16 (fp32 master weights),
    on a GPU or on a CPU with bfloat16 units (AVX512-BF16/AMX); None = wherever the hardware has them.
    ``init_from``: a model folder (e.g. a shipped checkpoint) whose weights and step start a *new* run
    (the optimizer starts fresh; Magenta's exponential decay goes on from that step, a cosine schedule
    starts anew with its warm-up); ignored when ``run_dir`` already holds a checkpoint to resume.
    """
    ctx = distributed.setup(device)
    try:
        return _train(ctx, config, Path(run_dir), Path(data_dir), num_steps, checkpoint_secs, keep_checkpoints,
                      eval_every_steps, eval_examples, log_every_steps, seed, progress, bf16, shuffle_shards,
                      init_from)
    finally:
        distributed.teardown(ctx)


def _train(ctx: DistContext, config: Config, run_dir: Path, data_dir: Path, num_steps: int, checkpoint_secs: float,
           keep_checkpoints: int, eval_every_steps: int, eval_examples: int, log_every_steps: int, seed: int,
           progress: bool, bf16: bool, shuffle_shards: int, init_from: Path | None = None) -> dict:
    from torch.utils.tensorboard import SummaryWriter
    from tqdm import tqdm

    hp = config.hparams
    main = ctx.is_main
    if main:
        run_dir.mkdir(parents=True, exist_ok=True)
    error, facts = None, {}
    chosen = "chosen" if bf16 is None else "asked for"
    bf16 = pick_bf16(bf16, ctx.device.type)
    if main:  # the run's log says which path it took
        print(f"training path: {ctx.device.type}, {'bfloat16 autocast' if bf16 else 'float32'} ({chosen}), "
              f"{allocator()}, {torch.get_num_threads()} torch thread(s)", flush=True)
    try:
        if bf16 and ctx.device.type == "cpu" and not cpu_has_bf16():
            raise TrainingError("--bf16 needs a GPU or a CPU with bfloat16 units (lscpu flags avx512_bf16 or "
                                "amx_bf16); this CPU has neither: train in float32")
        wanted = eval_examples if eval_every_steps and main else None
        source, validation, data_fp, count = _open_data(config, data_dir, ctx, seed, wanted, shuffle_shards)
        facts = {"config": config.name, "hparams": hp.to_dict(), "data fingerprint": data_fp,
                 "training windows": count, "num_steps": num_steps, "seed": seed, "bf16": bf16,
                 "device type": ctx.device.type}
    except (TrainingError, FileNotFoundError, ValueError, KeyError) as problem:
        if not ctx.enabled:
            raise
        error = str(problem)
    problem = distributed.agree(ctx, facts, error)
    if problem:
        raise TrainingError(problem)

    torch.manual_seed(seed)
    model = build_model(hp).to(ctx.device)
    optimizer = make_optimizer(model, hp)
    state = {"step": 0, "epoch": 0, "batch_in_epoch": 0, "elapsed_secs": 0.0, "seed": seed,
             "best_r_loss": None, "best_step": None}
    resumed, saved_world = _resume(ctx, run_dir, config, model, optimizer, state)
    if not resumed and init_from is not None:
        state["step"] = _warm_start(model, Path(init_from), config)
        if hp.lr_schedule == "cosine":  # a finite-budget schedule starts (with its warm-up) at the new run
            state["schedule_start"] = state["step"]
        if main:
            print(f"starting from the weights of {init_from} (step {state['step']})", flush=True)
    if resumed and main:
        print(f"resuming from {resumed} (step {state['step']})", flush=True)
        if saved_world != ctx.world_size:
            print(f"note: {resumed} was saved by {saved_world} process(es), now {ctx.world_size}: the global "
                  f"batch becomes {hp.batch_size * ctx.world_size} windows", flush=True)
    model.train()
    objective: torch.nn.Module = _Objective(model)
    if ctx.enabled:
        from torch.nn.parallel import DistributedDataParallel

        objective = DistributedDataParallel(
            objective, device_ids=[ctx.device.index] if ctx.device.type == "cuda" else None)

    writer = None
    stop = {"now": False}

    def request_stop(signum, frame):  # Ctrl-C / SIGTERM: finish the step, save, exit cleanly
        stop["now"] = True

    previous_handlers = {s: signal.signal(s, request_stop) for s in (signal.SIGINT, signal.SIGTERM)}

    def save() -> None:
        meta = ckpt.model_meta(config, state["step"], data_fp)
        saved = dict(state)
        if ctx.enabled:
            saved["world_size"] = ctx.world_size
        if ctx.device.type == "cuda":
            saved["cuda_rng"] = torch.cuda.get_rng_state(ctx.device).tolist()
        ckpt.save_training_checkpoint(run_dir, model, optimizer, meta, saved, keep_checkpoints)

    lo, hi = ctx.rank * hp.batch_size, (ctx.rank + 1) * hp.batch_size
    bar = tqdm(total=num_steps, initial=min(state["step"], num_steps), desc="train", disable=not (progress and main))
    last_save = time.monotonic()
    started = time.monotonic()
    base_elapsed = state["elapsed_secs"]
    out: dict = {}
    try:
        writer = SummaryWriter(str(run_dir)) if main else None
        while state["step"] < num_steps and not distributed.any_rank(ctx, stop["now"]):
            if state["batch_in_epoch"] >= source.num_batches(state["epoch"]):
                state["epoch"] += 1
                state["batch_in_epoch"] = 0
                continue
            step = state["step"]
            tokens = source.batch(state["epoch"], state["batch_in_epoch"], lo, hi)
            targets, encoder_view = training_batch(tokens, hp, distributed.step_seed(seed, 0, ctx.rank), step)
            batch = torch.from_numpy(targets if targets.ndim == 3 else targets.astype(np.int64))
            batch = batch.to(ctx.device, non_blocking=True)
            encoder_batch = None
            if encoder_view is not targets:
                encoder_batch = torch.from_numpy(encoder_view).to(ctx.device, non_blocking=True)
            lr = learning_rate_at(hp, step - state.get("schedule_start", 0))
            for group in optimizer.param_groups:
                group["lr"] = lr
            if ctx.enabled:  # each rank its own noise; a pure function of (seed, step, rank) for exact resume
                torch.manual_seed(distributed.step_seed(seed, step, ctx.rank))
            with torch.autocast(ctx.device.type, dtype=torch.bfloat16, enabled=bf16):
                out = objective(batch, step, encoder_batch)
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
                scalars = distributed.mean_over_ranks(ctx, scalars)
                if main:
                    for key, value in scalars.items():
                        writer.add_scalar(key, value, state["step"])
                    bar.set_postfix(loss=f"{scalars['loss']:.1f}", acc=f"{scalars['metrics/accuracy']:.3f}",
                                    kl=f"{scalars['losses/kl_bits']:.0f}")
            if validation is not None and state["step"] % eval_every_steps == 0:
                record_validation(model, validation, state, writer, run_dir, hp.batch_size,
                                  ckpt.model_meta(config, state["step"], data_fp))
            if main and time.monotonic() - last_save >= checkpoint_secs:
                save()
                last_save = time.monotonic()
        if main:
            save()
        distributed.barrier(ctx)
    finally:
        bar.close()
        if writer is not None:
            writer.close()
        source.close()
        for sig, handler in previous_handlers.items():
            signal.signal(sig, handler)
    return {"step": state["step"], **{k: float(v.detach()) for k, v in out.items() if k != "segment_accuracy"}}


def _warm_start(model: MusicVAE, folder: Path, config: Config) -> int:
    """Load a model folder's weights into a fresh run; returns its step (the LR schedule goes on)."""
    from safetensors.torch import load_file

    folder = ckpt.resolve_model_dir(folder)
    meta = ckpt.read_meta(folder)
    mine, theirs = build_model(config.hparams).state_dict(), load_file(str(folder / ckpt.MODEL_FILE))
    if {k: tuple(v.shape) for k, v in mine.items()} != {k: tuple(v.shape) for k, v in theirs.items()}:
        raise TrainingError(f"{folder} holds a {meta['config']} model whose shapes differ from {config.name}")
    model.load_state_dict({k: v.float() for k, v in theirs.items()})
    return int(meta["step"])


def _resume(ctx: DistContext, run_dir: Path, config: Config, model: MusicVAE, optimizer: torch.optim.Optimizer,
            state: dict) -> tuple[str | None, int]:
    """Restore the newest checkpoint on rank 0 and hand it to the other ranks.

    Returns the checkpoint's name (None for a fresh run) and the number of processes that saved it.
    """
    error = name = None
    if ctx.is_main:
        latest = ckpt.latest_checkpoint(run_dir)
        if latest is not None:
            meta = ckpt.read_meta(latest)
            if meta["config"] != config.name or meta["hparams"] != config.hparams.to_dict():
                error = f"{run_dir} holds a run of a different config/hparams: use a new --run_dir"
            else:
                state.update(ckpt.restore_training(latest, model, optimizer))
                name = latest.name
        if error and not ctx.enabled:
            raise TrainingError(error)
    cuda_rng = state.pop("cuda_rng", None)
    if cuda_rng is not None and ctx.device.type == "cuda" and not ctx.enabled:
        torch.cuda.set_rng_state(torch.tensor(cuda_rng, dtype=torch.uint8), ctx.device)
    saved_world = state.pop("world_size", 1)
    if ctx.enabled:  # the model itself reaches the other ranks in DistributedDataParallel's constructor
        shared = (error, name, dict(state), _to_cpu(optimizer.state_dict()) if name else None)
        error, name, shared_state, optimizer_state = distributed.broadcast_object(ctx, shared)
        if error:
            raise TrainingError(error)
        state.update(shared_state)
        if name and not ctx.is_main:
            optimizer.load_state_dict(optimizer_state)
    return name, saved_world


def _save_best(folder: Path, model: MusicVAE, meta: dict) -> None:
    """A model folder (weights + config.json) replaced as a whole, never half-written."""
    with atomic_folder(folder) as staged:
        ckpt.write_model_files(staged, model, meta)


def _to_cpu(value):
    if torch.is_tensor(value):
        return value.detach().cpu()
    if isinstance(value, dict):
        return {k: _to_cpu(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_to_cpu(v) for v in value)
    return value


def clip_gradients(model: MusicVAE, clip: float, clip_to_zero: float) -> float:
    """Global-norm clipping; above ``clip_to_zero`` every gradient becomes zero (spec §2.6)."""
    params = [p for p in model.parameters() if p.grad is not None]
    norm = float(torch.nn.utils.clip_grad_norm_(params, clip))
    if not math.isfinite(norm) or norm > clip_to_zero:
        for p in params:
            p.grad.zero_()
    return norm


def record_validation(model, tokens: np.ndarray, state: dict, writer, run_dir: Path, batch_size: int,
                      meta: dict | None = None) -> dict:
    """Validation metrics into TensorBoard and curve.jsonl; the best r_loss so far is kept in run_dir/best.

    ``tokens``: token windows, or groove frames [N, T, 27] for a groove model."""
    model.eval()
    judge = evaluate_grooves if model.hp.output == "groove" else evaluate
    metrics = judge(model, tokens, batch_size=min(batch_size, 256), step=state["step"])
    model.train()
    if meta is not None and (state.get("best_r_loss") is None or metrics["r_loss"] < state["best_r_loss"]):
        state["best_r_loss"], state["best_step"] = metrics["r_loss"], state["step"]
        _save_best(run_dir / "best", model, {**meta, "metrics": {"validation": metrics}})
    for key, value in metrics.items():
        if isinstance(value, float):
            writer.add_scalar(f"validation/{key}", value, state["step"])
    with open(run_dir / "curve.jsonl", "a") as handle:
        row = {"step": state["step"], "wall_hours": round(state["elapsed_secs"] / 3600, 4), **metrics}
        handle.write(json.dumps(row) + "\n")
    return metrics
