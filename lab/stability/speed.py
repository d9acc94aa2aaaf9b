"""Matrix-free spectral estimates against the dense Jacobian on looped-transformer states.

For states of size d*T = 1,024 and 4,096 it times (a) the dense route: build J_h with batched JVPs,
then all eigenvalues and singular values, and (b) the matrix-free route: rho(J_h) by Arnoldi and
||J_h||_2 by Lanczos on J^T J; and prints their agreement. It then times the matrix-free route alone
at 16,384 and on a batch of 64 prefix-sums inputs of 512 bits.

Usage: python lab/stability/speed.py [--model RUN] [--k 60]
(default model: the shipped prefix-sums model if present, else a freshly initialised one).
"""

import argparse
import platform
import time
from pathlib import Path

import torch

from looped import stability
from looped.model import LoopedConfig, LoopedTransformer
from looped import runs
from looped.runs import load_model


def load(run: str | None) -> LoopedTransformer:
    path = Path(run) if run else runs.SHIPPED / "prefix-sums"
    if (path / "model.safetensors").exists():
        return load_model(path)[0]
    torch.manual_seed(0)
    return LoopedTransformer(LoopedConfig()).eval()


def fixed_point(model, tokens):
    F, h0, x = stability.from_model(model, tokens)
    res = stability.fixed_point(F, h0, x, max_iter=4 * tokens.shape[1], tol=1e-6)
    return F, res.h, x


def timed(fn):
    t = time.perf_counter()
    out = fn()
    return out, time.perf_counter() - t


def main() -> None:
    p = argparse.ArgumentParser()
    p.add_argument("--model", default=None)
    p.add_argument("--k", type=int, default=60, help="Krylov steps of the matrix-free estimates")
    args = p.parse_args()
    model = load(args.model).double()
    d = model.cfg.d_model
    print(f"machine: {platform.processor() or platform.machine()}, {torch.get_num_threads()} threads, torch {torch.__version__}")
    print(f"model: d_model={d}, recall={model.cfg.recall}, outer_norm={model.cfg.outer_norm}, k={args.k}")
    g = torch.Generator().manual_seed(0)
    print("\n| state size | dense build+eig+svd (s) | matrix-free rho+norm (s) | speed-up | rho dense | rho matrix-free | rel. err | norm dense | norm matrix-free | rel. err |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for n in (1024, 4096):
        T = n // d
        tokens = torch.randint(0, 2, (1, T), generator=g)
        F, h, x = fixed_point(model, tokens)

        def dense():
            J = stability.dense_jacobian(F, h, x)[0]
            return torch.linalg.eigvals(J).abs().max().item(), torch.linalg.svdvals(J)[0].item()

        def free():
            rho = stability.spectral_radius(F, h, x, k=args.k).item()
            return rho, stability.jacobian_norm(F, h, x, k=args.k).item()

        (rho_d, nrm_d), t_d = timed(dense)
        (rho_f, nrm_f), t_f = timed(free)
        print(f"| {n} | {t_d:.2f} | {t_f:.2f} | {t_d / t_f:.1f}x | {rho_d:.4f} | {rho_f:.4f} | {abs(rho_f - rho_d) / rho_d:.2%} "
              f"| {nrm_d:.4f} | {nrm_f:.4f} | {abs(nrm_f - nrm_d) / nrm_d:.2%} |")
    print("\n| case | matrix-free rho+norm (s) |")
    print("|---|---|")
    for name, B, T in (("state 16,384 (1 x 512 tokens)", 1, 16384 // d), ("prefix sums 512 bits, batch 64", 64, 512)):
        tokens = torch.randint(0, 2, (B, T), generator=g)
        F, h, x = fixed_point(model, tokens)
        _, t_f = timed(lambda: (stability.spectral_radius(F, h, x, k=args.k), stability.jacobian_norm(F, h, x, k=args.k)))
        print(f"| {name} | {t_f:.2f} |")


if __name__ == "__main__":
    main()
