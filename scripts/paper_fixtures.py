"""Run the paper's own code on random weights and write the fixtures ``tests/test_paper.py`` checks against.

    python scripts/paper_fixtures.py --paper-code DIR [--out tests/fixtures/paper.safetensors]

DIR is a checkout of the paper's code (GitHub ``ashlab11/generalization``). Its model runs on the CPU with
full attention, which needs neither NATTEN nor torchtune: empty stand-ins for those two imports are
enough. For every recall x norm placement x residual on a 9x9 board (sudoku's 10 input planes; 2 classes,
to keep the fixture small, as the class count only sizes the last linear map), an 8x8 board (chess: 12 planes, 2 classes) and a 16-token sequence (prefix sums: 1 plane, 2
classes), and the 15-block fixed-depth baseline (on the 9x9 board with sudoku's 10 classes), the script builds the paper's ``DTTransformer``, loads
seeded random weights (``weights``: a function of the parameter names and shapes only, so the test
rebuilds them without the paper's code), and runs 30 iterations in float64 and in float32 on seeded
random tokens. The fixture keeps the tokens, the float64 logits of every iteration (stored as float32,
whose rounding, 6e-8, is far below the 1e-6 the test asks of float64), the paper's float32 logits as their
offset from those (float16: the offset is at most 1e-4 of the logits, so it keeps them to about 1e-7), and
per configuration the paper's own float32-float64 difference. It prints, per configuration, the largest relative difference between
``looped``'s model (``looped.from_paper``) and the paper's, in float64 and float32.
"""

from __future__ import annotations

import argparse
import importlib
import json
import sys
import types
from pathlib import Path

import torch

ITERATIONS = 30
WIDTH = 32  # 8 heads (fixed in the paper's block) of 4 channels: the smallest width with 2D rotary positions
GEOMETRIES = {  # name -> (in_channels, out_channels, spatial shape, token vocabulary)
    "sudoku": (10, 2, (9, 9), 10),  # 2 classes keep the fixture small; the fixed-depth runs use sudoku's 10
    "chess": (12, 2, (8, 8), 13),
    "prefix-sums": (1, 2, (16,), 2),
}
RECALLS = {"none": ("none", False), "external": ("linear", False), "internal": ("linear", True)}
NORMS = ("pre", "peri", "post", "sandwich")
RESIDUALS = ("add", "gru")
FIXED = (("peri", "add"), ("pre", "add"), ("peri", "gru"), ("post", "add"))  # the grid's fixed-depth runs


def configurations() -> list[dict]:
    """Every configuration the fixtures cover: an id, the paper's model keys and the geometry."""
    out = []
    for geometry, (cin, cout, shape, _) in GEOMETRIES.items():
        for recall, (injection, inner) in RECALLS.items():
            for norm in NORMS:
                for residual in RESIDUALS:
                    out.append({"id": f"{geometry}-{recall}-{norm}-{residual}", "geometry": geometry, "iterations": ITERATIONS,
                                "model": model_keys(injection, inner, norm, residual, 1, cin, cout, len(shape))})
    cin, _, shape, _ = GEOMETRIES["sudoku"]
    cout = 10
    for norm, residual in FIXED:
        out.append({"id": f"sudoku-fixed-{norm}-{residual}", "geometry": "sudoku", "iterations": 1,
                    "model": model_keys("none", False, norm, residual, 15, cin, cout, len(shape))})
    return out


def model_keys(injection, inner, norm, residual, blocks, cin, cout, axes) -> dict:
    """The paper's model config (its Hydra keys, as ``experiments/run_all.bash`` sets them)."""
    return {"hidden_dim": WIDTH, "injection_type": injection, "recall_inner": inner, "norm_type": norm,
            "residual_method": residual, "attn_type": "full", "qk_normalization": True, "num_blocks": blocks,
            "kernel_size": 5, "num_sinks": 0, "in_channels": cin, "out_channels": cout, "spatial_dims": axes,
            "norm_before_head": True, "init_norm": False}


def weights(shapes: dict[str, list[int]], seed: int) -> dict[str, torch.Tensor]:
    """Seeded random weights for parameters of these names and shapes, float64: matrices with standard
    deviation 0.5/sqrt(fan-in), biases around 0 and norm weights (the other vectors) around 1."""
    gen = torch.Generator().manual_seed(seed)
    out = {}
    for name in sorted(shapes):
        w = torch.randn(shapes[name], generator=gen, dtype=torch.float64)
        if w.dim() >= 2:
            out[name] = 0.5 * w / max(1, w.shape[-1]) ** 0.5
        else:
            out[name] = 0.1 * w if "bias" in name.rsplit(".", 1)[-1] else 1.0 + 0.1 * w
    return out


