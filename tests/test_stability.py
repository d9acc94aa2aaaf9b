"""The stability toolkit against analytic cases and dense float64 references."""

import math

import pytest
import torch

from looped import stability
from looped.model import LoopedConfig, LoopedTransformer


def rotation_block(r, theta):
    return r * torch.tensor([[math.cos(theta), -math.sin(theta)], [math.sin(theta), math.cos(theta)]], dtype=torch.float64)


def linear_map(A, C):
    """F(h, x) = h A^T + x C^T for batched vectors; J_h = A, J_x = C."""
    return lambda h, x: h @ A.T + x @ C.T


def random_orthogonal(n, seed):
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    return q


def matrix_with_spectrum(blocks, n, seed):
    """Q D Q^T with D block diagonal (2x2 rotation blocks or scalars), padded with small values."""
    D = torch.zeros(n, n, dtype=torch.float64)
    i = 0
    for b in blocks:
        b = torch.as_tensor(b, dtype=torch.float64).reshape(-1, 1) if not torch.is_tensor(b) or b.dim() < 2 else b
        k = b.shape[0]
        D[i : i + k, i : i + k] = b
        i += k
    g = torch.Generator().manual_seed(seed + 1)
    D[i:, i:] = torch.diag(0.5 * torch.rand(n - i, generator=g, dtype=torch.float64))
    Q = random_orthogonal(n, seed)
    return Q @ D @ Q.T


@pytest.mark.parametrize("n", [6, 40])
def test_spectral_radius_of_a_dominant_complex_pair(n):
    A = matrix_with_spectrum([rotation_block(0.9, 0.7)], n, seed=n)
    F = linear_map(A, torch.eye(n, dtype=torch.float64))
    h = torch.zeros(3, n, dtype=torch.float64)
    rho = stability.spectral_radius(F, h, h)
    assert torch.allclose(rho, torch.full((3,), 0.9, dtype=torch.float64), rtol=0.01)
    # a plain Rayleigh quotient would be fooled: check that the pair really is complex
    ev = torch.linalg.eigvals(A)
    assert ev.abs().max().item() == pytest.approx(0.9, rel=1e-9) and ev[ev.abs().argmax()].imag.abs() > 0.5


@pytest.mark.parametrize("spectrum", [[0.95], [1.3], [-0.8]])
def test_spectral_radius_of_real_spectra(spectrum):
    n = 30
    A = matrix_with_spectrum([torch.tensor([[s]]) for s in spectrum], n, seed=3)
    F = linear_map(A, torch.eye(n, dtype=torch.float64))
    h = torch.zeros(2, n, dtype=torch.float64)
    expected = torch.linalg.eigvals(A).abs().max().item()
    assert stability.spectral_radius(F, h, h).tolist() == pytest.approx([expected] * 2, rel=0.01)


def tanh_net(n, m, seed, gain=1.5):
    g = torch.Generator().manual_seed(seed)
    W = gain * torch.randn(n, n, generator=g, dtype=torch.float64) / math.sqrt(n)
    U = torch.randn(n, m, generator=g, dtype=torch.float64) / math.sqrt(m)
    return lambda h, x: torch.tanh(h @ W.T + x @ U.T), W, U


def dense_J(F, h, x):
    return torch.stack([torch.autograd.functional.jacobian(lambda s: F(s[None], x[b : b + 1])[0], h[b]) for b in range(h.shape[0])])


@pytest.mark.parametrize("gain", [0.8, 1.5])
def test_rho_and_norm_match_dense_jacobian_on_tanh_networks(gain):
    F, _, _ = tanh_net(24, 5, seed=1, gain=gain)
    g = torch.Generator().manual_seed(2)
    x = torch.randn(4, 5, generator=g, dtype=torch.float64)
    h = torch.randn(4, 24, generator=g, dtype=torch.float64) * 0.5
    J = dense_J(F, h, x)
    rho_ref = torch.linalg.eigvals(J).abs().amax(1)
    norm_ref = torch.linalg.matrix_norm(J, ord=2)
    torch.testing.assert_close(stability.spectral_radius(F, h, x), rho_ref, rtol=0.01, atol=0)
    torch.testing.assert_close(stability.jacobian_norm(F, h, x), norm_ref, rtol=0.01, atol=0)


