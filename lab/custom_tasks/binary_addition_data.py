"""Binary addition as aligned digit strings, written as JSONL files for ``looped train --task sequences``.

Two random ``bits``-bit numbers a and b are written least-significant digit first, one token per
digit position: token ``a_i + 2 b_i`` (``0``-``3``), then one ``0`` for the final carry. The target
is the ``bits + 1`` digits of a + b, least significant first. Every output digit depends on the
carry from all earlier positions, so longer numbers need more iterations.

    python lab/custom_tasks/binary_addition_data.py --out data/addition --seed 0

writes ``train.jsonl`` (``--train-bits``, random operands) and, per ``--eval-bits``, ``<bits>.jsonl``
(random operands) and ``carry<bits>.jsonl`` (operands whose carry runs through three quarters of
the digits or more), a pure function of the seed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

CARRY_SALT = 1  # rng stream of the long-carry splits


def add(a: np.ndarray, b: np.ndarray) -> dict:
    """The example for operands a, b (digit arrays, least significant first)."""
    digits, carry = [], 0
    for x, y in zip(a, b):
        s = int(x) + int(y) + carry
        digits.append(s % 2)
        carry = s // 2
    digits.append(carry)
    return {"input": "".join(str(int(x) + 2 * int(y)) for x, y in zip(a, b)) + "0",
            "target": "".join(map(str, digits))}


def example(rng: np.random.Generator, bits: int) -> dict:
    """Random operands: the longest carry chain is short (about log2(bits) digits)."""
    return add(rng.integers(0, 2, bits), rng.integers(0, 2, bits))


def long_carry_example(rng: np.random.Generator, bits: int) -> dict:
    """A carry made at a random digit k in the first quarter runs through every later digit:
    a_i + b_i = 1 for i > k, a_k = b_k = 1, digits below k random."""
    k = int(rng.integers(0, max(1, bits // 4)))
    a = rng.integers(0, 2, bits)
    b = 1 - a
    b[:k] = rng.integers(0, 2, k)
    a[k] = b[k] = 1
    return add(a, b)


def write(path: Path, make, rng: np.random.Generator, bits: int, n: int) -> None:
    path.write_text("".join(json.dumps(make(rng, bits)) + "\n" for _ in range(n)))


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--train-bits", type=int, default=16)
    p.add_argument("--train-n", type=int, default=20_000)
    p.add_argument("--eval-bits", type=lambda s: [int(x) for x in s.split(",")], default=[16, 32, 64, 128])
    p.add_argument("--eval-n", type=int, default=500)
    args = p.parse_args()
    args.out.mkdir(parents=True, exist_ok=True)
    write(args.out / "train.jsonl", example, np.random.default_rng([args.seed, 0]), args.train_bits, args.train_n)
    for bits in args.eval_bits:
        write(args.out / f"{bits}.jsonl", example, np.random.default_rng([args.seed, bits]), bits, args.eval_n)
        write(args.out / f"carry{bits}.jsonl", long_carry_example, np.random.default_rng([args.seed, bits, CARRY_SALT]),
              bits, args.eval_n)
    names = [f"{b}.jsonl, carry{b}.jsonl" for b in args.eval_bits]
    print(f"wrote {args.out}/train.jsonl, {', '.join(names)}")


if __name__ == "__main__":
    main()
