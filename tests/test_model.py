import math

import pytest
import torch

from looped.config import ConfigError
from looped.model import FullAttention, LocalAttention, LoopedConfig, LoopedTransformer


def make(**kw):
    base = dict(d_model=16, n_heads=2, window=4)
    base.update(kw)
    return LoopedTransformer(LoopedConfig(**base)).eval()


def random_state(model, B=3, L=10):
    x = torch.randint(0, 2, (B, L))
    x_emb = model.embed_input(x)
    return torch.randn(B, L, model.cfg.d_model), x_emb


@pytest.mark.parametrize("outer_norm", ["none", "layernorm", "rmsnorm"])
def test_step_ignores_x_without_recall(outer_norm):
    model = make(recall="none", outer_norm=outer_norm)
    h, x1 = random_state(model)
    x2 = torch.randn_like(x1) * 10
    assert torch.equal(model.step(h, x1), model.step(h, x2))


@pytest.mark.parametrize("recall", ["input", "internal"])
def test_step_depends_on_x_with_recall(recall):
    model = make(recall=recall)
    h, x1 = random_state(model)
    x2 = torch.randn_like(x1) * 10
    assert not torch.allclose(model.step(h, x1), model.step(h, x2))


def test_layernorm_outer_norm_normalizes_every_token():
    model = make(outer_norm="layernorm")
    h, x = random_state(model)
    out = model.step(10 * h, x)
    assert torch.allclose(out.mean(-1), torch.zeros(()), atol=1e-5)
    assert torch.allclose(out.var(-1, unbiased=False), torch.ones(()), atol=1e-3)


def test_rmsnorm_outer_norm_normalizes_every_token():
    model = make(outer_norm="rmsnorm")
    h, x = random_state(model)
    out = model.step(10 * h, x)
    assert torch.allclose(out.pow(2).mean(-1).sqrt(), torch.ones(()), atol=1e-3)


def test_without_outer_norm_the_state_is_not_normalized():
    model = make(outer_norm="none")
    h, x = random_state(model)
    out = model.step(10 * h, x)
    assert (out.pow(2).mean(-1).sqrt() > 5).all()


