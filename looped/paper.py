"""The paper's looped transformer, as its public code defines it (``--arch paper``).

*Stability and Generalization in Looped Transformers* (arXiv 2604.15259); its code is
``ashlab11/generalization`` (MIT), ``deepthinking/models/transformer.py`` and ``attention.py``.
This is a new implementation of that model, equal to it output for output (``tests/test_paper.py``
checks it against fixtures the paper's own code produced). The state ``s`` is carried, the embedded
input ``u`` is recalled:

* **input**: ``u = Embedding(tokens)``, the paper's linear projection of one-hot planes (``from_paper``
  turns one into the other), optionally RMS-normalized (``input_norm``); ``s_0 = u``.
* **one iteration**: ``blocks`` blocks (1 in the paper's grid, 15 for its fixed-depth baseline), each
  ``s <- Sublayer(MLP, Sublayer(Attention, s))`` with

  ``Sublayer(branch, s) = post( residual( s, peri( branch( recall( pre(s) ) ) ) ) )``

  where ``pre``, ``peri`` and ``post`` are RMSNorms with a learned weight, present or not by the
  placement ``norm`` (``NORMS``), one of each shared by the block's two sub-layers, and ``residual``
  is ``s + update`` or a GRU cell ``GRUCell(update, s)`` (``RESIDUALS``).
* **recall** (``RECALLS``): ``none``, the block never sees ``u``; ``external``, ``s <- Wx s + Wh u``
  before the block; ``internal``, each sub-layer's branch input is ``Wx pre(s) + Wh u`` (one pair of
  linear maps with bias per block, shared by its two sub-layers), and ``u`` never enters the
  residual stream.
* **attention**: fused qkv; rotary positions over the board's 1 or 2 axes (``head_dim / (2 axes)``
  frequencies per axis, base 10,000, on consecutive channel pairs); then RMSNorm on each head's q and
  k (``qk_norm``); ``full`` attention, or ``neighbourhood`` attention over ``kernel_size`` tokens whose
  window shifts inward at the borders (NATTEN's 1D definition); ``sinks`` zero-initialised extra keys
  and values that every token can attend to.
* **readout**: RMSNorm (``head_norm``), ``Linear(d, d)``, GELU, ``Linear(d, classes)``.

"Outer normalization" in the paper's text is read as ``norm="post"``, the only placement that
normalizes the carried state itself (docs/paper.md).
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import (MAX_PARAMETERS, ConfigError, TransformerShape, check_field_types, from_known_fields,
                     register_architecture, setting)
from .model import Looped

RECALLS = ("none", "external", "internal")
NORMS = {  # placement -> (pre, peri, post): which RMSNorms a sub-layer has
    "pre": (True, False, False),
    "peri": (True, True, False),
    "post": (False, False, True),
    "sandwich": (True, False, True),
}
RESIDUALS = ("add", "gru")
ATTENTIONS = ("full", "neighbourhood")
ROPE_BASE = 10_000.0


@register_architecture("paper")
@dataclass
class PaperConfig(TransformerShape):
    d_model: int = setting(256, "width of the residual stream")
    n_heads: int = setting(8, "attention heads", flags=("--heads", "--n-heads"))
    blocks: int = setting(1, "paper: distinct blocks per iteration (15 and --train-iters 1: its fixed-depth baseline)")
    recall: str = setting("internal", "paper: none | external (Wx s + Wh u before the block) | internal (in each "
                          "sub-layer's branch)", choices=RECALLS)
    norm: str = setting("post", "paper: RMSNorm placement in each sub-layer; post is the paper's outer normalization",
                        choices=tuple(NORMS))
    residual: str = setting("add", "paper: the residual update, s + update or a GRU cell", choices=RESIDUALS)
    attention: str = setting("full", "paper: full or neighbourhood", choices=ATTENTIONS)
    kernel_size: int = setting(5, "paper: tokens a neighbourhood-attention window spans (odd)")
    sinks: int = setting(0, "paper: zero-initialised extra keys and values every token can attend to")
    board: tuple[int, ...] = setting((), "paper: the grid of the input (e.g. 9,9) for 2D rotary positions; "
                                     "empty: a sequence of any length")
    qk_norm: bool = setting(True, "paper: RMSNorm on each head's queries and keys after the rotation")
    head_norm: bool = setting(True, "paper: RMSNorm before the readout")
    input_norm: bool = setting(False, "paper: RMSNorm on the embedded input")

    def __post_init__(self) -> None:
        check_field_types(self)
        try:
            self.board = tuple(int(s) for s in self.board)
        except (TypeError, ValueError):
            raise ConfigError("board must hold integers") from None
        self.validate()

    def validate(self) -> None:
        for name, allowed in (("recall", RECALLS), ("norm", tuple(NORMS)), ("residual", RESIDUALS),
                              ("attention", ATTENTIONS)):
            if getattr(self, name) not in allowed:
                raise ConfigError(f"{name} must be one of {', '.join(allowed)}, got {getattr(self, name)!r}")
        for name in ("vocab_size", "num_classes", "d_model", "n_heads", "mlp_ratio", "blocks", "kernel_size"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.sinks < 0:
            raise ConfigError(f"sinks must not be negative, got {self.sinks}")
        if len(self.board) > 2 or any(s < 1 for s in self.board):
            raise ConfigError(f"board must be empty (a sequence) or one or two positive sizes, got {self.board}")
        axes = max(1, len(self.board))
        if self.d_model % self.n_heads or (self.d_model // self.n_heads) % (2 * axes):
            raise ConfigError(f"d_model / n_heads must be a multiple of {2 * axes} for rotary positions over {axes} "
                              f"{'axes' if axes > 1 else 'axis'}, got {self.d_model} / {self.n_heads}")
        if self.attention == "neighbourhood" and (self.board or self.kernel_size % 2 == 0):
            raise ConfigError("neighbourhood attention is for sequences (an empty board) and an odd kernel_size")
        if self.parameter_estimate() > MAX_PARAMETERS:
            raise ConfigError(f"this model would have about {self.parameter_estimate():.3g} parameters, over the "
                              f"limit of {MAX_PARAMETERS:.3g}; make it smaller or set LOOPED_MAX_PARAMETERS")

    def parameter_estimate(self) -> int:
        d = self.d_model
        block = (4 + 2 * self.mlp_ratio + 2 + (6 if self.residual == "gru" else 0)) * d * d
        return self.blocks * block + (self.vocab_size + self.num_classes + d) * d

    def build(self) -> "PaperTransformer":
        return PaperTransformer(self)

    def to_dict(self) -> dict:
        return {"arch": "paper", **asdict(self), "board": list(self.board)}

    @classmethod
    def from_dict(cls, d: dict) -> "PaperConfig":
        return from_known_fields(cls, d, "paper")

    @staticmethod
    def task_defaults(settings) -> dict:
        """The task's board; full attention on a board, neighbourhood attention on a sequence."""
        if settings.board is None:
            return {}
        return {"board": settings.board, "attention": "full" if settings.board else "neighbourhood"}


