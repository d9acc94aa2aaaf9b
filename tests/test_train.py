import json

import pytest
import torch

from looped import runs
from looped.config import ConfigError
from looped.model import LoopedConfig, LoopedTransformer
from looped.tasks import get_task
from looped.config import TrainConfig
from looped.training import Trainer, draw_depths, lr_at, progressive_loss

SMALL = dict(d_model=16, n_heads=2, window=4)
PS = get_task("prefix-sums")


def small_train(**kw):
    base = dict(steps=12, batch_size=8, train_iters=4, eval_every=5, eval_size=8, checkpoint_every=5,
                warmup_steps=3, device="cpu")
    base.update(kw)
    return TrainConfig(**base)


def spied_model(**cfg) -> tuple[LoopedTransformer, list[tuple[bool, bool]]]:
    """A small model whose every step appends (grad enabled, h requires grad) to the returned list."""
    model, calls = LoopedTransformer(LoopedConfig(**SMALL, **cfg)), []
    real_step = model.step

    def spy(h, x_emb):
        calls.append((torch.is_grad_enabled(), h.requires_grad))
        return real_step(h, x_emb)

    model.step = spy
    return model, calls


def test_no_grad_prefix_carries_no_gradient():
    model, calls = spied_model()
    task = get_task("prefix-sums")
    batch = task.generate(task.split("8"), 4, 0)
    loss = progressive_loss(model, batch, n=3, k=2, total=5, alpha=1.0)
    loss.backward()
    assert [c[0] for c in calls] == [False, False, False, True, True]
    assert calls[3][1] is False  # the gradient segment starts from a detached state
    assert model.embed.weight.grad is not None


def test_with_no_prefix_the_gradient_reaches_the_embedding_without_recall():
    model = LoopedTransformer(LoopedConfig(**SMALL, recall="none"))
    task = get_task("prefix-sums")
    batch = task.generate(task.split("8"), 4, 0)
    progressive_loss(model, batch, n=0, k=3, total=5, alpha=1.0).backward()
    assert model.embed.weight.grad.abs().sum() > 0
    model.zero_grad(set_to_none=True)
    progressive_loss(model, batch, n=2, k=3, total=5, alpha=1.0).backward()
    assert model.embed.weight.grad is None  # recall='none' and a detached prefix: no path to the input


def test_alpha_zero_runs_only_the_full_depth_pass():
    model, calls = spied_model()
    task = get_task("prefix-sums")
    progressive_loss(model, task.generate(task.split("8"), 4, 0), n=3, k=2, total=5, alpha=0.0)
    assert [grad for grad, _ in calls] == [True] * 5


def test_grad_window_bounds_the_steps_with_gradient():
    model, calls = spied_model()
    task = get_task("prefix-sums")
    batch = task.generate(task.split("8"), 4, 0)
    progressive_loss(model, batch, n=3, k=2, total=9, alpha=0.0, grad_window=4).backward()
    assert [grad for grad, _ in calls] == [False] * 5 + [True] * 4
    calls.clear()
    with_window = progressive_loss(model, batch, n=0, k=9, total=9, alpha=0.0, grad_window=20)
    assert [grad for grad, _ in calls] == [True] * 9  # a window longer than the loop changes nothing
    assert with_window.item() == pytest.approx(progressive_loss(model, batch, 0, 9, 9, 0.0).item())


def test_depth_draws_follow_the_protocol():
    for step in range(200):
        n, k = draw_depths(0, step, 10)
        assert 0 <= n <= 9 and 1 <= k <= 10 - n
        assert (n, k) == draw_depths(0, step, 10, window=None)
        n, k = draw_depths(0, step, 10, window=3)
        assert 0 <= n <= 9 and 1 <= k <= min(3, 10 - n)


def test_lr_warms_up_then_decays():
    cfg = small_train(steps=100, lr=1.0, warmup_steps=10, min_lr_ratio=0.1)
    assert lr_at(cfg, 0, 0.0) == pytest.approx(0.1)
    assert lr_at(cfg, 50, 0.5) == pytest.approx(0.55)
    assert lr_at(cfg, 99, 1.0) == pytest.approx(0.1)


