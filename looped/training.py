"""Training with the progressive loss, checkpointing and resume.

Per step (DeepThinking's progressive loss, with Huginn's split of no-grad and gradient steps):

1. draw ``n ~ U{0..N-1}`` and ``k ~ U{1..N-n}``;
2. run ``n`` iterations under ``torch.no_grad()`` and detach;
3. run ``k`` iterations with gradient; ``loss_prog = CE`` there.

``loss = (1 - alpha) * CE(after N iterations) + alpha * loss_prog``. ``alpha=0`` is plain
last-iteration loss; with ``alpha=1`` the full-depth pass is never run.

Every training batch is a pure function of ``(seed, step)``, so a resumed run sees the same data
as an uninterrupted one.
"""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable
from dataclasses import replace
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from . import distributed
from .config import ConfigError, TrainConfig, model_config, pick_device
from .evaluation import EVAL_SEED_BASE
from .model import Looped
from .runs import CHECKPOINT, ModelConfig, Run, RunConfig, RunError
from .tasks import Batch, Task, get_task
from .tasks.base import token_cross_entropy

DEPTH_SALT = 7  # the depth draws' RNG is seeded [seed, step, DEPTH_SALT], apart from the data's
BATCH_SEED_STRIDE = 1_000_003  # batch seed = seed * stride + step: one per (seed, step) while step < stride
TRAIN_ACC_SEED = EVAL_SEED_BASE - 1  # the logged training accuracy's examples, apart from every evaluation's
TRAIN_ACC_DEPTH = 2  # the logged training accuracy runs this many times the training depth N


def progressive_loss(
    model: Looped, batch: Batch, n: int, k: int, total: int, alpha: float,
    generator: torch.Generator | None = None, grad_window: int | None = None,
    criterion: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = token_cross_entropy,
) -> torch.Tensor:
    """The loss of one batch; see the module docstring. ``n`` no-grad steps, then ``k`` with grad.

    With ``n = 0`` the gradient segment starts at ``h_0`` itself, so the input embedding gets a
    gradient even when ``recall='none'``. ``generator`` draws ``h_0`` when ``init='random'``.
    ``grad_window`` W: the full-depth term also backpropagates through its last W steps only.
    ``criterion(logits, targets)`` is the task's loss (``Task.loss``).
    """
    h0 = model.initial_state(model.embed_input(batch.inputs, batch.positions), generator)
    loss = torch.zeros((), device=batch.inputs.device)
    if alpha > 0:
        loss = loss + alpha * _segment_loss(model, batch, h0, n, k, criterion)
    if alpha < 1:
        window = total if grad_window is None else min(grad_window, total)
        loss = loss + (1 - alpha) * _segment_loss(model, batch, h0, total - window, window, criterion)
    return loss


def _segment_loss(model: Looped, batch: Batch, h0: torch.Tensor, n: int, k: int, criterion) -> torch.Tensor:
    """The loss after ``n`` no-grad steps from ``h0`` and then ``k`` steps with gradient."""
    start = h0
    if n > 0:
        with torch.no_grad():
            start = model(batch.inputs, n, state=h0.detach(), positions=batch.positions, logits_at=[]).state
    out = model(batch.inputs, k, state=start, positions=batch.positions)
    return criterion(out.logits[k], batch.targets)


def draw_depths(seed: int, step: int, total: int, window: int | None = None) -> tuple[int, int]:
    """``n ~ U{0..N-1}``, ``k ~ U{1..min(N-n, window)}``, a pure function of ``(seed, step)``."""
    rng = np.random.default_rng([seed, step, DEPTH_SALT])
    n = int(rng.integers(0, total))
    k = int(rng.integers(1, min(total - n, window or total) + 1))
    return n, k