def rms_norm(d: int, on: bool) -> nn.Module:
    return nn.RMSNorm(d) if on else nn.Identity()


COMPLEX_OK = (torch.float32, torch.float64)  # dtypes whose channel pairs view as complex


def rotary(x: torch.Tensor, coords: torch.Tensor) -> torch.Tensor:
    """Rotate consecutive channel pairs of ``x`` (..., L, hd) by angles from each token's coordinates
    (L, axes): axis a takes ``hd / (2 axes)`` pairs, frequencies ``ROPE_BASE ** (-j / that)``. The angles are
    computed in float32, as the paper's code computes them."""
    axes = coords.shape[1]
    k = x.shape[-1] // (2 * axes)
    theta = 1 / ROPE_BASE ** (torch.arange(k, device=x.device, dtype=torch.float32) / k)
    angles = torch.cat([coords[:, a, None].float() * theta for a in range(axes)], dim=-1)  # (L, hd / 2)
    cos, sin = angles.cos().to(x.dtype), angles.sin().to(x.dtype)
    # the real form where complex cannot serve: inductor has no complex kernels (it fuses this into one), and
    # bfloat16 has no complex type
    if torch.compiler.is_compiling() or x.dtype not in COMPLEX_OK:
        re, im = x.unflatten(-1, (-1, 2)).unbind(-1)
        return torch.stack((re * cos - im * sin, re * sin + im * cos), dim=-1).flatten(-2)
    pairs = torch.view_as_complex(x.unflatten(-1, (-1, 2)))  # (..., L, hd / 2): re + i im per pair
    return torch.view_as_real(pairs * torch.complex(cos, sin)).flatten(-2)  # eager: one complex product