def weights(run):
    return runs.read_tensors(run / runs.WEIGHTS)


def test_training_is_deterministic_by_seed(tmp_path):
    for name in ("a", "b"):
        Trainer.create(tmp_path / name, PS, LoopedConfig(**SMALL), small_train(seed=3)).run(show_progress=False)
    Trainer.create(tmp_path / "c", PS, LoopedConfig(**SMALL), small_train(seed=4)).run(show_progress=False)
    wa, wb, wc = weights(tmp_path / "a"), weights(tmp_path / "b"), weights(tmp_path / "c")
    assert all(torch.equal(wa[k], wb[k]) for k in wa)
    assert not all(torch.equal(wa[k], wc[k]) for k in wa)


@pytest.mark.parametrize("variant, ema", [
    (dict(recall="internal"), None),
    (dict(recall="none", init="random", outer_norm="rmsnorm"), None),
    (dict(recall="internal"), 0.9),
])
def test_resume_continues_to_the_same_weights_and_metrics(tmp_path, variant, ema):
    model_cfg, train_cfg = LoopedConfig(**SMALL, **variant), small_train(steps=12, ema=ema)
    Trainer.create(tmp_path / "full", PS, model_cfg, train_cfg).run(show_progress=False)
    interrupted = Trainer.create(tmp_path / "part", PS, model_cfg, train_cfg)
    real_step = interrupted.train_step

    def crash_at_step_8():
        if interrupted.step == 8:
            raise KeyboardInterrupt
        return real_step()

    interrupted.train_step = crash_at_step_8
    with pytest.raises(KeyboardInterrupt):
        interrupted.run(show_progress=False)
    resumed = Trainer.resume(tmp_path / "part", steps=12)
    assert resumed.step == 5  # the last checkpoint; steps 6-8 are redone
    resumed.run(show_progress=False)
    wf, wp = weights(tmp_path / "full"), weights(tmp_path / "part")
    assert all(torch.equal(wf[k], wp[k]) for k in wf)
    strip = lambda rows: [{k: v for k, v in r.items() if k != "elapsed_s"} for r in rows]
    assert strip(runs.Run(tmp_path / "full").read_metrics()) == strip(runs.Run(tmp_path / "part").read_metrics())


def test_ema_saves_the_moving_average_of_the_trained_weights(tmp_path):
    decay = 0.7
    trainer = Trainer.create(tmp_path / "r", PS, LoopedConfig(**SMALL), small_train(steps=6, ema=decay))
    real_step, seen = trainer.train_step, []

    def step_and_record():
        out = real_step()
        seen.append({k: v.detach().double().clone() for k, v in trainer.model.named_parameters()})
        return out

    trainer.train_step = step_and_record
    trainer.run(show_progress=False)
    expected = dict(seen[0])  # the first update copies the weights
    for params in seen[1:]:
        expected = {k: decay * expected[k] + (1 - decay) * params[k] for k in expected}
    saved = weights(tmp_path / "r")
    for k, v in expected.items():
        torch.testing.assert_close(saved[k].double(), v, rtol=1e-6, atol=1e-6)
    assert not torch.allclose(saved["embed.weight"].double(), seen[-1]["embed.weight"])


def test_resume_with_a_new_budget_records_it(tmp_path):
    Trainer.create(tmp_path / "r", PS, LoopedConfig(**SMALL), small_train(steps=4)).run(show_progress=False)
    Trainer.resume(tmp_path / "r", steps=6).run(show_progress=False)
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["train"]["steps"] == 6 and cfg["model"]["d_model"] == 16
    assert [r["step"] for r in runs.Run(tmp_path / "r").read_metrics()] == list(range(1, 7))


