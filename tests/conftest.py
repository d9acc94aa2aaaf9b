import importlib.util
from pathlib import Path

import pytest
import torch

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


def load_script(name: str, folder: str = "scripts"):
    """The module ``<folder>/<name>.py`` of a tool outside the package (``scripts/``, or a ``lab/`` study's)."""
    spec = importlib.util.spec_from_file_location(f"{folder.replace('/', '_')}_{name}", ROOT / folder / f"{name}.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module
