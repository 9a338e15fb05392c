"""Scale-out from the command line: the comparison grid's cells as a Hydra multirun through the joblib
launcher (two cells in parallel, one a named arm), and data-parallel training under torchrun (2 gloo processes)."""

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cadence.datasets import collect_dataset
from cadence.policies import SequencePolicy

TASK = "invertedpendulum_p"


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("scale") / TASK
    collect_dataset(TASK, "lqr", episodes=4, root=root, noise=0.5, seed=0, reference_episodes=2)
    return root


def test_compare_runs_two_cells_in_parallel_through_joblib(dataset, tmp_path):
    out = tmp_path / "compare"
    shutil.copytree(dataset, out / "datasets" / TASK)  # the grid's dataset, as cadence-compare would collect it
    args = [sys.executable, "-m", "cadence.scripts.compare", f"out={out}", f"tasks=[{TASK}]", "seeds=[0]",
            "backbones=[gru,gru_deep]", "+arms.gru_deep={policy:gru,overrides:{policy.backbone_kwargs.n_layers:2}}",
            "param_budget=5000", "train.steps=4", "train.eval_every=0", "train.eval_episodes=1", "train.eval_envs=1",
            "collect.episodes=4", "lr_sweep=null", "hydra/launcher=joblib", "hydra.launcher.n_jobs=2"]  # fmt: skip
    r = subprocess.run(args, capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-3000:]
    cells = {arm: json.loads((out / "cells" / TASK / arm / "seed0.json").read_text()) for arm in ("gru", "gru_deep")}
    workers = {c["worker"].split(":")[1] for c in cells.values()}
    assert len(workers) == 2 and str(os.getpid()) not in workers  # two joblib worker processes, one cell each
    assert cells["gru_deep"]["overrides"] == {"policy.backbone_kwargs.n_layers": 2}
    layers = {arm: SequencePolicy.from_pretrained(out / "runs" / TASK / arm / "seed0" / "checkpoints" / "last")
              .cfg.backbone_kwargs["n_layers"] for arm in cells}  # fmt: skip
    assert layers == {"gru": 1, "gru_deep": 2}
    assert "| gru_deep |" in (out / "results.md").read_text()
    assert (out / "launcher" / TASK / "gru_deep" / "0").is_dir()  # the multirun's job folder
    again = subprocess.run(args, capture_output=True, text=True, timeout=600)  # every cell finished: nothing launched
    assert again.returncode == 0 and "launching" not in again.stderr, again.stderr[-3000:]


def test_torchrun_two_gloo_processes_train_bc(dataset, tmp_path):
    run_dir = tmp_path / "run"
    torchrun = Path(sys.executable).with_name("torchrun")
    args = [str(torchrun), "--nproc-per-node", "2", "-m", "cadence.scripts.train", f"dataset={dataset}",
            f"run_dir={run_dir}", "policy=gru", "policy.d_model=16", "algo.steps=10", "algo.batch_size=8",
            "algo.window=8", "algo.eval_every=0", "algo.eval_episodes=2", "algo.eval_envs=2"]  # fmt: skip
    r = subprocess.run(args, capture_output=True, text=True, timeout=600, env=os.environ | {"OMP_NUM_THREADS": "1"})
    assert r.returncode == 0, r.stderr[-3000:]
    assert "rank 1 of 2 (gloo backend)" in r.stdout + r.stderr
    assert r.stdout.count("score") == 1  # rank 0 alone reports, evaluates and writes the run directory
    assert json.loads((run_dir / "eval.json").read_text())["episodes"] == 2
    assert SequencePolicy.from_pretrained(run_dir / "checkpoints" / "last").cfg.backbone == "gru"
    odd_args = [a for a in args if not a.startswith(("run_dir=", "algo.batch_size="))]
    odd_args += [f"run_dir={tmp_path / 'odd'}", "algo.batch_size=7"]
    odd = subprocess.run(odd_args, capture_output=True, text=True, timeout=600)
    assert odd.returncode != 0 and "algo.batch_size=7 must be divisible by the number of processes (2)" in odd.stderr
