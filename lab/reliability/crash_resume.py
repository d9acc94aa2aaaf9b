"""Kill ``looped train`` (or ``looped reproduce``) with SIGKILL at random moments, resume each
time, and compare with an uninterrupted run of the same seed.

    python lab/reliability/crash_resume.py [--kills 10] [--steps 300] [--seed 0] [--out DIR]
    python lab/reliability/crash_resume.py --reproduce [--kills 10]     # looped reproduce --budget smoke

After every kill the run directory must still load (config, weights, checkpoint). At the end the
final weights must be bit-identical to the uninterrupted run's and the metrics equal except for
wall-clock fields (for ``--reproduce``: every run record and the claims' verdicts equal). Prints
each kill and the verdict.
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
    return [{k: v for k, v in m.items() if k != "elapsed_s"} for m in runs.Run(run).read_metrics()]


def kill_and_resume(cmd, full: float, startup: float, kills: int, rng, env, after_kill) -> int:
    """Launch ``cmd()`` and SIGKILL it ``kills`` times at random moments spread over one run; returns
    how many launches were killed while still running. ``after_kill(i, delay, code)`` checks state."""
    killed = 0
    for i in range(kills):
        proc = subprocess.Popen(cmd(), env=env)
        delay = startup + float(rng.uniform(0.5, 1.5) * (full - startup) / kills)
        time.sleep(delay)
        if proc.poll() is None:
            proc.send_signal(signal.SIGKILL)
            killed += 1
        proc.wait()
        after_kill(i, delay, proc.returncode)
    return killed


def reproduce_mode(args, out: Path, env) -> int:
    cmd = looped("reproduce", "--budget", "smoke", "--workers", "1", "--quiet", "--out")
    t0 = time.perf_counter()
    subprocess.run([*cmd, str(out / "reference")], check=True, env=env, capture_output=True)
    full = time.perf_counter() - t0
    print(f"uninterrupted: looped reproduce --budget smoke in {full:.1f} s")
    rng = np.random.default_rng(args.seed)
    target = out / "killed"

    def report(i, delay, code):
        done = len(list((target / "runs").glob("*/record.json"))) if (target / "runs").exists() else 0
        print(f"kill {i + 1}: after {delay:.1f} s (exit {code}); {done} runs finished")

    killed = kill_and_resume(lambda: [*cmd, str(target)], full, 5.0, args.kills, rng, env, report)
    subprocess.run([*cmd, str(target)], check=True, env=env, capture_output=True)
    records = sorted(p.relative_to(out / "reference") for p in (out / "reference").glob("runs/*/record.json"))
    same = all((out / "reference" / r).read_text() == (target / r).read_text() for r in records)
    verdicts = [json.loads((d / "summary.json").read_text())["verdicts"] for d in (out / "reference", target)]
    leftovers = [str(p) for p in target.rglob("*.tmp")]
    print(json.dumps({"kills": killed, "runs": len(records), "records_identical": same,
                      "verdicts_equal": verdicts[0] == verdicts[1], "temporary_files_left": leftovers}))
    return 0 if same and verdicts[0] == verdicts[1] and not leftovers and killed == args.kills else 1


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--kills", type=int, default=10)
    p.add_argument("--steps", type=int, default=300)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--reproduce", action="store_true", help="kill looped reproduce --budget smoke instead")
    p.add_argument("--out", type=Path, default=None, help="work folder (default: a temporary one)")
    args = p.parse_args()
    out = args.out or Path(tempfile.mkdtemp(prefix="crash-resume-"))
    if args.reproduce:
        return reproduce_mode(args, out, {**os.environ, "OMP_NUM_THREADS": "1"})
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
    def train_cmd():
        if (run / runs.CONFIG).exists():
            return looped("train", "--quiet", *budget, "--out", str(run), "--resume")
        return looped("train", *TRAIN, *budget, "--out", str(run))

    def report(i, delay, code):
        step = "-"
        if (run / runs.CHECKPOINT).exists():
            runs.load_model(run)  # weights and config load
            step = runs.read_tensors(run / runs.CHECKPOINT, with_metadata=True)[1]["step"]
        print(f"kill {i + 1}: after {delay:.1f} s (exit {code}); checkpoint at step {step}")

    killed = kill_and_resume(train_cmd, full, startup, args.kills, rng, env, report)
    subprocess.run(train_cmd(), check=True, env=env)

    a, b = runs.read_tensors(out / "reference" / runs.WEIGHTS), runs.read_tensors(run / runs.WEIGHTS)
    identical = a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)
    same_metrics = metrics(out / "reference") == metrics(run)
    leftovers = [p.name for p in run.iterdir() if p.name.endswith(".tmp")]  # resuming clears a killed write's
    print(json.dumps({"kills": killed, "steps": args.steps, "weights_bit_identical": identical,
                      "metrics_equal": same_metrics, "temporary_files_left": leftovers}))
    return 0 if identical and same_metrics and not leftovers and killed == args.kills else 1


if __name__ == "__main__":
    sys.exit(main())