def neighbourhood(L: int, kernel: int, device=None) -> torch.Tensor:
    """(L, min(kernel, L)) the keys each query sees: ``kernel`` consecutive tokens centred on it, the
    window shifted inward at the borders (NATTEN's 1D neighbourhood); all tokens when ``L < kernel``."""
    width = min(kernel, L)
    start = (torch.arange(L, device=device) - kernel // 2).clamp(0, L - width)
    return start[:, None] + torch.arange(width, device=device)


class Attention(nn.Module):
    """Multi-head attention of the paper's block: fused qkv, rotary positions, qk-norm, sinks."""

    def __init__(self, cfg: PaperConfig):
        super().__init__()
        d, self.n_heads, self.cfg = cfg.d_model, cfg.n_heads, cfg
        hd = d // cfg.n_heads
        self.qkv = nn.Linear(d, 3 * d)
        self.out = nn.Linear(d, d)
        self.q_norm, self.k_norm = rms_norm(hd, cfg.qk_norm), rms_norm(hd, cfg.qk_norm)
        if cfg.sinks:
            self.sink_k = nn.Parameter(torch.zeros(cfg.sinks, cfg.n_heads, hd))
            self.sink_v = nn.Parameter(torch.zeros(cfg.sinks, cfg.n_heads, hd))

    def coords(self, L: int, device) -> torch.Tensor:
        """(L, axes) each token's grid coordinates, in row-major order."""
        if not self.cfg.board:
            return torch.arange(L, device=device)[:, None]
        rows, cols = (self.cfg.board + (1,))[:2]
        if rows * cols != L:
            raise ValueError(f"a board of {self.cfg.board} holds {rows * cols} tokens, got {L}")
        i = torch.arange(L, device=device)
        return torch.stack((i // cols, i % cols), dim=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Args: x (B, L, d). Returns (B, L, d)."""
        B, L, d = x.shape
        q, k, v = self.qkv(x).view(B, L, 3, self.n_heads, -1).permute(2, 0, 3, 1, 4)  # each (B, H, L, hd)
        coords = self.coords(L, x.device)
        q, k = self.q_norm(rotary(q, coords)), self.k_norm(rotary(k, coords))
        if self.cfg.attention == "full":
            if self.cfg.sinks:
                k = torch.cat([self.sink_k.permute(1, 0, 2).expand(B, -1, -1, -1).to(k.dtype), k], dim=2)
                v = torch.cat([self.sink_v.permute(1, 0, 2).expand(B, -1, -1, -1).to(v.dtype), v], dim=2)
            y = F.scaled_dot_product_attention(q, k, v)
        else:
            y = self.windowed(q, k, v)
        return self.out(y.transpose(1, 2).reshape(B, L, d))

    def windowed(self, q: torch.Tensor, k: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
        """Neighbourhood attention (with sinks). Args: q, k, v (B, H, L, hd). Returns (B, H, L, hd)."""
        idx = neighbourhood(q.shape[2], self.cfg.kernel_size, q.device)  # (L, W)
        kw, vw = k[:, :, idx], v[:, :, idx]  # (B, H, L, W, hd)
        if self.cfg.sinks:
            B, H, L = q.shape[:3]
            sink_k = self.sink_k.permute(1, 0, 2)[None, :, None].expand(B, H, L, -1, -1).to(k.dtype)
            sink_v = self.sink_v.permute(1, 0, 2)[None, :, None].expand(B, H, L, -1, -1).to(v.dtype)
            kw, vw = torch.cat([kw, sink_k], dim=3), torch.cat([vw, sink_v], dim=3)
        scores = (q[..., None, :] * kw).sum(-1) / math.sqrt(q.shape[-1])  # (B, H, L, W)
        return (scores.softmax(dim=-1)[..., None] * vw).sum(-2)


class GRUResidual(nn.Module):
    """``GRUCell(update, s)``: the update is the input, the carried state the hidden state. Initialised as
    the paper's code does: Xavier input weights, orthogonal recurrent weights, update-gate biases 1."""

    def __init__(self, d: int):
        super().__init__()
        self.cell = nn.GRUCell(d, d)
        with torch.no_grad():
            nn.init.xavier_uniform_(self.cell.weight_ih)
            nn.init.orthogonal_(self.cell.weight_hh)
            for bias in (self.cell.bias_ih, self.cell.bias_hh):
                bias.zero_()
                bias[d : 2 * d].fill_(1.0)

    def forward(self, s: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        return self.cell(update.reshape(-1, s.shape[-1]), s.reshape(-1, s.shape[-1])).reshape(s.shape)


class AddResidual(nn.Module):
    def forward(self, s: torch.Tensor, update: torch.Tensor) -> torch.Tensor:
        return s + update


class Recall(nn.Module):
    """The paper's linear recall ``Wx s + Wh u`` (both with bias)."""

    def __init__(self, d: int):
        super().__init__()
        self.wx, self.wh = nn.Linear(d, d), nn.Linear(d, d)

    def forward(self, s: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        return self.wx(s) + self.wh(u)


class Block(nn.Module):
    """One block: an attention sub-layer then an MLP sub-layer (the module docstring)."""

    def __init__(self, cfg: PaperConfig):
        super().__init__()
        d, (pre, peri, post) = cfg.d_model, NORMS[cfg.norm]
        self.mode = cfg.recall
        self.pre, self.peri, self.post = rms_norm(d, pre), rms_norm(d, peri), rms_norm(d, post)
        self.recall = Recall(d) if cfg.recall != "none" else None
        self.residual = GRUResidual(d) if cfg.residual == "gru" else AddResidual()
        self.attn = Attention(cfg)
        self.mlp = nn.Sequential(nn.Linear(d, cfg.mlp_ratio * d), nn.GELU(), nn.Linear(cfg.mlp_ratio * d, d))

    def sublayer(self, branch: nn.Module, s: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        x = self.pre(s)
        if self.mode == "internal":
            x = self.recall(x, u)
        return self.post(self.residual(s, self.peri(branch(x))))

    def forward(self, s: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """Args: s, u (B, L, d). Returns the next state (B, L, d)."""
        if self.mode == "external":
            s = self.recall(s, u)
        return self.sublayer(self.mlp, self.sublayer(self.attn, s, u), u)


class PaperTransformer(Looped):
    """The paper's looped transformer. Shapes: tokens (B, L) with L the board's cells in row-major order
    (any L for a sequence); states (B, L, d_model); logits (B, L, num_classes)."""

    def __init__(self, cfg: PaperConfig):
        super().__init__()
        self.cfg = cfg
        d = cfg.d_model
        self.embed = nn.Embedding(cfg.vocab_size, d)
        bound = 1 / math.sqrt(cfg.vocab_size)  # as nn.Linear's default init of a projection of one-hot planes
        nn.init.uniform_(self.embed.weight, -bound, bound)
        self.input_norm = rms_norm(d, cfg.input_norm)
        self.blocks = nn.ModuleList(Block(cfg) for _ in range(cfg.blocks))
        self.head = nn.Sequential(rms_norm(d, cfg.head_norm), nn.Linear(d, d), nn.GELU(), nn.Linear(d, cfg.num_classes))

    def embed_input(self, tokens: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Args: tokens (B, L) (positions come from the board, not from ``positions``). Returns u (B, L, d)."""
        return self.input_norm(self.embed(tokens))

    def initial_state(self, u: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return u

    def step(self, s: torch.Tensor, u: torch.Tensor) -> torch.Tensor:
        """One iteration: every block in turn. With ``recall='none'`` the result does not depend on ``u``."""
        for block in self.blocks:
            s = block(s, u)
        return s

    def readout(self, s: torch.Tensor) -> torch.Tensor:
        return self.head(s)
