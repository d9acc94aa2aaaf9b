"""What machine a result came from, for the reports that name it. Imports nothing from ``looped``."""

from __future__ import annotations

import platform
from pathlib import Path

import torch


def cpu_name() -> str:
    """The CPU's model name (Linux: ``/proc/cpuinfo``), else the platform's processor string."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def describe() -> str:
    """CPU model, torch's threads, GPU, Python and torch versions, in one line."""
    gpu = f", GPU {torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else ", no GPU"
    threads = torch.get_num_threads()
    return (f"{cpu_name()}, {threads} thread{'s' if threads != 1 else ''}{gpu}; Python {platform.python_version()}, "
            f"torch {torch.__version__}")
