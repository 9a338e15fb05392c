"""Shared test fixtures."""

from pathlib import Path

import pytest
import torch

VECTORS_DIR = Path(__file__).parent / "data" / "linoss_vectors"


@pytest.fixture(scope="session")
def vectors_dir() -> Path:
    """The official LinOSS / D-LinOSS code's reference vectors (``tests/data/linoss_vectors/README.md``)."""
    return VECTORS_DIR


@pytest.fixture(autouse=True)
def _seed():
    torch.manual_seed(0)


@pytest.fixture(scope="session")
def swimmer_dataset(tmp_path_factory) -> Path:
    """Two clean episodes of the Swimmer CPG expert (0.6 Hz travelling wave, 25 Hz control): ~5 s to write.

    Clean (noise=0): the expert's own gait, so joint-angle zero crossings measure it; with DART noise the
    joint angles drift by more than the wave's amplitude and zero crossings miss cycles (docs/spectrum.md).
    """
    from cadence.datasets import collect_dataset

    root = tmp_path_factory.mktemp("swimmer") / "cpg"
    collect_dataset("swimmer", "cpg", episodes=2, root=root, noise=0.0, seed=0, reference_episodes=1)
    return root