def lr_at(cfg: TrainConfig, step: int, progress: float) -> float:
    """The learning rate at ``step``, ``progress`` of the way (0 -> 1) through training: warmup (linear, or
    exponential as the paper's ``ExponentialWarmup``), then cosine decay to ``min_lr_ratio`` or step decay."""
    if step < cfg.warmup_steps:
        if cfg.warmup == "linear":
            return cfg.lr * (step + 1) / cfg.warmup_steps
        if step + 1 < cfg.warmup_steps:
            return cfg.lr * (1.0 - math.exp(-(step + 1) / cfg.warmup_steps))
    if cfg.schedule == "step":
        return cfg.lr * cfg.decay_factor ** sum(progress >= f for f in cfg.decay_at)
    cos = 0.5 * (1 + math.cos(math.pi * min(progress, 1.0)))
    return cfg.lr * (cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * cos)


def batch_seed(seed: int, step: int) -> int:
    return seed * BATCH_SEED_STRIDE + step


@torch.no_grad()
def quick_accuracy(model: Looped, task: Task, split_name: str, n: int, iters: int, device) -> float:
    batch = task.generate(task.split(split_name), n, seed=TRAIN_ACC_SEED).to(device)
    model.eval()
    gen = torch.Generator(device).manual_seed(0)
    out = model(batch.inputs, iters, positions=batch.positions, generator=gen)
    model.train()
    return task.score(task.predict(batch.inputs, out.logits[iters]), batch.targets).float().mean().item()


TIME_BAR = "{desc}: {percentage:3.0f}%|{bar}| {elapsed}<{remaining} of training time{postfix}"


