"""Binary addition as aligned digit strings, written as JSONL files for ``looped train --task sequences``.

Two random ``bits``-bit numbers a and b are written least-significant digit first, one token per
digit position: token ``a_i + 2 b_i`` (``0``-``3``), then one ``0`` for the final carry. The target
is the ``bits + 1`` digits of a + b, least significant first. Every output digit depends on the
carry from all earlier positions, so longer numbers need more iterations.

    python scripts/binary_addition_data.py --out data/addition --seed 0

writes ``train.jsonl`` (``--train-bits``) and one ``<bits>.jsonl`` per ``--eval-bits``, a pure
function of the seed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np


def example(rng: np.random.Generator, bits: int) -> dict:
    a, b = rng.integers(0, 2, bits), rng.integers(0, 2, bits)
    digits, carry = [], 0
    for x, y in zip(a, b):
        s = int(x) + int(y) + carry
        digits.append(s % 2)
        carry = s // 2
    digits.append(carry)
    return {"input": "".join(str(int(x) + 2 * int(y)) for x, y in zip(a, b)) + "0",
            "target": "".join(map(str, digits))}


def write(path: Path, rng: np.random.Generator, bits: int, n: int) -> None:
    path.write_text("".join(json.dumps(example(rng, bits)) + "\n" for _ in range(n)))


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
    write(args.out / "train.jsonl", np.random.default_rng([args.seed, 0]), args.train_bits, args.train_n)
    for bits in args.eval_bits:
        write(args.out / f"{bits}.jsonl", np.random.default_rng([args.seed, bits]), bits, args.eval_n)
    print(f"wrote {args.out}/train.jsonl and {', '.join(f'{b}.jsonl' for b in args.eval_bits)}")


if __name__ == "__main__":
    main()
