"""looped: looped transformers and a fixed-point stability toolkit."""

from .dtnet import DTNet, DTNetConfig
from .model import LoopedConfig, LoopedTransformer

__all__ = ["DTNet", "DTNetConfig", "LoopedConfig", "LoopedTransformer"]
__version__ = "0.1.0"
