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
import json
import math
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, fields, replace
from pathlib import Path

import numpy as np
import torch
from torch.optim.swa_utils import AveragedModel, get_ema_multi_avg_fn
from tqdm import tqdm

from . import distributed, runs
from .io import atomic_write, write_json
from .evaluate import EVAL_SEED_BASE
from .dtnet import DTNetConfig
from .config import (ARCHITECTURES, DEFAULT_ARCH, ConfigError, check_field_types, config_from_dict, from_known_fields,
                     pick_device, setting)
from .model import Looped, LoopedConfig
from .tasks import Batch, Task, get_task, task_from_record, task_record
from .tasks.base import token_cross_entropy

DEPTH_SALT = 7  # the depth draws' RNG is seeded [seed, step, DEPTH_SALT], apart from the data's
BATCH_SEED_STRIDE = 1_000_003  # batch seed = seed * stride + step: one per (seed, step) while step < stride
TRAIN_ACC_SEED = EVAL_SEED_BASE - 1  # the logged training accuracy's examples, apart from every evaluation's
TRAIN_ACC_DEPTH = 2  # the logged training accuracy runs this many times the training depth N


@dataclass
class TrainConfig:
    seed: int = setting(0, "seed of the initialization, the data and the depth draws")
    steps: int | None = setting(None, "budget: total optimizer steps")
    minutes: float | None = setting(None, "budget: total minutes of training time")
    batch_size: int = setting(128, "examples per step (over all processes)")
    lr: float = setting(2e-3, "peak AdamW learning rate")
    weight_decay: float = setting(0.01, "AdamW weight decay")
    warmup_steps: int = setting(200, "linear learning-rate warmup steps")
    min_lr_ratio: float = setting(0.1, "the cosine decay ends at this fraction of --lr")
    grad_clip: float = setting(1.0, "clip the gradient norm to this")
    train_iters: int = setting(16, "N, the maximum training depth")
    alpha: float = setting(1.0, "progressive-loss weight (0: last-iteration loss)")
    grad_window: int | None = setting(
        None, "backpropagate through at most this many iterations (memory flat in --train-iters)")
    ema: float | None = setting(
        None, "keep an exponential moving average of the weights with this decay (e.g. 0.999); it is what gets saved")
    eval_every: int = setting(250, "log training accuracy every this many steps")
    eval_size: int = setting(256, "examples of that accuracy")
    checkpoint_every: int = setting(250, "save a checkpoint every this many steps")
    train_splits: tuple[str, ...] | None = setting(
        None, "training splits, used in turn (comma-separated; default: the task's)")
    augment: bool = setting(False, "random validity-preserving transforms of training data")
    masked_loss: bool = setting(
        False, "train with the task's loss over valid outputs only (chess: a softmax over the legal moves)")
    compile: bool = setting(False, "torch.compile the loop step")
    bf16: bool = setting(False, "bfloat16 autocast of the forward passes (CUDA only)")
    device: str = setting("auto", "auto (CUDA if present), cpu, cuda, cuda:1, ...")

    def __post_init__(self) -> None:
        check_field_types(self)
        if self.steps is None and self.minutes is None:
            raise ConfigError("give a budget: --steps N or --minutes M")
        if self.seed < 0:
            raise ConfigError(f"seed must not be negative, got {self.seed}")
        if self.steps is not None and self.steps < 1:
            raise ConfigError(f"steps must be positive, got {self.steps}")
        if self.minutes is not None and not self.minutes > 0:
            raise ConfigError(f"minutes must be positive, got {self.minutes}")
        if not 0.0 <= self.alpha <= 1.0:
            raise ConfigError(f"alpha must lie in [0, 1], got {self.alpha}")
        for name in ("batch_size", "train_iters", "eval_every", "eval_size", "checkpoint_every"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)}")
        for name in ("lr", "grad_clip"):
            if not getattr(self, name) > 0:
                raise ConfigError(f"{name} must be positive, got {getattr(self, name)}")
        if self.train_splits is not None:
            self.train_splits = tuple(str(s) for s in self.train_splits)
            if not self.train_splits:
                raise ConfigError("train_splits must name at least one split")
        if self.grad_window is not None and self.grad_window < 1:
            raise ConfigError(f"grad_window must be a positive integer, got {self.grad_window}")
        if self.ema is not None and not 0.0 < self.ema < 1.0:
            raise ConfigError(f"ema must lie in (0, 1), got {self.ema}")
        if self.warmup_steps < 0 or self.weight_decay < 0:
            raise ConfigError("warmup_steps and weight_decay must not be negative")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict) -> "TrainConfig":
        """Also reads run configs that repeated the task here (it is the run config's top-level ``task``)."""
        return from_known_fields(cls, {k: v for k, v in d.items() if k != "task"}, "train")


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
    """Linear warmup, then cosine decay to ``min_lr_ratio`` as ``progress`` goes 0 -> 1."""
    if step < cfg.warmup_steps:
        return cfg.lr * (step + 1) / cfg.warmup_steps
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
    """Owns a run directory: trains, logs metrics and checkpoints.

    Make one with ``Trainer.create`` (a new run) or ``Trainer.resume`` (continue one); ``run()``
    trains to the budget. The optimizer comes from ``make_optimizer``, and is checkpointed through
    its own ``state_dict``, so a subclass may swap it.
    """

    def __init__(self, out: Path, task: Task, model_cfg: LoopedConfig | DTNetConfig, cfg: TrainConfig):
        """Builds the model, weight average and optimizer of a run at step 0; writes nothing."""
        self.out, self.task, self.model_cfg, self.cfg = Path(out), task, model_cfg, cfg
        self.step, self.elapsed, self.metrics = 0, 0.0, []
        self.ctx = distributed.setup(pick_device(cfg.device))
        distributed.check_batch(cfg.batch_size, self.ctx)
        self.device = self.ctx.device
        if cfg.bf16 and self.device.type != "cuda":
            raise ConfigError("bf16 autocast needs a CUDA device; drop --bf16 on the CPU")
        torch.manual_seed(cfg.seed)
        self.model = model_cfg.build().to(self.device)
        self.average = None if cfg.ema is None else AveragedModel(
            self.model, multi_avg_fn=get_ema_multi_avg_fn(cfg.ema)
        )  # copied before compiling; the first update copies the weights, so the copy's values do not matter
        if cfg.compile:
            self.model.compile_step()
        self.opt = self.make_optimizer()

    def make_optimizer(self) -> torch.optim.Optimizer:
        """AdamW; ``train_step`` sets each group's ``lr`` from the schedule (``lr_at``)."""
        return torch.optim.AdamW(self.model.parameters(), lr=self.cfg.lr, weight_decay=self.cfg.weight_decay)

    @classmethod
    def create(cls, out: str | Path, task: Task, model_cfg: LoopedConfig | DTNetConfig,
               train_cfg: TrainConfig) -> "Trainer":
        """A new run in ``out``, which must not hold one; writes its config.json."""
        out = Path(out)
        if (out / runs.CONFIG).exists():
            raise runs.RunError(f"{out} already holds a run; use --resume to continue it or pick a new --out")
        if train_cfg.augment and not task.can_augment:
            raise ConfigError(f"task {task.name} has no augmentation; drop --augment")
        if train_cfg.masked_loss and not task.can_mask_loss:
            raise ConfigError(f"task {task.name} has no masked loss; drop --masked-loss")
        trainer = cls(out, task, model_cfg, train_cfg)
        trainer._start()
        return trainer

    @classmethod
    def resume(cls, out: str | Path, steps: int | None = None, minutes: float | None = None) -> "Trainer":
        """The run in ``out`` at its last checkpoint, given a new budget (total steps or minutes)."""
        out = Path(out)
        task, model_cfg, train_cfg = read_run(out)
        trainer = cls(out, task, model_cfg, replace(train_cfg, steps=steps, minutes=minutes))
        if trainer.ctx.main:
            runs.remove_stale_temporaries(out)
        if (out / runs.CHECKPOINT).exists():
            trainer._restore()
        trainer._start()  # records the new budget
        return trainer

    def _start(self) -> None:
        distributed.broadcast_parameters(self.model, self.ctx)
        if self.ctx.main:
            self.out.mkdir(parents=True, exist_ok=True)
            write_json(self.out / runs.CONFIG, self.config_dict())

    def config_dict(self) -> dict:
        return {**task_record(self.task), "model": self.model_cfg.to_dict(), "train": self.cfg.to_dict()}

    def states(self) -> dict[str, dict]:
        """What a checkpoint holds: the state dicts of the model, optimizer and weight average."""
        states = {"model": self.model.state_dict(), "optimizer": self.opt.state_dict()}
        if self.average is not None:
            states["ema"] = self.average.state_dict()
        return states

    def _restore(self) -> None:
        path = self.out / runs.CHECKPOINT
        states, meta = runs.read_checkpoint(path)
        try:
            self.step, self.elapsed = int(meta["step"]), float(meta["elapsed"])
            self.model.load_state_dict(states["model"])
            self.opt.load_state_dict(states["optimizer"])
            if self.average is not None:
                self.average.load_state_dict(states["ema"])
        except (KeyError, TypeError) as e:
            raise runs.RunError(f"{path} lacks training state ({e!r})") from None
        except (RuntimeError, ValueError) as e:
            raise runs.RunError(f"{path} does not match the run config: {str(e).splitlines()[0]}") from None
        self.metrics = [m for m in runs.read_metrics(self.out) if m.get("step", 0) <= self.step]

    def save(self) -> None:
        """Metrics first, then the checkpoint, then the plain weights; each write is atomic (rank 0 only)."""
        if not self.ctx.main:
            return
        lines = "".join(json.dumps(m) + "\n" for m in self.metrics)
        atomic_write(self.out / runs.METRICS, lambda tmp: Path(tmp).write_text(lines))
        meta = {"step": str(self.step), "elapsed": repr(self.elapsed), "world_size": str(self.ctx.world)}
        runs.write_checkpoint(self.out / runs.CHECKPOINT, self.states(), meta)
        runs.write_tensors(self.out / runs.WEIGHTS, self.weights().state_dict())

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


