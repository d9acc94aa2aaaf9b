"""``torchrun`` with 2 CPU processes (gloo) must train to the weights of one process on the whole batch."""

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from looped import runs

ARGS = ["train", "--task", "prefix-sums", "--steps", "4", "--batch-size", "8", "--d-model", "16", "--heads", "2",
        "--train-iters", "4", "--checkpoint-every", "2", "--eval-every", "2", "--quiet", "--device", "cpu"]


@pytest.mark.skipif(shutil.which("torchrun") is None, reason="torchrun not installed")
@pytest.mark.parametrize("alpha", ["1.0", "0.5"])
def test_two_processes_match_one_process_on_the_combined_batch(tmp_path, alpha):
    single = subprocess.run([sys.executable, "-m", "looped", *ARGS, "--alpha", alpha, "--out", tmp_path / "one"],
                            capture_output=True, text=True)
    assert single.returncode == 0, single.stderr
    multi = subprocess.run(["torchrun", "--standalone", "--nproc_per_node=2", "-m", "looped", *ARGS, "--alpha", alpha,
                            "--out", tmp_path / "two"], capture_output=True, text=True)
    assert multi.returncode == 0, multi.stderr
    a, b = runs.read_tensors(tmp_path / "one" / runs.WEIGHTS), runs.read_tensors(tmp_path / "two" / runs.WEIGHTS)
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=1e-4, atol=1e-5)
    la = [m["loss"] for m in runs.Run(tmp_path / "one").read_metrics()]
    lb = [m["loss"] for m in runs.Run(tmp_path / "two").read_metrics()]
    assert la == pytest.approx(lb, rel=1e-4)
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "two").iterdir())
    worlds = [runs.read_tensors(tmp_path / r / runs.CHECKPOINT, with_metadata=True)[1]["world_size"] for r in ("one", "two")]
    assert worlds == ["1", "2"]


def test_an_uneven_batch_is_refused(tmp_path, monkeypatch):
    from looped.distributed import Context, check_batch
    from looped.config import ConfigError

    check_batch(8, Context(0, 2, torch.device("cpu")))
    with pytest.raises(ConfigError, match="does not split evenly"):
        check_batch(9, Context(0, 2, torch.device("cpu")))


def _clock_worker(rank: int, init_file: str, out: str) -> None:
    import torch.distributed as dist

    from looped.distributed import Context, from_main

    dist.init_process_group("gloo", init_method=f"file://{init_file}", rank=rank, world_size=2)
    try:
        value = from_main(0.25 + 10.0 * rank, Context(rank, 2, torch.device("cpu")))  # each rank's own clock
        (Path(out) / str(rank)).write_text(repr(value))
    finally:
        dist.destroy_process_group()


def test_every_process_runs_on_rank_zeros_clock(tmp_path):
    """A --minutes budget sets the learning rate from elapsed time; the processes must share one clock."""
    torch.multiprocessing.spawn(_clock_worker, args=(str(tmp_path / "init"), str(tmp_path)), nprocs=2)
    assert [float((tmp_path / r).read_text()) for r in ("0", "1")] == [0.25, 0.25]
