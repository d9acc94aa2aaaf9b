"""``torchrun`` with 2 CPU processes (gloo) must train to the weights of one process on the whole batch."""

import shutil
import subprocess
import sys

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
    la = [m["loss"] for m in runs.read_metrics(tmp_path / "one")]
    lb = [m["loss"] for m in runs.read_metrics(tmp_path / "two")]
    assert la == pytest.approx(lb, rel=1e-4)
    assert not any(p.name.endswith(".tmp") for p in (tmp_path / "two").iterdir())
    worlds = [runs.read_tensors(tmp_path / r / runs.CHECKPOINT, with_metadata=True)[1]["world_size"] for r in ("one", "two")]
    assert worlds == ["1", "2"]


def test_an_uneven_batch_is_refused(tmp_path, monkeypatch):
    from looped.distributed import Context, check_batch
    from looped.model import ConfigError

    check_batch(8, Context(0, 2, torch.device("cpu")))
    with pytest.raises(ConfigError, match="does not split evenly"):
        check_batch(9, Context(0, 2, torch.device("cpu")))