def test_ift_sensitivity_matches_dense_solve_and_finite_differences():
    F, _, _ = tanh_net(16, 6, seed=4, gain=0.7)
    g = torch.Generator().manual_seed(5)
    x = torch.randn(3, 6, generator=g, dtype=torch.float64)
    res = stability.fixed_point(F, torch.zeros(3, 16, dtype=torch.float64), x, max_iter=2000, tol=1e-14)
    assert res.converged.all()
    v = torch.randn(3, 6, generator=g, dtype=torch.float64)
    sens = stability.sensitivity(F, res.h, x, v).value
    J = dense_J(F, res.h, x)
    Jx = torch.stack([torch.autograd.functional.jacobian(lambda u: F(res.h[b : b + 1], u[None])[0], x[b]) for b in range(3)])
    exact = torch.linalg.solve(torch.eye(16, dtype=torch.float64) - J, (Jx @ v[..., None])).squeeze(-1).norm(dim=1)
    assert ((sens - exact).abs() / exact).max() < 1e-6
    eps = 1e-6
    moved = stability.fixed_point(F, res.h, x + eps * v, max_iter=2000, tol=1e-14).h
    fd = (moved - res.h).norm(dim=1) / eps
    torch.testing.assert_close(sens, fd, rtol=1e-4, atol=0)


def test_sensitivity_uses_gmres_when_rho_exceeds_one():
    n = 12
    A = matrix_with_spectrum([torch.tensor([[1.4]]), rotation_block(1.1, 0.3)], n, seed=9)
    F = linear_map(A, torch.eye(n, dtype=torch.float64))
    h = torch.zeros(2, n, dtype=torch.float64)
    v = torch.randn(2, n, dtype=torch.float64)
    exact = torch.linalg.solve(torch.eye(n, dtype=torch.float64) - A, v.T).T.norm(dim=1)
    torch.testing.assert_close(stability.sensitivity(F, h, h, v).value, exact, rtol=1e-6, atol=0)


def test_a_map_that_ignores_x_has_zero_sensitivity_and_fails_the_autonomy_check():
    W = 0.5 * random_orthogonal(8, 0)
    F = lambda h, x: torch.tanh(h @ W.T) + 0.1  # noqa: E731
    x = torch.randn(5, 8, dtype=torch.float64)
    h0 = torch.zeros(5, 8, dtype=torch.float64)
    res = stability.fixed_point(F, h0, x, tol=1e-12, max_iter=1000)
    assert (stability.sensitivity(F, res.h, x).value == 0).all()
    report = stability.autonomy_check(F, h0, x)
    assert not report.input_dependent and report.distinct == 1


def test_a_map_with_recall_passes_the_autonomy_check():
    F, _, _ = tanh_net(8, 8, seed=0, gain=0.5)
    x = torch.randn(5, 8, dtype=torch.float64)
    report = stability.autonomy_check(F, torch.zeros(5, 8, dtype=torch.float64), x)
    assert report.input_dependent and report.distinct == 5


def test_divergent_and_nan_maps_are_unreachable_without_exceptions():
    x = torch.zeros(3, 4, dtype=torch.float64)
    h0 = torch.ones(3, 4, dtype=torch.float64)
    res = stability.fixed_point(lambda h, x: 2.0 * h + 1.0, h0, x, max_iter=300)
    assert not res.reachable.any() and not res.converged.any()
    assert torch.isfinite(res.h).all()
    nan_map = lambda h, x: torch.where(torch.arange(3)[:, None] == 1, h * torch.nan, 0.5 * h)  # noqa: E731
    res = stability.fixed_point(nan_map, h0, x, max_iter=200, tol=1e-8)
    assert res.reachable.tolist() == [True, False, True]
    assert res.finite.tolist() == [True, False, True]


