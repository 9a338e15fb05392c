"""Shared test fixtures: the LinOSS specification's reference vectors live in ``../shared``."""

import os
from pathlib import Path

import pytest
import torch

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("CADENCE_SHARED", REPO.parent / "shared"))


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    d = SHARED / "linoss" / "vectors"
    if not d.is_dir():
        message = f"reference vectors not found at {d} (clone the project next to ../shared or set CADENCE_SHARED)"
        if os.environ.get("CI"):  # CI always has ../shared: parity must run there, never skip silently
            pytest.fail(message)
        pytest.skip(message)
    return d


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)
