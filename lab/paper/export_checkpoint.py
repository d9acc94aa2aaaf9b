"""The new-user trial of docs/paper.md: a checkpoint made with the paper's own code, as a researcher has one.

    python lab/paper/export_checkpoint.py --paper-code DIR --out FOLDER

Builds the paper's ``DTTransformer`` (internal recall, post norm, width 64, sudoku's 10 planes and 10
classes; random weights, seed 0) from a checkout of its code (GitHub ``ashlab11/generalization``; NATTEN
and torchtune are stood in for, full attention uses neither), and writes ``FOLDER/model_best.pth`` as its
training saves checkpoints (``torch.save({"net": state_dict, ...})``) and ``FOLDER/config.yaml`` as a
Hydra config with ``problem.name`` and ``problem.model``. Then:

    looped import-paper FOLDER/model_best.pth --config FOLDER/config.yaml --task sudoku --out FOLDER/run
    looped eval FOLDER/run --split easy,hard --n 50 --max-iters 30
    looped analyze FOLDER/run --n 8 --max-iter 100
    looped solve sudoku PUZZLE --model FOLDER/run
"""

from __future__ import annotations

import argparse
import importlib
import sys
import types
from pathlib import Path

import torch
import yaml

CONFIG = {"model": "DTTransformer", "hidden_dim": 64, "num_blocks": 1, "injection_type": "linear", "norm_type": "post",
          "norm_before_head": True, "recall_inner": True, "attn_type": "full", "init_norm": False, "num_sinks": 0,
          "kernel_size": 5, "residual_method": "add", "ccot": "none", "max_iters": 30, "qk_normalization": True,
          "in_channels": 10, "out_channels": 10, "spatial_dims": 2}


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paper-code", type=Path, required=True)
    p.add_argument("--out", type=Path, required=True)
    args = p.parse_args()
    for name in ("natten", "torchtune", "torchtune.modules"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["torchtune.modules"].RotaryPositionalEmbeddings = object
    package = types.ModuleType("deepthinking")
    package.__path__ = [str(args.paper_code / "deepthinking")]
    sys.modules["deepthinking"] = package
    DTTransformer = importlib.import_module("deepthinking.models.transformer").DTTransformer
    torch.manual_seed(0)
    net = DTTransformer(**{k: v for k, v in CONFIG.items() if k != "model"})
    args.out.mkdir(parents=True, exist_ok=True)
    torch.save({"net": net.state_dict(), "epoch": 0}, args.out / "model_best.pth")
    (args.out / "config.yaml").write_text(yaml.safe_dump({"name": "trial", "problem": {"name": "sudoku", "model": CONFIG}}))
    print(f"wrote {args.out / 'model_best.pth'} and {args.out / 'config.yaml'}")


if __name__ == "__main__":
    main()