def test_run_directory_layout(tmp_path):
    Trainer.create(tmp_path / "r", PS, LoopedConfig(**SMALL), small_train()).run(show_progress=False)
    files = {p.name for p in (tmp_path / "r").iterdir()}
    assert {"config.json", "metrics.jsonl", "model.safetensors", "checkpoint.safetensors"} <= files
    assert not [f for f in files if f.endswith(".tmp")]
    cfg = json.loads((tmp_path / "r" / "config.json").read_text())
    assert cfg["task"] == "prefix-sums" and cfg["model"]["d_model"] == 16
    rows = runs.Run(tmp_path / "r").read_metrics()
    assert [r["step"] for r in rows] == list(range(1, 13))
    model, task, _ = runs.load_model(tmp_path / "r")
    assert task.name == "prefix-sums" and isinstance(model, LoopedTransformer)


def test_refuses_to_overwrite_an_existing_run(tmp_path):
    Trainer.create(tmp_path / "r", PS, LoopedConfig(**SMALL), small_train(steps=2)).run(show_progress=False)
    with pytest.raises(runs.RunError):
        Trainer.create(tmp_path / "r", PS, LoopedConfig(**SMALL), small_train(steps=2))


@pytest.mark.parametrize("kw", [dict(steps=None), dict(alpha=1.5), dict(batch_size=0), dict(lr=-1.0), dict(steps=0),
                                dict(ema=1.0), dict(ema=0.0)])
def test_bad_train_configs(kw):
    with pytest.raises(ConfigError):
        small_train(**kw)


def test_a_non_finite_loss_stops_the_run_and_keeps_the_last_checkpoint(tmp_path, monkeypatch, capsys):
    import importlib

    from looped import cli

    train = importlib.import_module("looped.training")

    real = train.progressive_loss
    calls = []

    def exploding(*args, **kwargs):
        calls.append(1)
        loss = real(*args, **kwargs)
        return loss * float("nan") if len(calls) == 7 else loss

    monkeypatch.setattr(train, "progressive_loss", exploding)
    code = cli.main(["train", "--task", "prefix-sums", "--steps", "10", "--checkpoint-every", "5", "--d-model", "16",
                     "--heads", "2", "--out", str(tmp_path / "r"), "--quiet", "--device", "cpu"])
    err = capsys.readouterr().err
    assert code == 2 and "non-finite loss at step 7" in err and len(err.strip().splitlines()) == 1
    meta = runs.read_tensors(tmp_path / "r" / runs.CHECKPOINT, with_metadata=True)[1]
    assert meta["step"] == "5"  # the last good checkpoint
    assert [m["step"] for m in runs.Run(tmp_path / "r").read_metrics()] == [1, 2, 3, 4, 5]
    monkeypatch.setattr(train, "progressive_loss", real)
    assert cli.main(["train", "--out", str(tmp_path / "r"), "--resume", "--steps", "10", "--quiet"]) == 0


def test_resume_clears_temporaries_of_a_killed_write(tmp_path):
    Trainer.create(tmp_path / "r", PS, LoopedConfig(**SMALL), small_train(steps=2)).run(show_progress=False)
    stale = tmp_path / "r" / ".checkpoint.safetensors.x1y2.tmp"
    stale.write_bytes(b"half a checkpoint")
    Trainer.resume(tmp_path / "r", steps=3).run(show_progress=False)
    assert not stale.exists()


def test_bf16_needs_cuda(tmp_path):
    if torch.cuda.is_available():
        pytest.skip("a CUDA device is present")
    with pytest.raises(ConfigError, match="needs a CUDA device"):
        Trainer.create(tmp_path / "r", PS, LoopedConfig(**SMALL), small_train(bf16=True))
    assert not (tmp_path / "r").exists()


def test_masked_loss_needs_a_task_that_has_one(tmp_path):
    with pytest.raises(ConfigError, match="no masked loss"):
        Trainer.create(tmp_path / "r", PS, LoopedConfig(**SMALL), small_train(masked_loss=True))
    assert not (tmp_path / "r").exists()


class SGDTrainer(Trainer):
    def make_optimizer(self):
        return torch.optim.SGD(self.model.parameters(), lr=self.cfg.lr, momentum=0.9, nesterov=True)