def test_solver_reports_per_sample_steps_and_stops_early():
    # h <- a h with a per-sample contraction factor: residual (1-a) a^k ||h0|| / (a^{k+1} ||h0||)... shrinks at rate a
    a = torch.tensor([0.5, 0.9], dtype=torch.float64)[:, None]
    F = lambda h, x: a * h + x  # noqa: E731
    x = torch.ones(2, 3, dtype=torch.float64)
    res = stability.fixed_point(F, torch.zeros(2, 3, dtype=torch.float64), x, max_iter=1000, tol=1e-8)
    assert res.converged.all()
    assert res.steps[0] < res.steps[1]
    assert res.residuals.shape[1] == int(res.steps.max())  # stopped when the slower one converged
    torch.testing.assert_close(res.h, x / (1 - a), rtol=1e-7, atol=0)
    rate = stability.decay_rate(res)
    torch.testing.assert_close(rate, a.squeeze(1), rtol=1e-3, atol=0)


def test_anderson_converges_faster_than_plain_iteration():
    F, _, _ = tanh_net(20, 4, seed=3, gain=0.95)
    x = torch.randn(4, 4, dtype=torch.float64)
    h0 = torch.zeros(4, 20, dtype=torch.float64)
    plain = stability.fixed_point(F, h0, x, max_iter=2000, tol=1e-10)
    anderson = stability.fixed_point(F, h0, x, max_iter=2000, tol=1e-10, method="anderson")
    assert anderson.converged.all() and plain.converged.all()
    assert anderson.steps.max() < plain.steps.max()
    torch.testing.assert_close(anderson.h, plain.h, rtol=1e-7, atol=1e-9)


def test_condition_number_dense_matches_numpy_and_estimate_is_close():
    n = 30
    A = matrix_with_spectrum([torch.tensor([[0.9]])], n, seed=11)
    F = linear_map(A, torch.eye(n, dtype=torch.float64))
    h = torch.zeros(2, n, dtype=torch.float64)
    s = torch.linalg.svdvals(torch.eye(n, dtype=torch.float64) - A)
    exact, is_exact = stability.condition_number(F, h, h)
    assert is_exact
    torch.testing.assert_close(exact, (s[0] / s[-1]).expand(2), rtol=1e-9, atol=0)
    est, is_exact = stability.condition_number(F, h, h, dense_limit=10, k=30)
    assert not is_exact
    torch.testing.assert_close(est, exact, rtol=0.02, atol=0)


def test_backward_stability_separates_contractive_from_expansive_maps():
    n = 10
    good = linear_map(matrix_with_spectrum([torch.tensor([[0.8]])], n, seed=1), torch.eye(n, dtype=torch.float64))
    bad = linear_map(matrix_with_spectrum([torch.tensor([[1.2]])], n, seed=1), torch.eye(n, dtype=torch.float64))
    h = torch.zeros(2, n, dtype=torch.float64)
    g = stability.backward_stability(good, h, h, unroll=20)
    b = stability.backward_stability(bad, h, h, unroll=20)
    assert g.converged.all() and not b.converged.any()
    assert (g.unrolled_growth < 1).all() and (b.unrolled_growth > 1).all()


def test_lipschitz_of_a_linear_fixed_point_map():
    n = 6
    A = 0.5 * random_orthogonal(n, 2)
    F = linear_map(A, torch.eye(n, dtype=torch.float64))
    x = torch.randn(2, n, dtype=torch.float64)
    h = stability.fixed_point(F, torch.zeros(2, n, dtype=torch.float64), x, tol=1e-13, max_iter=500).h
    lip = stability.lipschitz(F, h, x, directions=8)
    top = torch.linalg.matrix_norm(torch.linalg.inv(torch.eye(n, dtype=torch.float64) - A), ord=2)
    assert (lip <= top * 1.001).all() and (lip > 0.3 * top).all()


def test_lipschitz_is_undefined_where_no_fixed_point_is_reached():
    n = 6
    F = linear_map(2.0 * random_orthogonal(n, 3), torch.eye(n, dtype=torch.float64))  # expansive: diverges
    x = torch.randn(2, n, dtype=torch.float64)
    h = torch.zeros(2, n, dtype=torch.float64)
    assert torch.isnan(stability.lipschitz(F, h, x, directions=2, max_iter=50)).all()