class Trainer:
    """Trains the model of a run directory (``runs.Run``), logging metrics and checkpoints into it.

    Make one with ``Trainer.create`` (a new run) or ``Trainer.resume`` (continue one); ``run()``
    trains to the budget. The optimizer comes from ``make_optimizer``, and is checkpointed through
    its own ``state_dict``, so a subclass may swap it.
    """

    def __init__(self, run: Run, config: RunConfig):
        """Builds the model, weight average and optimizer of a run at step 0; writes nothing."""
        self.run_dir, self.config = run, config
        self.task, self.model_cfg, self.cfg = config.task, config.model, config.train
        self.step, self.elapsed, self.metrics = 0, 0.0, []
        cfg = self.cfg
        self.ctx = distributed.setup(pick_device(cfg.device))
        distributed.check_batch(cfg.batch_size, self.ctx)
        self.device = self.ctx.device
        if cfg.bf16 and self.device.type != "cuda":
            raise ConfigError("bf16 autocast needs a CUDA device; drop --bf16 on the CPU")
        torch.manual_seed(cfg.seed)
        self.model = config.model.build().to(self.device)
        self.average = None if cfg.ema is None else AveragedModel(
            self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema)
        )  # copied before compiling; the first update copies the weights, so the copy's values do not matter
        if cfg.compile:
            self.model.compile_step()
        self.opt = self.make_optimizer()

    @property
    def out(self) -> Path:
        return self.run_dir.path

    def make_optimizer(self) -> torch.optim.Optimizer:
        """AdamW; ``train_step`` sets each group's ``lr`` from the schedule (``lr_at``)."""
        return torch.optim.AdamW(self.model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)

    @classmethod
    def create(cls, out: str | Path, task: Task, model_cfg, train_cfg: TrainConfig) -> "Trainer":
        """A new run in ``out``, which must not hold one; writes its config.json."""
        run = Run(out)
        if run.exists():
            raise RunError(f"{out} already holds a run; use looped.resume({str(out)!r}) to continue it, or a new out",
                           cli=f"{out} already holds a run; use --resume to continue it or pick a new --out")
        if train_cfg.augment and not task.can_augment:
            raise ConfigError(f"task {task.name} has no augmentation; drop --augment")
        if train_cfg.masked_loss and not task.can_mask_loss:
            raise ConfigError(f"task {task.name} has no masked loss; drop --masked-loss")
        trainer = cls(run, RunConfig(task, model_cfg, train_cfg))
        trainer._start()
        return trainer

    @classmethod
    def resume(cls, out: str | Path, steps: int | None = None, minutes: float | None = None) -> "Trainer":
        """The run in ``out`` at its last checkpoint, given a new budget (total steps or minutes)."""
        run = Run(out)
        saved = run.config
        if saved.train is None:
            raise RunError(f"{out} has no training config to resume (is it a shipped model?)")
        trainer = cls(run, replace(saved, train=replace(saved.train, steps=steps, minutes=minutes)))
        if trainer.ctx.main:
            run.remove_stale_temporaries()
        if run.has_checkpoint():
            trainer._restore()
        trainer._start()  # records the new budget
        return trainer

    def _start(self) -> None:
        distributed.broadcast_parameters(self.model, self.ctx)
        if self.ctx.main:
            self.run_dir.write_config(self.config)

    def states(self) -> dict[str, dict]:
        """What a checkpoint holds: the state dicts of the model, optimizer and weight average."""
        states = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict()}
        if self.average is not None:
            states["ema"] = self.average.state_dict()
        return states

    def _restore(self) -> None:
        states, meta = self.run_dir.read_checkpoint()
        where = self.run_dir.path / CHECKPOINT
        try:
            self.step, self.elapsed = int(meta["step"]), float(meta["elapsed"])
            self.model.load_state_dict(states["model"])
            self.opt.load_state_dict(states["optimizer"])
            if self.average is not None:
                self.average.load_state_dict(states["ema"])
        except (KeyError, TypeError) as e:
            raise RunError(f"{where} lacks training state ({e!r})") from None
        except (RuntimeError, ValueError) as e:
            raise RunError(f"{where} does not match the run config: {str(e).splitlines()[0]}") from None
        self.metrics = [m for m in self.run_dir.read_metrics() if m.get("step", 0) <= self.step]

    def save(self) -> None:
        """Metrics first, then the checkpoint, then the plain weights; each write is atomic (rank 0 only)."""
        if not self.ctx.main:
            return
        self.run_dir.write_metrics(self.metrics)
        meta = {"step": str(self.step), "elapsed": repr(self.elapsed), "world_size": str(self.ctx.world)}
        self.run_dir.write_checkpoint(self.states(), meta)
        self.run_dir.write_weights(self.weights())

    def weights(self) -> Looped:
        """The model a run hands on: the weight average when ``ema`` is set, else the trained weights."""
        return self.model if self.average is None else self.average.module

    def progress(self) -> float:
        parts = []
        if self.cfg.steps is not None:
            parts.append(self.step / self.cfg.steps)
        if self.cfg.minutes is not None:
            parts.append(self.elapsed / (60 * self.cfg.minutes))
        return max(parts)

    def train_step(self) -> tuple[float, float]:
        cfg = self.cfg
        names = cfg.train_splits or self.task.train_splits
        split = self.task.split(names[self.step % len(names)])
        seed = batch_seed(cfg.seed, self.step)
        batch = self.task.train_batch(split, cfg.batch_size, seed)
        if cfg.augment:
            batch = self.task.augment(batch, seed)
        batch = distributed.shard(batch, self.ctx).to(self.device)
        n, k = draw_depths(cfg.seed, self.step, cfg.train_iters, cfg.grad_window)
        for group in self.opt.param_groups:
            group["lr"] = lr_at(cfg, self.step, self.progress())
        gen = torch.Generator(self.device).manual_seed(seed)
        criterion = functools.partial(self.task.masked_loss, batch.inputs) if cfg.masked_loss else self.task.loss
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=cfg.bf16):
            loss = progressive_loss(
                self.model, batch, n, k, cfg.train_iters, cfg.alpha, gen, cfg.grad_window, criterion
            )
        if not torch.isfinite(loss):
            raise FloatingPointError(
                f"non-finite loss at step {self.step + 1}; the last good checkpoint in {self.out} is kept"
            )
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        distributed.average_gradients(self.model, self.ctx)
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), cfg.grad_clip)
        self.opt.step()
        if self.average is not None:
            self.average.update_parameters(self.model)
        self.step += 1
        return distributed.average(loss.detach().clone(), self.ctx).item(), grad_norm.item()

    def run(self, show_progress: bool = True,
            on_step: Callable[["Trainer", dict], None] | None = None) -> Path:
        """Train to the budget, then return the run directory.

        ``on_step(trainer, row)`` is called after every step with that step's metrics row, after any
        checkpoint; its time does not count on the training clock (``elapsed``).
        """
        cfg = self.cfg
        self.model.train()
        bar, shown, first, start = self._progress_bar(show_progress), {}, self.step, time.perf_counter()
        last = start
        while self.progress() < 1.0:
            loss, grad_norm = self.train_step()
            now = time.perf_counter()
            self.elapsed = distributed.from_main(self.elapsed + now - last, self.ctx)
            last = now
            row = {"step": self.step, "loss": loss, "grad_norm": grad_norm, "lr": self.opt.param_groups[0]["lr"],
                   "elapsed_s": round(self.elapsed, 3)}
            if self.ctx.main and (self.step % cfg.eval_every == 0 or self.progress() >= 1.0):
                row["train_acc"] = quick_accuracy(  # can it solve training inputs at all
                    self.weights(), self.task, (cfg.train_splits or self.task.train_splits)[-1], cfg.eval_size,
                    TRAIN_ACC_DEPTH * cfg.train_iters, self.device,
                )
                shown.update(loss=f"{loss:.4f}", acc=f"{row['train_acc']:.3f}")
            self.metrics.append(row)
            if self.step % cfg.checkpoint_every == 0 or self.progress() >= 1.0:
                self.save()
                last = time.perf_counter()
            if on_step is not None:
                on_step(self, row)
                last = time.perf_counter()
            if cfg.minutes is not None:
                shown.update(step=self.step, rate=f"{(self.step - first) / (time.perf_counter() - start):.2f} step/s")
            bar.set_postfix(shown, refresh=False)
            bar.update(self._bar_position() - bar.n)
        bar.close()
        distributed.barrier(self.ctx)
        return self.out

    def _progress_bar(self, show: bool) -> tqdm:
        """Over steps for a step budget; with ``minutes``, over seconds of training time, with time left
        and steps in the postfix (a run with both budgets stops at whichever comes first)."""
        common = {"disable": not (show and self.ctx.main), "desc": f"train {self.out.name}", "dynamic_ncols": True}
        if self.cfg.minutes is None:
            return tqdm(total=self.cfg.steps, initial=self.step, unit="step", **common)
        return tqdm(total=60 * self.cfg.minutes, initial=self._bar_position(), bar_format=TIME_BAR, **common)

    def _bar_position(self) -> float:
        return self.step if self.cfg.minutes is None else min(self.progress(), 1.0) * 60 * self.cfg.minutes


def train(task: str | Task | type[Task], out: str | Path, config: TrainConfig,
          model: ModelConfig | None = None, data: str | Path | None = None,
          progress: bool = True) -> Path:
    """Train a new run in the directory ``out`` (which must not hold one) and return its path.

    Args:
        task: a registered name (``"prefix-sums"``), ``"package.module:ClassName"``, a ``Task``
            subclass or instance.
        config: the training config (budget, optimizer, depth N, seed).
        model: the model config; default ``model_config(task)``.
        data: a data directory for tasks that read files (``"sequences"``).
        progress: show a progress bar.
    """
    task = get_task(task, data)
    model = model_config(task) if model is None else model
    try:
        return Trainer.create(out, task, model, config).run(show_progress=progress)
    finally:
        distributed.teardown()


def resume(out: str | Path, steps: int | None = None, minutes: float | None = None, progress: bool = True) -> Path:
    """Continue the run in ``out`` to a new budget (the total steps or minutes); returns its path."""
    try:
        return Trainer.resume(out, steps, minutes).run(show_progress=progress)
    finally:
        distributed.teardown()
