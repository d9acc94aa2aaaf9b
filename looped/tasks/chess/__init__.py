"""The chess task (``task.py``) and the reading of its puzzle data (``data.py``)."""

from .task import Chess

__all__ = ["Chess"]