def tokens(geometry: str, seed: int) -> torch.Tensor:
    """(1, L) seeded random tokens of the geometry's vocabulary."""
    _, _, shape, vocab = GEOMETRIES[geometry]
    L = 1
    for s in shape:
        L *= s
    return torch.randint(0, vocab, (1, L), generator=torch.Generator().manual_seed(seed))


def planes(geometry: str, toks: torch.Tensor, dtype) -> torch.Tensor:
    """The paper's input for these tokens: one-hot planes, channels first, on the grid (a sequence: (B, L))."""
    cin, _, shape, vocab = GEOMETRIES[geometry]
    if geometry == "prefix-sums":
        return toks.to(dtype)
    onehot = torch.nn.functional.one_hot(toks, vocab).to(dtype)[..., vocab - cin:]  # chess: token 0 is all zeros
    return onehot.transpose(1, 2).reshape(toks.shape[0], cin, *shape)


def paper_model_class(paper_code: Path):
    """``DTTransformer`` from the paper's code, with empty stand-ins for NATTEN and torchtune."""
    for name in ("natten", "torchtune", "torchtune.modules"):
        sys.modules.setdefault(name, types.ModuleType(name))
    sys.modules["torchtune.modules"].RotaryPositionalEmbeddings = object
    package = types.ModuleType("deepthinking")
    package.__path__ = [str(paper_code / "deepthinking")]
    sys.modules["deepthinking"] = package  # skips deepthinking/__init__.py (training utilities, wandb)
    return importlib.import_module("deepthinking.models.transformer").DTTransformer


def run_paper(cls, cfg: dict, state: dict, x: torch.Tensor, iterations: int, dtype) -> torch.Tensor:
    """(T, B, L, C) the paper model's logits after each iteration, squares in row-major order."""
    net = cls(**cfg).to(dtype).eval()
    net.load_state_dict({k: v.to(dtype) for k, v in state.items()}, strict=True)
    with torch.no_grad():
        out = net(x.to(dtype), iters_to_do=iterations)  # (B, T, C, *spatial)
    return out.flatten(3).permute(1, 0, 3, 2).contiguous()


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--paper-code", type=Path, required=True, help="a checkout of ashlab11/generalization")
    p.add_argument("--out", type=Path, default=Path(__file__).resolve().parent.parent / "tests/fixtures/paper.safetensors")
    args = p.parse_args()
    from safetensors.torch import save_file

    import looped

    cls = paper_model_class(args.paper_code)
    tensors, entries = {}, []
    print(f"{'configuration':<36} {'paper f32 vs f64':>16} {'looped vs paper f64':>20} {'looped vs paper f32':>20}")
    for i, entry in enumerate(configurations()):
        cfg = entry["model"]
        shapes = {k: list(v.shape) for k, v in cls(**cfg).state_dict().items()}
        state = weights(shapes, seed=i)
        toks = tokens(entry["geometry"], seed=i)
        ref64 = run_paper(cls, cfg, state, planes(entry["geometry"], toks, torch.float64), entry["iterations"], torch.float64)
        ref32 = run_paper(cls, cfg, state, planes(entry["geometry"], toks, torch.float32), entry["iterations"], torch.float32)
        ours = {}
        for dtype in (torch.float64, torch.float32):
            model = looped.from_paper(state, cfg, task=entry["geometry"]).to(dtype).eval()
            with torch.no_grad():
                out = model(toks, entry["iterations"], logits_at=list(range(1, entry["iterations"] + 1)))
            ours[dtype] = torch.stack([out.logits[t] for t in range(1, entry["iterations"] + 1)])
        rel = lambda a, b: float(((a.double() - b.double()).flatten(2).norm(dim=2) / b.double().flatten(2).norm(dim=2)).max())  # noqa: E731
        paper_drift, d64, d32 = rel(ref32, ref64), rel(ours[torch.float64], ref64), rel(ours[torch.float32], ref32)
        print(f"{entry['id']:<36} {paper_drift:>16.2e} {d64:>20.2e} {d32:>20.2e}")
        tensors[f"{entry['id']}.tokens"] = toks
        tensors[f"{entry['id']}.logits"] = ref64.float()
        tensors[f"{entry['id']}.drift32"] = (ref32.double() - ref64).half()  # the paper's float32 run, as its offset
        entries.append({**entry, "seed": i, "shapes": shapes, "paper_float32_drift": paper_drift,
                        "looped_float64": d64, "looped_float32": d32})
    args.out.parent.mkdir(parents=True, exist_ok=True)
    save_file(tensors, str(args.out), metadata={"configurations": json.dumps(entries)})
    print(f"wrote {len(entries)} configurations to {args.out} ({args.out.stat().st_size // 1024} kB)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
