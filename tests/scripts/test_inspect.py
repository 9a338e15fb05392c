"""cadence-inspect: a BC run with init=data on Swimmer, then the table and the three PNGs; the saved
init equals the one re-created from the checkpoint's config and seed; a non-LinOSS checkpoint is one line."""

import json
import subprocess
import sys

import gymnasium as gym
import numpy as np
import pytest
import torch
from omegaconf import OmegaConf

from cadence.policies import PolicyConfig, make_policy
from cadence.inspection import PLOTS, initial_policy, inspect_checkpoint


@pytest.fixture(scope="module")
def run_dir(swimmer_dataset, tmp_path_factory):
    run_dir = tmp_path_factory.mktemp("inspect") / "run"
    args = ["env=swimmer", f"dataset={swimmer_dataset}", f"run_dir={run_dir}", "policy=linoss", "policy.d_model=16",
            "policy.backbone_kwargs.state_dim=16", "policy.backbone_kwargs.init.kind=data", "algo.steps=5",
            "algo.eval_episodes=1", "algo.eval_envs=1", "algo.batch_size=4", "algo.window=16", "seed=3"]  # fmt: skip
    r = subprocess.run([sys.executable, "-m", "cadence.scripts.train", *args], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr[-2000:]
    return run_dir


def test_training_saves_the_estimated_peaks_and_the_init(run_dir):
    config = json.loads((run_dir / "checkpoints" / "last" / "config.json").read_text())
    peaks = config["policy"]["backbone_kwargs"]["init"]["peaks_hz"]
    assert peaks and peaks[0] == pytest.approx(0.6, rel=0.1)
    saved, how = initial_policy(run_dir / "checkpoints" / "last")
    assert "saved at training start" in how
    # without the init checkpoint: re-created from the config (peaks included, no dataset) and the run's seed
    recreated, how = initial_policy(run_dir / "checkpoints" / "last", init=run_dir / "absent")
    assert "seed 3" in how
    params = dict(recreated.named_parameters())  # the normalization statistics are the dataset's, not the init's
    for k, v in saved.named_parameters():
        torch.testing.assert_close(params[k], v, rtol=0, atol=0, msg=k)


def test_inspect_prints_the_table_and_writes_the_plots(run_dir, tmp_path):
    out = tmp_path / "plots"
    r = subprocess.run([sys.executable, "-m", "cadence.scripts.inspect", f"checkpoint={run_dir / 'checkpoints' / 'last'}",
                        f"out={out}"], capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    assert "saved at training start" in r.stdout and "median |Δf|/f" in r.stdout
    assert "action peaks" in r.stdout and "0.6" in r.stdout  # the training dataset, found through the checkpoint
    rows = [line for line in r.stdout.splitlines() if line.split()[:1] in (["0"], ["1"])]
    assert len(rows) == 2  # one row per layer
    for name in PLOTS:
        data = (out / name).read_bytes()
        assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 10_000, name


def test_inspect_refuses_a_policy_without_oscillators(tmp_path):
    obs, act = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32), gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    make_policy(PolicyConfig(backbone="gru", d_model=8), obs, act, control_period=0.04).save_pretrained(tmp_path / "gru")
    cfg = OmegaConf.create({"checkpoint": str(tmp_path / "gru"), "dataset": None, "init": None, "seed": 0, "out": None})
    with pytest.raises(ValueError, match="has no LinOSS layer"):
        inspect_checkpoint(cfg)