def test_basins_agree_for_a_contraction():
    F, _, _ = tanh_net(8, 3, seed=0, gain=0.5)
    x = torch.randn(3, 3, dtype=torch.float64)
    rep = stability.basins(F, torch.randn(3, 8, dtype=torch.float64), x, trials=3, tol=1e-10)
    assert rep.same_basin.all()


def test_count_distinct_with_residual_scaled_tolerance():
    pts = torch.tensor([[0.0, 0.0], [1e-4, 0.0], [1.0, 0.0], [1.0, 1e-9]], dtype=torch.float64)
    assert stability.count_distinct(pts, torch.full((4,), 1e-3)) == 2
    assert stability.count_distinct(pts, torch.full((4,), 1e-12)) == 3


def test_works_through_transformer_attention_on_cpu():
    model = LoopedTransformer(LoopedConfig(d_model=16, n_heads=2, attention="full", causal=False, vocab_size=3,
                                           position_sizes=(6,))).double().eval()
    tokens = torch.randint(0, 3, (2, 6))
    F, h0, x = stability.from_model(model, tokens, torch.arange(6)[:, None])
    res = stability.fixed_point(F, h0, x, max_iter=300, tol=1e-8)
    rho = stability.spectral_radius(F, res.h, x, k=20)
    sens = stability.sensitivity(F, res.h, x).value
    assert rho.shape == (2,) and torch.isfinite(rho).all()
    assert torch.isfinite(sens).all()


def test_norm_growth_of_scalings_and_divergence():
    h0 = torch.randn(3, 4, 5, dtype=torch.float64)
    x = torch.zeros_like(h0)
    scale = torch.tensor([0.5, 1.0, 1.5], dtype=torch.float64).view(3, 1, 1)
    growth = stability.norm_growth(lambda h, x: scale * h, h0, x, steps=7)
    torch.testing.assert_close(growth, scale.flatten() ** 7)
    blown = stability.norm_growth(lambda h, x: h * 1e300, h0, x, steps=3)
    assert torch.isinf(blown).all()


# -- maps of limited precision ---------------------------------------------------------------


def dense_reference(F, h, x, v):
    """Dense float64 ``(I - J_h)^-1 J_x v`` norms and ``rho(J_h)`` per sample, by reverse mode."""
    jac = torch.autograd.functional.jacobian
    sens, rho = [], []
    for b in range(h.shape[0]):
        n, m = h[b].numel(), x[b].numel()
        Jh = jac(lambda s: F(s[None], x[b : b + 1])[0], h[b]).reshape(n, n).double()
        Jx = jac(lambda u: F(h[b : b + 1], u[None])[0], x[b]).reshape(n, m).double()
        u = torch.linalg.solve(torch.eye(n, dtype=torch.float64) - Jh, Jx @ v[b].reshape(m).double())
        sens.append(u.norm())
        rho.append(torch.linalg.eigvals(Jh).abs().max())
    return torch.stack(sens), torch.stack(rho)


def check_toolkit_matches_dense(F, h0, x, F_ref=None, max_iter=200, name="map"):
    """Solve, then check sensitivity (1e-4 relative) and rho (1%) against dense float64 references.

    F_ref: the same map in float64, where F itself is not. Prints the numbers (``pytest -s``).
    Returns (solve result, sensitivity, dense sensitivity).
    """
    res = stability.fixed_point(F, h0, x, max_iter=max_iter, tol=1e-12)
    v = torch.randn(x.shape, generator=torch.Generator().manual_seed(7), dtype=x.dtype)
    rho = stability.spectral_radius(F, res.h, x)
    sens = stability.sensitivity(F, res.h, x, v, rho=rho)
    ref = F_ref or F
    exact, rho_ref = dense_reference(ref, res.h.double(), x.double(), v)
    print(f"\n{name} ({x.dtype}): sample, fixed-point residual reached, product precision, solve residual / tol, "
          "sensitivity relative error, rho, rho relative error")
    for b in range(x.shape[0]):
        print(f"  {b}  {res.reached[b]:.1e}  {sens.precision[b]:.1e}  {sens.residual[b]:.1e} / {sens.tol[b]:.1e}  "
              f"{abs(sens.value[b] / exact[b] - 1):.1e}  {rho_ref[b]:.3f}  {abs(rho[b] / rho_ref[b] - 1):.1e}")
    assert (rho_ref < 1).all(), "the test map must contract"
    assert torch.isfinite(sens.value).all() and sens.converged.all()
    torch.testing.assert_close(sens.value, exact, rtol=1e-4, atol=0)
    torch.testing.assert_close(rho, rho_ref.to(rho.dtype), rtol=0.01, atol=0)
    return res, sens, exact


