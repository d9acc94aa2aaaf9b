"""Data parallelism under ``torchrun``: each process trains on its slice of every batch.

``torchrun --nproc_per_node=N -m looped train ...`` sets ``WORLD_SIZE``, ``RANK`` and ``LOCAL_RANK``;
without them every function here is a no-op and training runs in one process. Every process draws
the same global batch (batches are a pure function of seed and step) and keeps its slice; after
``backward`` the gradients are averaged with one all-reduce per parameter. That is the arithmetic of
``DistributedDataParallel``, written out because the progressive loss runs the model several times
per step. The update then equals a single process's update on the whole batch. Only rank 0 writes
the run directory. Backend: NCCL on CUDA, gloo on CPU.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from .config import ConfigError
from .tasks import Batch


@dataclass(frozen=True)
class Context:
    rank: int
    world: int
    device: torch.device

    @property
    def main(self) -> bool:
        return self.rank == 0


def setup(device: torch.device) -> Context:
    """Join the process group when launched by ``torchrun``; ``device`` is the single-process choice."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world == 1:
        return Context(0, 1, device)
    if not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    if device.type == "cuda":
        device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", "0")))
        torch.cuda.set_device(device)
    return Context(dist.get_rank(), dist.get_world_size(), device)


def check_batch(batch_size: int, ctx: Context) -> None:
    if batch_size % ctx.world:
        raise ConfigError(f"batch size {batch_size} does not split evenly over {ctx.world} processes")


def shard(batch: Batch, ctx: Context) -> Batch:
    """This process's contiguous slice of the global ``batch``."""
    if ctx.world == 1:
        return batch
    per = len(batch) // ctx.world
    return batch.slice(ctx.rank * per, (ctx.rank + 1) * per)


def average(t: torch.Tensor, ctx: Context) -> torch.Tensor:
    """The mean of ``t`` over processes (in place)."""
    if ctx.world > 1:
        dist.all_reduce(t)
        t /= ctx.world
    return t


def average_gradients(model: torch.nn.Module, ctx: Context) -> None:
    for p in model.parameters():
        if p.grad is not None:
            average(p.grad, ctx)


def broadcast_parameters(model: torch.nn.Module, ctx: Context) -> None:
    """Start every process from rank 0's weights."""
    if ctx.world > 1:
        for t in list(model.parameters()) + list(model.buffers()):
            dist.broadcast(t.data, src=0)


def from_main(value: float, ctx: Context) -> float:
    """Rank 0's ``value`` on every process (the training clock, so a time budget gives every process
    the same learning rate and stops them all at the same step)."""
    if ctx.world == 1:
        return value
    t = torch.tensor([value], dtype=torch.float64, device=ctx.device)
    dist.broadcast(t, src=0)
    return t.item()


def barrier(ctx: Context) -> None:
    """Wait for every process. Training ends with one, so no process leaves the group while rank 0
    is still evaluating and saving (gloo can abort the process that left first)."""
    if ctx.world > 1:
        dist.barrier()


def teardown() -> None:
    if dist.is_initialized():
        dist.destroy_process_group()
