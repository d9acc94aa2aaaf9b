import json

import pytest
import torch

from looped import runs, stability
from looped.dtnet import DTNet, DTNetConfig
from looped.config import ConfigError, config_from_dict


def test_published_size_and_shapes():
    model = DTNet(DTNetConfig())  # width 400, 2 residual blocks: the prefix-sums model
    assert 3.0e6 < model.num_parameters() < 3.3e6
    assert model.num_parameters() == DTNetConfig().parameter_estimate()
    small = DTNet(DTNetConfig(width=8))
    tokens = torch.randint(0, 2, (3, 11))
    out = small(tokens, 4, logits_at=[0, 4], track_residuals=True)
    assert out.logits[4].shape == (3, 11, 2) and out.state.shape == (3, 8, 11) and out.residuals.shape == (4, 3)


def test_recall_reinjects_the_input_every_step():
    model = DTNet(DTNetConfig(width=8)).double()
    tokens = torch.randint(0, 2, (2, 9))
    x = model.embed_input(tokens)
    h = torch.rand(2, 8, 9, dtype=torch.float64)
    other = model.embed_input(1 - tokens)
    assert not torch.allclose(model.step(h, x), model.step(h, other))  # the step sees x, not only h


def test_a_dtnet_run_trains_saves_loads_and_is_analyzable(tmp_path):
    from looped import cli

    out = tmp_path / "dt"
    assert cli.main(["train", "--task", "prefix-sums", "--arch", "dtnet", "--width", "8", "--steps", "3",
                     "--train-iters", "3", "--batch-size", "4", "--out", str(out), "--quiet", "--device", "cpu"]) == 0
    cfg = json.loads((out / "config.json").read_text())
    assert cfg["model"]["arch"] == "dtnet"
    model, task, _ = runs.load_model(out)
    assert isinstance(model, DTNet)
    assert cli.main(["train", "--out", str(out), "--resume", "--steps", "4", "--quiet"]) == 0
    batch = task.generate(task.split("8"), 2, seed=0)
    F, h0, x = stability.from_model(model.double(), batch.inputs)
    res = stability.fixed_point(F, h0, x, max_iter=5, tol=1e-9)
    assert res.h.shape == h0.shape


def test_config_dispatch_and_errors():
    assert isinstance(config_from_dict({"arch": "dtnet", "width": 16}), DTNetConfig)
    with pytest.raises(ConfigError, match="unknown model architecture"):
        config_from_dict({"arch": "resnet"})
    with pytest.raises(ConfigError):
        DTNetConfig(width=0)
    with pytest.raises(ConfigError, match="LOOPED_MAX_PARAMETERS"):
        DTNetConfig(width=10**6)