def read_run(out: Path) -> tuple[Task, LoopedConfig | DTNetConfig, TrainConfig]:
    """The task, model config and training config a run directory records. Raises ``RunError``."""
    saved = runs.read_config(out)
    if not isinstance(saved.get("train"), dict):
        raise runs.RunError(f"{out} has no training config to resume (is it a shipped model?)")
    try:
        return task_from_record(saved), config_from_dict(saved["model"]), TrainConfig.from_dict(saved["train"])
    except (TypeError, ValueError) as e:
        raise runs.RunError(f"{out / runs.CONFIG}: {e}") from None


def model_config(task: Task, arch: str = DEFAULT_ARCH, overrides: dict | None = None) -> LoopedConfig | DTNetConfig:
    """The model config of a new run: the task's defaults (``Task.model_defaults``), then ``overrides``.

    arch: a registered architecture, ``looped`` (``LoopedConfig``) or ``dtnet`` (``DTNetConfig``).
    Task defaults the architecture has no field for do not apply (a DT-net has no attention);
    unknown override keys raise ``ConfigError``.
    """
    if arch not in ARCHITECTURES:
        raise ConfigError(f"unknown model architecture {arch!r}; choose from {', '.join(ARCHITECTURES)}")
    cls = ARCHITECTURES[arch]
    names = {f.name for f in fields(cls)}
    defaults = {k: v for k, v in task.model_defaults().items() if k in names}
    return cls.from_dict({**defaults, **(overrides or {})})


def train(task: str | Task | type[Task], out: str | Path, config: TrainConfig,
          model: LoopedConfig | DTNetConfig | None = None, data: str | Path | None = None,
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