def test_a_float64_map_computing_partly_in_float32_has_finite_sensitivity():
    # what every transformers RMSNorm does: the map's products are good to ~1e-7, never to the default 1e-10
    F, W, U = tanh_net(16, 6, seed=4, gain=0.7)
    F32 = lambda h, x: torch.tanh((h.float() @ W.float().T).double() + x @ U.T)  # noqa: E731
    x = torch.randn(4, 6, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    h0 = torch.zeros(4, 16, dtype=torch.float64)
    res, sens, _ = check_toolkit_matches_dense(F32, h0, x, name="tanh net, float32 inside")
    assert (res.reached < 1e-6).all()
    assert (sens.precision > 1e-9).all() and (sens.tol > 1e-10).all()
    exact = stability.sensitivity(F, res.h, x)  # the same map in float64 keeps the requested tolerance
    assert (exact.tol == 1e-10).all() and (exact.precision < 1e-14).all() and exact.converged.all()


def test_product_precision_sees_float32_inside_a_float64_map():
    W = random_orthogonal(8, 1)
    h = torch.randn(3, 8, dtype=torch.float64)
    exact = stability.product_precision(lambda u: u @ W.T, h)
    cast = stability.product_precision(lambda u: (u.float() @ W.float().T).double(), h)
    assert (exact < 1e-14).all() and ((cast > 1e-9) & (cast < 1e-5)).all()
    assert (stability.product_precision(lambda u: 0 * u, h) == torch.finfo(torch.float64).eps).all()


def test_float32_maps_get_a_tolerance_their_dtype_can_reach():
    a = torch.tensor([0.5, 0.8])[:, None]
    res = stability.fixed_point(lambda h, x: a * h + x, torch.zeros(2, 3), torch.ones(2, 3), max_iter=500, tol=1e-12)
    assert res.tol == stability.PRECISION_MARGIN * torch.finfo(torch.float32).eps
    assert res.converged.all() and (res.reached <= res.tol).all()


def test_sensitivity_is_nan_where_the_solve_fails():
    n = 10
    A = matrix_with_spectrum([torch.tensor([[1.0]])], n, seed=2)  # I - A is singular
    F = linear_map(A, torch.eye(n, dtype=torch.float64))
    h = torch.zeros(2, n, dtype=torch.float64)
    sens = stability.sensitivity(F, h, h, torch.randn(2, n, dtype=torch.float64))
    assert torch.isnan(sens.value).all() and (sens.residual > stability.FAR_FROM_TOL * sens.tol).all()
    # a non-finite map: NaN for that sample only
    good, _, _ = tanh_net(6, 6, seed=0, gain=0.5)
    F = lambda h, x: torch.where(torch.arange(3)[:, None] == 1, h * torch.nan, good(h, x))  # noqa: E731
    x = torch.randn(3, 6, dtype=torch.float64)
    h = stability.fixed_point(good, torch.zeros(3, 6, dtype=torch.float64), x, tol=1e-12).h
    assert torch.isnan(stability.sensitivity(F, h, x).value).tolist() == [False, True, False]


# -- looped modules written elsewhere (docs/stability.md, "Models from elsewhere") ------------------


class InjectedBlock(torch.nn.Module):
    """A plain looped block: F(h, x) = LayerNorm(h + MLP(h + W x)). h, x: (B, L, d)."""

    def __init__(self, d):
        super().__init__()
        self.inject = torch.nn.Linear(d, d)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(d, 2 * d), torch.nn.GELU(), torch.nn.Linear(2 * d, d))
        self.norm = torch.nn.LayerNorm(d)

    def forward(self, h, x):
        return self.norm(h + self.mlp(h + self.inject(x)))


