"""Named recipes for ``looped train --preset``: the paper's (``paper``) and its CPU scaling (``paper-cpu``).

``paper`` is the recipe of the paper's grid (``experiments/run_all.bash``): its block (``--arch paper``)
at width 256 with 8 heads, trained at 30 iterations with the progressive loss (alpha 1), AdamW with
weight decay 0.01, batches of 500, learning rate 1e-3 (its default; the grid also tries 1e-4 and 3e-4),
gradient clip 1, exponential warmup over the first tenth of training and a step decay x0.1 at 60% (the
paper's 10 warmup epochs and its drop at epoch 60 of 100), for 100 epochs of the task's data. It does
not set bf16 autocast (the paper's ``use_amp``): add ``--bf16`` on a GPU.

``paper-cpu`` keeps that architecture and recipe and changes the size: width 64 (8 heads of 8),
batches of 64 and the task's ``PaperRecipe.cpu_steps`` (2,000 to 3,000), with warmup and decay at the
same fractions, so that a run finishes on a 2-core CPU in about 15-30 minutes.

A preset gives values to flags; a flag given on the command line overrides it.
"""

from __future__ import annotations

from .config import ConfigError

PRESETS = ("paper", "paper-cpu")
EPOCHS, PAPER_BATCH, WARMUP_SHARE, DECAY_AT = 100, 500, 0.1, (0.6,)


def preset(name: str, task, steps: int | None = None) -> tuple[str, dict, dict]:
    """(architecture, model overrides, training overrides) of the preset ``name`` for ``task``; ``steps``
    replaces the preset's budget (warmup stays a tenth of it)."""
    if name not in PRESETS:
        raise ConfigError(f"unknown preset {name!r}; choose from {', '.join(PRESETS)}")
    recipe = task.paper_recipe
    if recipe is None:
        raise ConfigError(f"task {task.name} has no paper recipe (PaperRecipe); set its flags yourself")
    if name == "paper":
        width, batch, planned = 256, PAPER_BATCH, EPOCHS * recipe.epoch_examples // PAPER_BATCH
    else:
        width, batch, planned = 64, 64, recipe.cpu_steps
    steps = planned if steps is None else steps
    train = {"train_iters": 30, "alpha": 1.0, "weight_decay": 0.01, "batch_size": batch, "lr": 1e-3, "grad_clip": 1.0,
             "steps": steps, **schedule(steps)}
    return "paper", {"d_model": width, "n_heads": 8}, train


def schedule(steps: int) -> dict:
    """The paper's learning-rate schedule for ``steps`` steps, as TrainConfig fields: exponential warmup over
    the first tenth, then x0.1 at 60%."""
    return {"warmup": "exponential", "warmup_steps": max(1, int(WARMUP_SHARE * steps)), "schedule": "step",
            "decay_at": DECAY_AT, "decay_factor": 0.1}