def dense_local_attention(att: LocalAttention, h: torch.Tensor) -> torch.Tensor:
    """Reference: full attention with an explicit band mask and relative bias; a row with no
    valid key reads zero."""
    B, L, d = h.shape
    H = att.n_heads
    q, k, v = att.qkv(h).view(B, L, 3, H, d // H).permute(2, 0, 3, 1, 4)
    q, k = att.q_norm(q), att.k_norm(k)
    scores = q @ k.transpose(-1, -2) / math.sqrt(d // H)  # (B, H, L, L)
    bias = torch.full((H, L, L), float("-inf"), dtype=h.dtype)
    for j, off in enumerate(att.offsets.tolist()):
        for i in range(L):
            if off != 0 and 0 <= i + off < L:
                bias[:, i, i + off] = att.rel_bias[:, j]
    weights = (scores + bias).softmax(-1).nan_to_num(0.0)
    y = weights @ v
    return att.out(y.transpose(1, 2).reshape(B, L, d))


@pytest.mark.parametrize("causal", [True, False])
def test_local_attention_matches_dense_reference_in_float64(causal):
    cfg = LoopedConfig(d_model=16, n_heads=2, window=5, causal=causal)
    att = LocalAttention(cfg).double()
    torch.nn.init.normal_(att.rel_bias)
    h = torch.randn(2, 13, 16, dtype=torch.float64)
    torch.testing.assert_close(att(h), dense_local_attention(att, h), rtol=1e-10, atol=1e-12)


def test_group_attention_matches_a_dense_reference_in_float64():
    groups = [(i // 3, 3 + i % 3) for i in range(9)]  # a 3x3 board: row and column groups
    cfg = LoopedConfig(d_model=16, n_heads=2, attention="groups", groups=groups, causal=False)
    att = FullAttention(cfg).double()
    torch.nn.init.normal_(att.group_bias)
    h = torch.randn(2, 9, 16, dtype=torch.float64)
    B, L, d, H = 2, 9, 16, 2
    q, k, v = att.qkv(h).view(B, L, 3, H, d // H).permute(2, 0, 3, 1, 4)
    q, k = att.q_norm(q), att.k_norm(k)
    bias = torch.full((H, L, L), float("-inf"), dtype=torch.float64)
    for i in range(L):
        for j in range(L):
            same_row, same_col = groups[i][0] == groups[j][0], groups[i][1] == groups[j][1]
            if i != j and (same_row or same_col):
                bias[:, i, j] = same_row * att.group_bias[:, 0] + same_col * att.group_bias[:, 1]
    y = ((q @ k.transpose(-1, -2)) / math.sqrt(d // H) + bias).softmax(-1) @ v
    expected = att.out(y.transpose(1, 2).reshape(B, L, d))
    torch.testing.assert_close(att(h), expected, rtol=1e-10, atol=1e-12)


def test_group_attention_sees_only_tokens_sharing_a_group():
    groups = [(i // 3, 3 + i % 3) for i in range(9)]
    model = make(attention="groups", groups=groups, causal=False, recall="internal")
    h = torch.randn(1, 9, 16, requires_grad=True)
    model.blocks[0].attn(model.blocks[0].ln1(h))[0, 0].sum().backward()
    touched = h.grad[0].abs().sum(-1) > 0
    assert touched.tolist() == [i // 3 == 0 or i % 3 == 0 for i in range(9)]


def test_runs_at_any_length_and_is_translation_consistent():
    model = make(recall="internal", causal=True)
    x = torch.randint(0, 2, (1, 600))
    long = model(x, 5).logits[5]
    short = model(x[:, :40], 5).logits[5]
    # causal and local: the first 40 positions cannot see the rest
    torch.testing.assert_close(long[:, :40], short, rtol=1e-5, atol=1e-5)


def test_forward_runs_thousands_of_iterations_keeping_only_requested_logits():
    model = make()
    x = torch.randint(0, 2, (2, 16))
    out = model(x, 1500, logits_at=[1, 1500], track_residuals=True)
    assert sorted(out.logits) == [1, 1500]
    assert out.residuals.shape == (1500, 2)
    assert out.state.shape == (2, 16, 16)


def test_forward_continues_from_a_state():
    model = make()
    x = torch.randint(0, 2, (2, 16))
    full = model(x, 7).state
    half = model(x, 3).state
    torch.testing.assert_close(model(x, 4, state=half).state, full)


def test_random_init_is_seeded_through_forward():
    model = make(init="random", recall="internal")
    x = torch.randint(0, 2, (2, 5))
    run = lambda seed: model(x, 3, generator=torch.Generator().manual_seed(seed)).state  # noqa: E731
    assert torch.equal(run(1), run(1))
    assert not torch.equal(run(1), run(2))


@pytest.mark.parametrize(
    "kw",
    [dict(recall="sideways"), dict(outer_norm="batchnorm"), dict(d_model=10, n_heads=3), dict(window=0),
     dict(recall="none", init="zeros"), dict(init_scale=0.0), dict(attention="groups"),
     dict(attention="groups", groups=((0, 1), (2,)))],
)
def test_bad_configs_are_rejected(kw):
    with pytest.raises(ConfigError):
        LoopedConfig(**kw)


def test_config_round_trips_through_dict():
    cfg = LoopedConfig(d_model=32, position_sizes=(9, 9), attention="groups", groups=((0, 1), (1, 0)))
    assert LoopedConfig.from_dict(cfg.to_dict()) == cfg
    with pytest.raises(ConfigError):
        LoopedConfig.from_dict({**cfg.to_dict(), "bogus": 1})


def test_absurd_sizes_are_refused_before_allocation():
    with pytest.raises(ConfigError, match="LOOPED_MAX_PARAMETERS"):
        LoopedConfig(d_model=10**6, n_heads=1)
    with pytest.raises(ConfigError, match="parameters"):
        LoopedConfig(window=10**9)
    small = LoopedConfig(d_model=16, n_heads=2)
    assert 0.5 < small.parameter_estimate() / LoopedTransformer(small).num_parameters() < 2
