"""Multi-process training on PyTorch's own engine: ``torchrun`` + DistributedDataParallel.

``musicvae train`` needs no flag to run distributed: under ``torchrun`` the environment holds
``RANK``/``WORLD_SIZE``/``LOCAL_RANK``/``MASTER_ADDR``/``MASTER_PORT`` and :func:`setup` joins the
process group (gloo on CPU, nccl on GPU).  Without them everything stays a plain single process.

What every rank does and what only rank 0 does is decided in ``musicvae.training.loop``; this module holds
the small collective helpers it needs, written so a single process never touches
``torch.distributed`` at all (single-process training stays bit-for-bit what it was).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.distributed as dist

DEVICES = ("auto", "cpu", "cuda")


@dataclass(frozen=True)
class DistContext:
    """Where this process stands: rank, world size and the device it computes on."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    owns_group: bool = False  # True when setup() created the process group (and teardown() ends it)

    @property
    def enabled(self) -> bool:
        return self.world_size > 1

    @property
    def is_main(self) -> bool:
        return self.rank == 0


def resolve_device(preference: str, local_rank: int = 0) -> torch.device:
    """``auto`` picks this rank's GPU when one is visible, else the CPU."""
    if preference not in DEVICES:
        raise ValueError(f"unknown device {preference!r}: use one of {', '.join(DEVICES)}")
    if preference == "auto":
        preference = "cuda" if torch.cuda.is_available() else "cpu"
    if preference == "cpu":
        return torch.device("cpu")
    if not torch.cuda.is_available():
        raise ValueError("--device cuda, but PyTorch sees no GPU here (torch.cuda.is_available() is False)")
    per_node, gpus = int(os.environ.get("LOCAL_WORLD_SIZE", "1")), torch.cuda.device_count()
    if per_node > gpus:
        raise ValueError(f"{per_node} processes on this node but {gpus} GPU(s): use --nproc_per_node {gpus}")
    return torch.device("cuda", local_rank)


def launched_world_size() -> int:
    return int(os.environ.get("WORLD_SIZE", "1"))


def default_num_threads() -> int:
    """All cores for one process; under torchrun each of the node's processes gets its share."""
    per_node = max(int(os.environ.get("LOCAL_WORLD_SIZE", "1")), 1)
    return max((os.cpu_count() or 1) // per_node, 1)


def setup(device: str = "auto") -> DistContext:
    """Join the process group torchrun describes (or reuse one already initialized)."""
    if not dist.is_initialized() and launched_world_size() <= 1:
        return DistContext(device=resolve_device(device))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    chosen = resolve_device(device, local_rank)
    if chosen.type == "cuda":
        torch.cuda.set_device(chosen)
    owns = False
    if not dist.is_initialized():
        dist.init_process_group("nccl" if chosen.type == "cuda" else "gloo")
        owns = True
    return DistContext(dist.get_rank(), dist.get_world_size(), local_rank, chosen, owns)


def teardown(ctx: DistContext) -> None:
    if ctx.owns_group and dist.is_initialized():
        dist.destroy_process_group()


def agree(ctx: DistContext, facts: dict, error: str | None = None) -> str | None:
    """Compare what every rank believes (config, data fingerprint, ...) and its own set-up error.

    Returns one line explaining the first problem found, the same on every rank (so they all stop
    instead of some hanging in a collective), or None when everything matches.
    """
    if not ctx.enabled:
        return error
    gathered: list = [None] * ctx.world_size
    dist.all_gather_object(gathered, (error, facts))
    for rank, (rank_error, _) in enumerate(gathered):
        if rank_error:
            return f"rank {rank}: {rank_error}"
    reference = gathered[0][1]
    for rank, (_, rank_facts) in enumerate(gathered[1:], start=1):
        differ = [key for key in reference if reference[key] != rank_facts.get(key)]
        if differ:
            return (f"rank {rank} disagrees with rank 0 on {', '.join(differ)}: start every rank with the same "
                    "command line and the same prepared data")
    return None


def broadcast_object(ctx: DistContext, value=None):
    """Rank 0's ``value`` on every rank (picklable objects; tensors should be on the CPU)."""
    if not ctx.enabled:
        return value
    box = [value if ctx.is_main else None]
    dist.broadcast_object_list(box, src=0)
    return box[0]


def any_rank(ctx: DistContext, flag: bool) -> bool:
    """True on every rank when ``flag`` is True on at least one (e.g. a stop request)."""
    if not ctx.enabled:
        return flag
    tensor = torch.tensor([1.0 if flag else 0.0], device=ctx.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.MAX)
    return bool(tensor.item() > 0)


def mean_over_ranks(ctx: DistContext, scalars: dict[str, float]) -> dict[str, float]:
    """Average logged numbers over ranks (every rank must call this at the same step)."""
    if not ctx.enabled or not scalars:
        return scalars
    keys = sorted(scalars)
    tensor = torch.tensor([float(scalars[k]) for k in keys], dtype=torch.float64, device=ctx.device)
    dist.all_reduce(tensor, op=dist.ReduceOp.SUM)
    return dict(zip(keys, (tensor / ctx.world_size).tolist()))


def barrier(ctx: DistContext) -> None:
    if ctx.enabled:
        dist.barrier()


def step_seed(seed: int, step: int, rank: int) -> int:
    """The RNG seed of one rank at one step under DDP: independent noise per rank, exact resume."""
    return int(np.random.SeedSequence([seed, step, rank]).generate_state(1, np.uint64)[0] >> 1)
