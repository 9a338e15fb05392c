"""``python -m cadence.scripts.collect``: summary, clear errors, and resuming after a SIGKILL mid-collection."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pytest
import torch
from lerobot.datasets.lerobot_dataset import LeRobotDataset

from cadence.datasets import ACTION, OBS, WindowDataset, check_dataset, collect_dataset

CMD = [sys.executable, "-m", "cadence.scripts.collect"]


def collect(*args, **kw):
    return subprocess.run([*CMD, *args], capture_output=True, text=True, timeout=300, **kw)


def test_unknown_expert_lists_the_valid_ones(tmp_path):
    run = collect("env=reacher", "expert=nope", f"out={tmp_path / 'ds'}")
    assert run.returncode != 0 and "unknown expert 'nope'; valid experts: cpg, cue_reacher, delayed_tracker, lqr, reacher" in run.stderr


def test_sigkill_mid_collection_then_rerun_completes_the_dataset(tmp_path):
    out = tmp_path / "ds"
    args = ["env=reacher", "episodes=40", "part_episodes=5", "noise=0.1", "seed=1", "reference_episodes=2", f"out={out}"]
    proc = subprocess.Popen([*CMD, *args], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    progress, info = out / "meta" / "cadence_progress.json", out / "meta" / "info.json"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:  # kill once two parts are committed and a third has saved an episode
        try:
            committed = len(json.loads(progress.read_text())["returns"])
            if committed >= 10 and json.loads(info.read_text())["total_episodes"] > committed:
                break
        except (FileNotFoundError, json.JSONDecodeError):  # not written yet, or caught mid-write
            pass
        time.sleep(0.02)
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    committed = len(json.loads(progress.read_text())["returns"])
    assert 10 <= committed < 40, "the kill must land mid-collection"
    with pytest.raises(ValueError, match="interrupted"):  # the open part is unreadable
        check_dataset(out)

    rerun = collect(*args)
    assert rerun.returncode == 0, rerun.stderr
    assert "episodes 40, frames 2000" in rerun.stdout and str(out) in rerun.stdout

    ds = WindowDataset(out, keys=(OBS, ACTION))
    assert ds.num_episodes == 40 and len(LeRobotDataset("cadence/reacher", root=out, video_backend="pyav")) == 2000
    # the interrupted-and-resumed dataset is the one an uninterrupted run writes
    collect_dataset("reacher", "reacher", 40, tmp_path / "straight", noise=0.1, seed=1, part_episodes=40,
                    reference_episodes=2)  # fmt: skip
    straight = WindowDataset(tmp_path / "straight", keys=(OBS, ACTION))
    for k in (OBS, ACTION):
        torch.testing.assert_close(ds.data[k], straight.data[k], rtol=0, atol=0)
    assert np.allclose(ds.metadata["episode_returns"], straight.metadata["episode_returns"])
