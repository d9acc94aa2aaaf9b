"""The looped transformer: one weight-tied block applied again and again.

A looped model iterates ``h_{t+1} = F(h_t, x)``. This file holds the whole model:

* ``LoopedConfig``: every architectural choice, as a dataclass.
* ``Injection``: the linear recall map ``x -> W x`` (reports its own spectral norm).
* ``LocalAttention`` / ``FullAttention``: the two attention patterns.
* ``Block``: a pre-norm transformer block with an optional injection point inside it.
* ``LoopedTransformer``: embedding, initial state, ``step`` (one iteration) and ``forward``.

Variants
--------
``recall`` (how the input ``x`` reaches the loop)
    ``none``: only through ``h_0``; ``step`` ignores ``x``.
    ``input``: ``F(h, x) = Block(h + W x)``, the input injected at the block input.
    ``internal``: ``W x`` is added to the residual stream between attention and MLP.
``outer_norm`` (the norm at the iteration boundary)
    ``none`` | ``layernorm`` | ``rmsnorm``: ``h_{t+1} = Norm(Block(...))``. The block's own
    pre-norms stay in every variant.

Positions
---------
``attention="local"`` uses attention over a fixed window of relative offsets with a learned
bias per offset and head (a transformer analogue of a convolution). It has no absolute
positions, so the same weights run on any length: a model trained on 32 tokens runs on 512 or
10,000. Information travels at most ``window`` positions per iteration, which is what makes
harder (longer) inputs need more iterations. ``attention="full"`` is global attention for
fixed-size boards, with positions given as categorical features (for example row, column and
box of a sudoku cell), each with a learned embedding. ``attention="groups"`` is full attention
restricted to tokens that share a group (``cfg.groups``: a sudoku cell's row, column or box).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .iteration import iterate
from .config import (DEFAULT_ARCH, MAX_PARAMETERS, ConfigError, TransformerShape, check_field_types,
                     from_known_fields, register_architecture, setting)

RECALLS = ("none", "input", "internal")
OUTER_NORMS = ("none", "layernorm", "rmsnorm")
INITS = ("zeros", "embed", "random")
ATTENTIONS = ("local", "full", "groups")


@register_architecture(DEFAULT_ARCH)
@dataclass
class LoopedConfig(TransformerShape):
    layers_per_loop: int = setting(1, "transformer blocks in one iteration")
    recall: str = setting("internal", "how the input reaches the loop", choices=RECALLS)
    outer_norm: str = setting("layernorm", "the norm at the iteration boundary", choices=OUTER_NORMS)
    init: str = setting("embed", "the initial state h_0", choices=INITS)
    attention: str = setting("local", "attention pattern", choices=ATTENTIONS)
    window: int = setting(4, "local attention: tokens seen on each side")
    causal: bool = setting(True, "local attention sees only earlier tokens")
    position_sizes: tuple[int, ...] = setting((), "sizes of the categorical position features (comma-separated)")
    groups: tuple[tuple[int, ...], ...] = setting(
        (), "attention='groups': each token's group ids, as JSON (e.g. [[0,0],[0,1]])")
    init_scale: float = setting(1.0, "multiply block weights at init")

    def __post_init__(self) -> None:
        check_field_types(self)
        try:
            self.position_sizes = tuple(int(s) for s in self.position_sizes)
            self.groups = tuple(tuple(int(g) for g in row) for row in self.groups)
        except (TypeError, ValueError):
            raise ConfigError("position_sizes and groups must hold integers") from None
        self.validate()

    def validate(self) -> None:
        choices = {"recall": RECALLS, "outer_norm": OUTER_NORMS, "init": INITS, "attention": ATTENTIONS}
        for name, allowed in choices.items():
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("vocab_size", "num_classes", "d_model", "n_heads", "mlp_ratio", "layers_per_loop", "window"):
            if int(getattr(self, name)) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.d_model % self.n_heads:
            raise ConfigError(f"d_model ({self.d_model}) must be divisible by n_heads ({self.n_heads})")
        if self.recall == "none" and self.init == "zeros":
            raise ConfigError("recall='none' with init='zeros' never sees the input; use init='embed' or 'random'")
        if not self.init_scale > 0:
            raise ConfigError(f"init_scale must be positive, got {self.init_scale!r}")
        if self.attention == "groups":
            if not self.groups or len({len(row) for row in self.groups}) != 1 or not self.groups[0]:
                raise ConfigError("attention='groups' needs groups: one equal-length tuple of group ids per token")
        if self.parameter_estimate() > MAX_PARAMETERS:
            raise ConfigError(
                f"this model would have about {self.parameter_estimate():.3g} parameters, over the limit of "
                f"{MAX_PARAMETERS:.3g}; make it smaller or set LOOPED_MAX_PARAMETERS"
            )

    def parameter_estimate(self) -> int:
        """Roughly the parameter count, checked before anything is allocated."""
        d = self.d_model
        block = (4 + 2 * self.mlp_ratio) * d * d
        tables = (self.vocab_size + self.num_classes + sum(self.position_sizes) + 2) * d
        return self.layers_per_loop * block + tables + (2 * self.window + 2) * self.n_heads

    def build(self) -> "LoopedTransformer":
        return LoopedTransformer(self)

    def to_dict(self) -> dict:
        d = asdict(self)
        d["position_sizes"] = list(self.position_sizes)
        d["groups"] = [list(row) for row in self.groups]
        return d

    @classmethod
    def from_dict(cls, d: dict) -> "LoopedConfig":
        return from_known_fields(cls, d, "model")

    @staticmethod
    def task_defaults(settings) -> dict:
        """The fields a task's ``ModelSettings`` set: attention pattern, groups, positions, width."""
        return settings.given(("attention", "causal", "groups", "position_sizes", "d_model", "n_heads"))


