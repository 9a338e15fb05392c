"""cadence-train (BC) from the command line: trains, is killed, resumes; bad input gives one-line errors."""

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from cadence.datasets import collect_dataset

TRAIN = [sys.executable, "-m", "cadence.scripts.train"]


@pytest.fixture(scope="module")
def dataset(tmp_path_factory):
    root = tmp_path_factory.mktemp("bc") / "ip_p"
    collect_dataset("invertedpendulum_p", "lqr", episodes=4, root=root, noise=0.5, seed=0, reference_episodes=2)
    return root


def run(args, **kw):
    return subprocess.run(TRAIN + args, capture_output=True, text=True, timeout=300, **kw)


def test_train_killed_then_resumed(dataset, tmp_path):
    run_dir = tmp_path / "run"
    args = [f"dataset={dataset}", f"run_dir={run_dir}", "policy=linoss", "policy.backbone_kwargs.n_layers=1",
            "policy.d_model=32", "algo.steps=150", "algo.save_every=20", "algo.eval_every=0", "algo.eval_episodes=2",
            "algo.eval_envs=2", "algo.batch_size=8", "algo.window=8"]  # fmt: skip
    proc = subprocess.Popen(TRAIN + args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    state = run_dir / "checkpoints" / "last" / "training_state.pt"
    deadline = time.time() + 240
    while not state.exists() and time.time() < deadline and proc.poll() is None:
        time.sleep(0.2)
    assert state.exists(), "no checkpoint was written before the kill"
    os.kill(proc.pid, signal.SIGKILL)
    proc.wait()
    assert not (run_dir / "eval.json").exists()
    refused = run(args)
    assert refused.returncode != 0 and "pass resume=true" in refused.stderr
    resumed = run(args + ["resume=true"])
    assert resumed.returncode == 0, resumed.stderr[-2000:]
    assert (run_dir / "eval.json").exists() and "score" in resumed.stdout


def test_missing_dataset_is_one_line(tmp_path):
    r = run([f"dataset={tmp_path / 'nope'}", f"run_dir={tmp_path / 'run'}"])
    assert r.returncode != 0
    last = r.stderr.strip().splitlines()[-1]
    assert last.startswith("cadence-train: error:") and str(tmp_path / "nope") in last and "cadence" in last


def test_unknown_config_key_is_one_line(dataset, tmp_path):
    r = run([f"dataset={dataset}", f"run_dir={tmp_path / 'run'}", "+algo.stepz=10"])
    assert r.returncode != 0
    assert r.stderr.strip().splitlines()[-1].startswith("cadence-train: error: unknown key(s) ['stepz'] in algo; valid keys:")


def test_eval_cli_writes_results_and_video(dataset, tmp_path):
    run_dir = tmp_path / "run"
    trained = run([f"dataset={dataset}", f"run_dir={run_dir}", "policy=gru", "policy.d_model=16", "algo.steps=5",
                   "algo.eval_episodes=1", "algo.eval_envs=1"])  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-2000:]
    out = tmp_path / "eval"
    r = subprocess.run([sys.executable, "-m", "cadence.scripts.eval", f"checkpoint={run_dir / 'checkpoints' / 'last'}",
                        "episodes=3", "num_envs=2", "video=true", f"out={out}"],
                       capture_output=True, text=True, timeout=300)  # fmt: skip
    assert r.returncode == 0, r.stderr[-2000:]
    result = json.loads((out / "results.json").read_text())
    assert result["episodes"] == 3 and result["normalized_score"] is not None and result["env"] == "invertedpendulum_p"
    assert (out / "episode_0.mp4").stat().st_size > 1000
    assert "normalized score" in r.stdout
