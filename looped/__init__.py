"""looped: looped transformers and a fixed-point stability toolkit."""

from .model import LoopedConfig, LoopedTransformer

__all__ = ["LoopedConfig", "LoopedTransformer"]
__version__ = "0.1.0"
