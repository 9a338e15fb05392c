"""``cadence-train`` on a dataset that LeRobot's own writer recorded from a Gymnasium env (no Cadence metadata, no
full state), evaluated in that env by its Gymnasium id, then by ``cadence-eval``; docs/own_dataset.md."""

import json
import subprocess
import sys

import pytest

TRAIN = [sys.executable, "-m", "cadence.scripts.train"]
EVAL = [sys.executable, "-m", "cadence.scripts.eval"]
ENV = ["env.id=InvertedPendulum-v5", "env.name=invertedpendulum"]  # a Gymnasium id, not a Cadence env config
TINY = ["algo=bc", "policy=gru", "policy.d_model=16", "algo.steps=5", "algo.batch_size=8", "algo.window=8",
        "algo.eval_episodes=2", "algo.eval_envs=1"]  # fmt: skip


@pytest.fixture(scope="module")
def recording(write_lerobot_dataset):
    return write_lerobot_dataset("InvertedPendulum-v5", episodes=3, steps=100)


def run(command, *args):
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=300)


def test_train_on_a_lerobot_dataset_and_evaluate_it_in_its_gymnasium_env(recording, tmp_path):
    run_dir = tmp_path / "run"
    trained = run(TRAIN, *TINY, *ENV, f"dataset={recording}", f"run_dir={run_dir}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = json.loads((run_dir / "eval.json").read_text())
    assert result["episodes"] == 2 and result["normalized_score"] is None
    assert result["score"] == result["mean_return"] > 0
    assert "score = mean return (no reference returns)" in trained.stdout
    evaluated = run(EVAL, f"checkpoint={run_dir / 'checkpoints' / 'last'}", "episodes=2", "num_envs=1",
                    f"out={tmp_path / 'eval'}")  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    record = json.loads((tmp_path / "eval" / "results.json").read_text())
    assert record["env"] == "invertedpendulum" and record["normalized_score"] is None
    assert "score = mean return (no reference returns)" in evaluated.stdout


def test_an_observation_key_the_dataset_lacks_is_one_line(recording, tmp_path):
    r = run(TRAIN, *TINY, *ENV, f"dataset={recording}", "algo.observation_keys=[observation.joints]",
            f"run_dir={tmp_path / 'run'}")  # fmt: skip
    assert r.returncode == 2
    assert r.stderr.strip().splitlines()[-1].startswith(
        f"cadence-train: error: {recording} has no feature observation.joints; its observation features are "
        "['observation.state']")  # fmt: skip


def test_train_without_an_env_ranks_checkpoints_by_held_out_loss(recording, tmp_path):
    run_dir = tmp_path / "run"
    trained = run(TRAIN, *TINY, "~env", "algo.eval_every=5", "algo.validation_fraction=0.34", f"dataset={recording}",
                  f"run_dir={run_dir}")  # fmt: skip
    assert trained.returncode == 0, trained.stderr[-3000:]
    result = json.loads((run_dir / "eval.json").read_text())
    assert result["score"] == -result["validation_loss"] and result["frames"] == 100  # 1 of 3 episodes held out
    assert "(no env): held-out loss" in trained.stdout
    config = json.loads((run_dir / "checkpoints" / "best" / "config.json").read_text())
    assert config["extra"]["run"]["env"] is None and config["obs_dim"] == 4