def make_norm(kind: str, d: int) -> nn.Module:
    if kind == "layernorm":
        return nn.LayerNorm(d)
    if kind == "rmsnorm":
        return nn.RMSNorm(d)
    return nn.Identity()


class Injection(nn.Module):
    """Linear recall ``x -> W x``, the input map the paper's theory assumes."""

    def __init__(self, d: int):
        super().__init__()
        self.proj = nn.Linear(d, d, bias=False)

    def forward(self, x_emb: torch.Tensor) -> torch.Tensor:
        return self.proj(x_emb)


class LocalAttention(nn.Module):
    """Multi-head attention over the ``window`` previous tokens (causal) or the ``window`` tokens on
    each side (bidirectional), with a learned bias per head and relative offset.

    A token does not attend to itself: its own state is already in the residual stream, and
    leaving it out keeps the neighbours' information from being averaged with it. Queries and keys
    are RMS-normalized per head (QK-norm), which bounds the attention logits and keeps training
    from saturating the softmax. A token with no neighbour (the first, when causal) reads zero.
    Cost is ``O(L * window)``; there are no absolute positions, so any length works.
    """

    def __init__(self, cfg: LoopedConfig):
        super().__init__()
        self.n_heads, self.causal, self.window = cfg.n_heads, cfg.causal, cfg.window
        w, dh = cfg.window, cfg.d_model // cfg.n_heads
        # offsets -w..0 (causal) or -w..w; offset 0 (the token itself) is always masked
        self.register_buffer("offsets", torch.arange(-w, 1 if cfg.causal else w + 1), persistent=False)
        self.shifts = [int(o) + w for o in self.offsets.tolist()]  # index of each offset in the padded keys
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.q_norm, self.k_norm = nn.RMSNorm(dh), nn.RMSNorm(dh)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.rel_bias = nn.Parameter(torch.zeros(cfg.n_heads, len(self.offsets)))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Args: h (B, L, d). Returns: (B, L, d)."""
        B, L, d = h.shape
        H, dh, w = self.n_heads, d // self.n_heads, self.window
        q, k, v = self.qkv(h).view(B, L, 3, H, dh).unbind(2)  # each (B, L, H, dh)
        q, k = self.q_norm(q), self.k_norm(k)
        pad = (0, 0, 0, 0, w, 0 if self.causal else w)
        kp, vp = F.pad(k, pad), F.pad(v, pad)  # position i + offset lives at padded index i + offset + w
        shifts = self.shifts
        scores = torch.stack([(q * kp[:, s : s + L]).sum(-1) for s in shifts], dim=-1)  # (B, L, H, S)
        scores = scores / math.sqrt(dh) + self.rel_bias
        pos = torch.arange(L, device=h.device)[:, None] + self.offsets[None, :]
        invalid = (pos < 0) | (pos >= L) | (self.offsets == 0)[None, :]  # (L, S)
        # offset 0 is never attended; where a row has no valid key it holds a zero-value slot instead
        empty = invalid.all(dim=1, keepdim=True) & (self.offsets == 0)[None, :]
        scores = scores.masked_fill((invalid & ~empty)[:, None, :], float("-inf"))
        att = scores.softmax(dim=-1)
        y = sum(att[..., j, None] * vp[:, s : s + L] for j, s in enumerate(shifts) if s != w)
        return self.out(y.reshape(B, L, d))


class FullAttention(nn.Module):
    """Multi-head self-attention over a whole fixed-size board, with QK-norm.

    With ``attention='groups'`` a token attends only to the other tokens that share at least one
    group with it (``cfg.groups[i]`` lists token ``i``'s group ids, one per kind of group: for a
    sudoku cell its row, column and box), and each head learns a bias per kind of group, so a
    head can specialize to rows, columns or boxes.
    """

    def __init__(self, cfg: LoopedConfig):
        super().__init__()
        self.n_heads, self.causal = cfg.n_heads, cfg.causal
        dh = cfg.d_model // cfg.n_heads
        self.qkv = nn.Linear(cfg.d_model, 3 * cfg.d_model)
        self.q_norm, self.k_norm = nn.RMSNorm(dh), nn.RMSNorm(dh)
        self.out = nn.Linear(cfg.d_model, cfg.d_model)
        self.group_bias = None
        if cfg.attention == "groups":
            g = torch.tensor(cfg.groups)  # (L, K)
            shared = (g[:, None, :] == g[None, :, :]).permute(2, 0, 1).float()  # (K, L, L)
            shared[:, torch.arange(len(g)), torch.arange(len(g))] = 0  # not itself
            self.register_buffer("shared", shared, persistent=False)
            self.group_bias = nn.Parameter(torch.zeros(cfg.n_heads, g.shape[1]))

    def mask(self) -> torch.Tensor:
        """Additive attention bias (H, L, L): the learned group biases, -inf where no group is shared."""
        bias = torch.einsum("hk,kij->hij", self.group_bias, self.shared)
        return bias.masked_fill(self.shared.sum(0) == 0, float("-inf"))

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        """Args: h (B, L, d). Returns: (B, L, d)."""
        B, L, d = h.shape
        q, k, v = self.qkv(h).view(B, L, 3, self.n_heads, d // self.n_heads).permute(2, 0, 3, 1, 4)
        q, k = self.q_norm(q), self.k_norm(k)
        if self.group_bias is None:
            y = F.scaled_dot_product_attention(q, k, v, is_causal=self.causal)
        else:
            y = F.scaled_dot_product_attention(q, k, v, attn_mask=self.mask().to(q.dtype))
        return self.out(y.transpose(1, 2).reshape(B, L, d))


class Block(nn.Module):
    """Pre-norm transformer block. ``inject``, when given, is added between attention and MLP."""

    def __init__(self, cfg: LoopedConfig):
        super().__init__()
        self.ln1 = nn.LayerNorm(cfg.d_model)
        self.attn = LocalAttention(cfg) if cfg.attention == "local" else FullAttention(cfg)
        self.ln2 = nn.LayerNorm(cfg.d_model)
        self.mlp = nn.Sequential(
            nn.Linear(cfg.d_model, cfg.mlp_ratio * cfg.d_model),
            nn.GELU(),
            nn.Linear(cfg.mlp_ratio * cfg.d_model, cfg.d_model),
        )

    def forward(self, h: torch.Tensor, inject: torch.Tensor | None = None) -> torch.Tensor:
        h = h + self.attn(self.ln1(h))
        if inject is not None:
            h = h + inject
        return h + self.mlp(self.ln2(h))


@dataclass
class LoopOutput:
    """What ``LoopedTransformer.forward`` returns.

    logits: {iteration t: (B, L, num_classes)} for each requested t.
    state: (B, L, d) state after the last iteration.
    residuals: (T, B) relative change ``||h_t - h_{t-1}|| / ||h_t||`` per iteration, if asked.
    """

    logits: dict[int, torch.Tensor]
    state: torch.Tensor
    residuals: torch.Tensor | None = None


class Looped(nn.Module):
    """What every looped architecture shares: the loop over ``step``, given four pieces.

    Subclasses define ``embed_input(tokens, positions) -> x``, ``initial_state(x, generator) -> h_0``,
    ``step(h, x) -> h_next`` and ``readout(h) -> logits (B, L, num_classes)``; states may have any
    shape with the batch first.
    """

    def forward(
        self,
        tokens: torch.Tensor,
        iterations: int,
        state: torch.Tensor | None = None,
        positions: torch.Tensor | None = None,
        logits_at: list[int] | None = None,
        track_residuals: bool = False,
        generator: torch.Generator | None = None,
    ) -> LoopOutput:
        """Run ``iterations`` steps from ``state`` (or from ``h_0``).

        Args:
            tokens: (B, L) input ids.
            iterations: number of steps T to run (0 returns logits of the starting state).
            state: (B, L, d) state to continue from; ``None`` starts from ``h_0``.
            positions: (L, P) categorical position features, for board tasks (``position_sizes``).
            logits_at: iterations (1..T, or 0) at which to return logits; default ``[T]``.
            track_residuals: also return the relative residual of every step.
            generator: random source of ``h_0`` when ``init='random'``.
        Returns:
            ``LoopOutput``. Only the current state is kept, so thousands of iterations fit in memory.
        """
        x_emb = self.embed_input(tokens, positions)
        h = self.initial_state(x_emb, generator) if state is None else state
        wanted = set([iterations] if logits_at is None else logits_at)
        logits, residuals = {}, []
        if 0 in wanted:
            logits[0] = self.readout(h)
        for step in iterate(self.step, h, x_emb, iterations):
            h = step.h
            if track_residuals:
                residuals.append(step.residual)
            if step.t in wanted:
                logits[step.t] = self.readout(h)
        res = torch.stack(residuals) if residuals else None
        return LoopOutput(logits=logits, state=h, residuals=res)

    def compile_step(self) -> None:
        """Replace ``step`` with a ``torch.compile``-d version (faster loops; first call compiles)."""
        self.step = torch.compile(self.step, dynamic=None)  # halting shrinks the batch: shapes vary

    def num_parameters(self) -> int:
        return sum(p.numel() for p in self.parameters())


class LoopedTransformer(Looped):
    """A weight-tied transformer block looped ``T`` times.

    Shapes: tokens are (B, L) integer ids; states are (B, L, d_model).
    """

    def __init__(self, cfg: LoopedConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.vocab_size, d)
        self.pos_embeds = nn.ModuleList(nn.Embedding(n, d) for n in cfg.position_sizes)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.layers_per_loop))
        self.inject = Injection(d) if cfg.recall != "none" else None
        self.outer_norm = make_norm(cfg.outer_norm, d)
        self.head_norm = nn.LayerNorm(d)
        self.head = nn.Linear(d, cfg.num_classes)
        self.apply(self._init_weights)
        if cfg.init_scale != 1.0:
            with torch.no_grad():
                for block in self.blocks:
                    for p in block.parameters():
                        if p.dim() == 2:
                            p.mul_(cfg.init_scale)

    @staticmethod
    def _init_weights(m: nn.Module) -> None:
        if isinstance(m, (nn.Linear, nn.Embedding)):
            nn.init.normal_(m.weight, std=0.02 if isinstance(m, nn.Linear) else 1.0)
            if isinstance(m, nn.Linear) and m.bias is not None:
                nn.init.zeros_(m.bias)

    # -- the pieces of one iteration -------------------------------------------------------
    def embed_input(self, tokens: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Args: tokens (B, L); positions (L, P) categorical features or None. Returns x_emb (B, L, d)."""
        x = self.embed(tokens)
        for i, emb in enumerate(self.pos_embeds):
            x = x + emb(positions[:, i])
        return x

    def initial_state(self, x_emb: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        """Args: x_emb (B, L, d). Returns h_0 (B, L, d)."""
        if self.cfg.init == "embed":
            h = x_emb
        elif self.cfg.init == "zeros":
            h = torch.zeros_like(x_emb)
        else:
            h = torch.randn(x_emb.shape, generator=generator, device=x_emb.device, dtype=x_emb.dtype)
        return self.outer_norm(h)

    def step(self, h: torch.Tensor, x_emb: torch.Tensor) -> torch.Tensor:
        """One iteration ``h_{t+1} = F(h_t, x)``.

        Args: h (B, L, d) state; x_emb (B, L, d) embedded input. Returns (B, L, d).
        With ``recall='none'`` the result does not depend on ``x_emb``.
        """
        inject = self.inject(x_emb) if self.inject is not None else None
        if self.cfg.recall == "input":
            h = h + inject
        for block in self.blocks:
            h = block(h, inject if self.cfg.recall == "internal" else None)
        return self.outer_norm(h)

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """Args: h (B, L, d). Returns logits (B, L, num_classes)."""
        return self.head(self.head_norm(h))