def test_resume_restores_any_optimizer_through_its_state_dict(tmp_path):
    SGDTrainer.create(tmp_path / "full", PS, LoopedConfig(**SMALL), small_train(steps=10)).run(show_progress=False)
    def crash_at_step_7(trainer, row):
        if trainer.step == 7:
            raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        SGDTrainer.create(tmp_path / "part", PS, LoopedConfig(**SMALL), small_train(steps=10)).run(
            show_progress=False, on_step=crash_at_step_7)
    resumed = SGDTrainer.resume(tmp_path / "part", steps=10)
    assert isinstance(resumed.opt, torch.optim.SGD) and resumed.step == 5
    assert all("momentum_buffer" in st for st in resumed.opt.state.values()) and resumed.opt.state
    resumed.run(show_progress=False)
    wf, wp = weights(tmp_path / "full"), weights(tmp_path / "part")
    assert all(torch.equal(wf[k], wp[k]) for k in wf)


def test_checkpoint_round_trips_nested_state(tmp_path):
    state = {"state": {0: {"step": torch.tensor(3.0), "buf": torch.arange(4.0), "none": None}},
             "param_groups": [{"lr": 0.1, "betas": (0.9, 0.99), "params": [0], "fused": None, "name": "a.b"}]}
    runs.write_checkpoint(tmp_path / "c.safetensors", {"optimizer": state}, {"step": "7"})
    back, meta = runs.read_checkpoint(tmp_path / "c.safetensors")
    assert meta == {"step": "7"}
    assert list(back["optimizer"]["state"]) == [0]  # integer keys stay integers
    assert torch.equal(back["optimizer"]["state"][0]["buf"], torch.arange(4.0))
    assert back["optimizer"]["state"][0]["none"] is None
    assert back["optimizer"]["param_groups"] == state["param_groups"]


def test_on_step_sees_every_step_off_the_clock(tmp_path, monkeypatch):
    import importlib
    import types

    clock = [0.0]  # a fake clock that only the callback moves
    fake_time = types.SimpleNamespace(perf_counter=lambda: clock[0])
    monkeypatch.setattr(importlib.import_module("looped.training"), "time", fake_time)
    seen = []

    def on_step(trainer, row):
        seen.append((trainer.step, row["step"], trainer.elapsed))
        clock[0] += 100.0

    Trainer.create(tmp_path / "r", PS, LoopedConfig(**SMALL), small_train(steps=4)).run(False, on_step)
    assert [s[:2] for s in seen] == [(i, i) for i in range(1, 5)]
    assert [s[2] for s in seen] == [0.0] * 4  # the callback's time is not training time


def test_a_run_config_that_repeats_the_task_in_train_still_resumes(tmp_path):
    Trainer.create(tmp_path / "r", PS, LoopedConfig(**SMALL), small_train(steps=2)).run(show_progress=False)
    path = tmp_path / "r" / "config.json"
    cfg = json.loads(path.read_text())
    assert "task" not in cfg["train"] and cfg["task"] == "prefix-sums"
    cfg["train"]["task"] = "prefix-sums"  # as older runs wrote it
    path.write_text(json.dumps(cfg))
    Trainer.resume(tmp_path / "r", steps=3).run(show_progress=False)
    assert "task" not in json.loads(path.read_text())["train"]


def test_a_time_budget_shows_how_far_along_the_run_is(tmp_path, capsys):
    Trainer.create(tmp_path / "t", PS, LoopedConfig(**SMALL), small_train(steps=None, minutes=0.01)).run()
    err = capsys.readouterr().err
    assert "100%|" in err and "<00:00 of training time" in err and "step/s" in err
    steps = len(runs.Run(tmp_path / "t").read_metrics())
    assert f"step={steps}," in err.rsplit("\r", 1)[-1]  # the last refresh counts every step
    Trainer.create(tmp_path / "s", PS, LoopedConfig(**SMALL), small_train(steps=3)).run()
    assert "3/3" in capsys.readouterr().err
