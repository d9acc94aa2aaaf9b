"""The DeepThinking baseline: DT-net with recall, 1D (Bansal et al., 2022), from its description.

A convolutional looped model over a sequence:

* project: ``h_0 = ReLU(Conv(x))``, where ``x`` is the one-hot input (``vocab_size`` channels);
* step (the recurrent module): ``h = ReLU(Conv([h, x]))`` — recall by concatenating the input —
  then ``blocks`` residual blocks ``ReLU(h + Conv(ReLU(Conv(h))))``;
* readout: three convolutions ``width -> width -> width/2 -> num_classes`` with ReLUs.

Every convolution has kernel 3, padding 1 and no bias. Width 400 with 2 residual blocks is the
published prefix-sums model (about 3.1M parameters). States are (B, width, L). It plugs into the
same training (progressive loss), evaluation, halting and stability analysis as the transformer.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch
import torch.nn.functional as F
from torch import nn

from .config import (MAX_PARAMETERS, ConfigError, Vocabulary, check_field_types, from_known_fields,
                     register_architecture, setting)
from .model import Looped


@register_architecture("dtnet")
@dataclass
class DTNetConfig(Vocabulary):
    width: int = setting(400, "channels")
    blocks: int = setting(2, "residual blocks in one iteration")

    def __post_init__(self) -> None:
        check_field_types(self)
        for name in ("vocab_size", "num_classes", "width", "blocks"):
            if getattr(self, name) < 1:
                raise ConfigError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if self.parameter_estimate() > MAX_PARAMETERS:
            raise ConfigError(f"this DT-net would have about {self.parameter_estimate():.3g} parameters, over the "
                              f"limit of {MAX_PARAMETERS:.3g}; make it smaller or set LOOPED_MAX_PARAMETERS")

    def parameter_estimate(self) -> int:
        w, v = self.width, self.vocab_size
        return 3 * (v * w + (w + v) * w + 2 * self.blocks * w * w + w * w + w * (w // 2) + (w // 2) * self.num_classes)

    def build(self) -> "DTNet":
        return DTNet(self)

    def to_dict(self) -> dict:
        return {"arch": "dtnet", **asdict(self)}

    @classmethod
    def from_dict(cls, d: dict) -> "DTNetConfig":
        return from_known_fields(cls, d, "DT-net")

    @staticmethod
    def task_defaults(settings) -> dict:
        """None: a DT-net sees a sequence through its convolutions and takes only vocabulary and classes."""
        return {}


def conv(c_in: int, c_out: int) -> nn.Conv1d:
    return nn.Conv1d(c_in, c_out, kernel_size=3, padding=1, bias=False)


class ResidualBlock(nn.Module):
    def __init__(self, width: int):
        super().__init__()
        self.conv1, self.conv2 = conv(width, width), conv(width, width)

    def forward(self, h: torch.Tensor) -> torch.Tensor:
        return F.relu(h + self.conv2(F.relu(self.conv1(h))))


class DTNet(Looped):
    """DT-net with recall. Shapes: tokens (B, L); x (B, vocab_size, L); states (B, width, L)."""

    def __init__(self, cfg: DTNetConfig):
        super().__init__()
        self.cfg = cfg
        w = cfg.width
        self.project = conv(cfg.vocab_size, w)
        self.recall = conv(w + cfg.vocab_size, w)
        self.blocks = nn.Sequential(*(ResidualBlock(w) for _ in range(cfg.blocks)))
        self.head = nn.Sequential(conv(w, w), nn.ReLU(), conv(w, w // 2), nn.ReLU(), conv(w // 2, cfg.num_classes))

    def embed_input(self, tokens: torch.Tensor, positions: torch.Tensor | None = None) -> torch.Tensor:
        """Args: tokens (B, L) (positions are implicit in the convolutions). Returns (B, vocab_size, L)."""
        return F.one_hot(tokens, self.cfg.vocab_size).to(self.project.weight.dtype).transpose(1, 2)

    def initial_state(self, x: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
        return F.relu(self.project(x))

    def step(self, h: torch.Tensor, x: torch.Tensor) -> torch.Tensor:
        return self.blocks(F.relu(self.recall(torch.cat([h, x], dim=1))))

    def readout(self, h: torch.Tensor) -> torch.Tensor:
        """Args: h (B, width, L). Returns logits (B, L, num_classes)."""
        return self.head(h).transpose(1, 2)
