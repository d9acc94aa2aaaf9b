"""Kill ``looped train`` with SIGKILL at random moments, resume each time, and compare with an
uninterrupted run of the same seed.

    python scripts/crash_resume.py [--kills 10] [--steps 300] [--seed 0] [--out DIR]

After every kill the run directory must still load (config, weights, checkpoint). At the end the
final weights must be bit-identical to the uninterrupted run's and the metrics equal except for
wall-clock fields. Prints each kill (when, the checkpointed step it resumed from) and the verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch

from looped import runs

TRAIN = ["--task", "prefix-sums", "--d-model", "16", "--heads", "2", "--train-iters", "12", "--batch-size", "64",
         "--checkpoint-every", "10", "--eval-every", "50", "--quiet", "--device", "cpu"]


def looped(*args: str) -> list[str]:
    return [sys.executable, "-m", "looped", *args]


def metrics(run: Path) -> list[dict]:
    return [{k: v for k, v in m.items() if k != "elapsed_s"} for m in runs.read_metrics(run)]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    args = p.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="crash-resume-"))
    budget = ["--steps", str(args.steps), "--seed", str(args.seed)]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    t0 = time.perf_counter()
    ref = subprocess.Popen(looped("train", *TRAIN, *budget, "--out", str(out / "reference")), env=env)
    while not (out / "reference" / runs.CONFIG).exists() and ref.poll() is None:
        time.sleep(0.05)
    startup = time.perf_counter() - t0  # imports and setup, before the first step
    if ref.wait():
        raise SystemExit("the uninterrupted run failed")
    full = time.perf_counter() - t0
    print(f"uninterrupted: {args.steps} steps in {full:.1f} s ({startup:.1f} s of it starting up)")

    rng = np.random.default_rng(args.seed)
    run = out / "killed"
    killed = 0
    for i in range(args.kills):
        resume = ["--resume"] if (run / runs.CONFIG).exists() else []
        cmd = looped("train", *(TRAIN if not resume else ["--quiet"]), *budget, "--out", str(run), *resume)
        proc = subprocess.Popen(cmd, env=env)
        delay = startup + float(rng.uniform(0.5, 1.5) * (full - startup) / args.kills)  # spread over one run
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        step = "-"
        if (run / runs.CHECKPOINT).exists():
            runs.load_model(run)  # weights and config load
            step = runs.read_tensors(run / runs.CHECKPOINT, with_metadata=True)[1]["step"]
        print(f"kill {i + 1}: after {delay:.1f} s (exit {proc.returncode}); checkpoint at step {step}")
    resume = ["--resume"] if (run / runs.CONFIG).exists() else []
    subprocess.run(looped("train", *(TRAIN if not resume else ["--quiet"]), *budget, "--out", str(run), *resume),
                   check=True, env=env)

    a, b = runs.read_tensors(out / "reference" / runs.WEIGHTS), runs.read_tensors(run / runs.WEIGHTS)
    identical = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    same_metrics = metrics(out / "reference") == metrics(run)
    leftovers = [p.name for p in run.iterdir() if p.name.endswith(".tmp")]  # resuming clears a killed write's
    print(json.dumps({"kills": killed, "steps": args.steps, "weights_bit_identical": identical,
                      "metrics_equal": same_metrics, "temporary_files_left": leftovers}))
    return 0 if identical and same_metrics and not leftovers and killed == args.kills else 1


if __name__ == "__main__":
    sys.exit(main())