def test_toolkit_on_a_plain_float32_module():
    import copy

    torch.manual_seed(0)
    block = InjectedBlock(12).eval()  # float32, PyTorch's default initialisation
    x = torch.randn(4, 5, 12, generator=torch.Generator().manual_seed(1))
    res, sens, _ = check_toolkit_matches_dense(block, torch.zeros_like(x), x, F_ref=copy.deepcopy(block).double(),
                                               name="plain nn.Module")
    assert (res.reached < 1e-5).all() and sens.value.dtype == torch.float64
    back = stability.backward_stability(block, res.h, x, unroll=4)  # the transposed solve follows float32 too
    assert back.converged.all() and (back.tol >= 1e-6).all()


def llama_loop(dtype=torch.float64):
    """A one-layer random ``transformers`` Llama looped as F(h, x) = norm(layer(h + x)), with x the token embedding."""
    transformers = pytest.importorskip("transformers")
    torch.manual_seed(0)
    cfg = transformers.LlamaConfig(vocab_size=8, hidden_size=16, intermediate_size=32, num_hidden_layers=1,
                                   num_attention_heads=2, num_key_value_heads=1, head_dim=8, initializer_range=0.2,
                                   attn_implementation="sdpa")
    model = transformers.LlamaModel(cfg).to(dtype).eval()
    torch.nn.init.normal_(model.embed_tokens.weight, std=1.0)  # input as large as the state: a contraction
    layer, norm, rope = model.layers[0], model.norm, model.rotary_emb

    def F(h, x):
        pos = torch.arange(h.shape[1], device=h.device).expand(h.shape[0], -1)
        return norm(layer(h + x, position_embeddings=rope(h, pos), position_ids=pos))

    tokens = torch.randint(0, 8, (4, 6), generator=torch.Generator().manual_seed(1))
    with torch.no_grad():
        x = model.embed_tokens(tokens)
    return F, x


def test_toolkit_on_a_transformers_llama_block():
    F, x = llama_loop()
    res, sens, _ = check_toolkit_matches_dense(F, torch.zeros_like(x), x, name="transformers LlamaDecoderLayer")
    # its RMSNorms compute in float32: the fixed point stalls at the map's precision, far above 1e-12
    assert (res.reached < 1e-6).all() and not res.converged.all()
    assert (sens.precision > 1e-9).all()


def test_toolkit_on_a_torchdeq_map():
    torchdeq = pytest.importorskip("torchdeq")
    from torchdeq.norm import apply_norm, reset_norm

    class Cell(torch.nn.Module):  # torchdeq's f(z, x): the DEQ solves z = f(z, x)
        def __init__(self, c):
            super().__init__()
            self.conv = torch.nn.Conv2d(c, c, 3, padding=1)
            self.inject = torch.nn.Conv2d(c, c, 1)

        def forward(self, z, x):
            return torch.tanh(self.conv(z) + self.inject(x))

    torch.manual_seed(0)
    cell = Cell(4).double().eval()
    apply_norm(cell, "weight_norm")
    reset_norm(cell)
    x = torch.randn(3, 4, 5, 5, generator=torch.Generator().manual_seed(1), dtype=torch.float64)
    z0 = torch.zeros_like(x)
    deq = torchdeq.get_deq(f_solver="fixed_point_iter", f_max_iter=200, f_tol=1e-12, f_stop_mode="rel").eval()
    (z_star,), info = deq(lambda z: cell(z, x), z0)
    res, _, _ = check_toolkit_matches_dense(cell, z0, x, name="torchdeq cell")
    torch.testing.assert_close(res.h, z_star, rtol=1e-8, atol=1e-10)  # both solvers find the same fixed point
