"""Cameras end to end through the commands: ``cadence-collect`` records the camera of ``reacher_pixels``,
``cadence-train`` trains an image policy on it and evaluates it on rendered frames, ``cadence-eval`` evaluates
the checkpoint again; an env without that camera is refused in one line."""

import json
import subprocess
import sys

COLLECT = [sys.executable, "-m", "cadence.scripts.collect"]
TRAIN = [sys.executable, "-m", "cadence.scripts.train"]
EVAL = [sys.executable, "-m", "cadence.scripts.eval"]
TINY = ["algo=bc", "policy=gru", "policy.d_model=16", "policy.image_features=8", "algo.steps=3", "algo.batch_size=4",
        "algo.window=8", "algo.eval_every=3", "algo.eval_episodes=2", "algo.eval_envs=2"]  # fmt: skip


def run(command, *args):
    return subprocess.run([*command, *args], capture_output=True, text=True, timeout=600)


def test_collect_train_and_evaluate_an_image_policy(tmp_path):
    data, run_dir = tmp_path / "ds", tmp_path / "run"
    collected = run(COLLECT, "env=reacher_pixels", "episodes=2", f"out={data}", "reference_episodes=1")
    assert collected.returncode == 0, collected.stderr[-3000:]
    info = json.loads((data / "meta" / "info.json").read_text())
    assert info["features"]["observation.images.top"]["dtype"] == "video"
    trained = run(TRAIN, *TINY, "env=reacher_pixels", f"dataset={data}", f"run_dir={run_dir}")
    assert trained.returncode == 0, trained.stderr[-3000:]
    config = json.loads((run_dir / "checkpoints" / "last" / "config.json").read_text())
    assert config["camera_keys"] == ["observation.images.top"] and config["image_shape"] == [3, 64, 64]
    assert json.loads((run_dir / "eval.json").read_text())["episodes"] == 2
    evaluated = run(EVAL, f"checkpoint={run_dir / 'checkpoints' / 'last'}", "episodes=2", "num_envs=1",
                    f"out={tmp_path / 'eval'}")  # fmt: skip
    assert evaluated.returncode == 0, evaluated.stderr[-3000:]
    assert "success" in evaluated.stdout
    blind = run(EVAL, f"checkpoint={run_dir / 'checkpoints' / 'last'}", "+env={name:arm,id:Cadence/Reacher-Arm-v5}",
                "episodes=1", "num_envs=1", f"out={tmp_path / 'eval2'}")  # fmt: skip
    assert blind.returncode == 2
    assert blind.stderr.strip().splitlines()[-1].startswith(
        "cadence-eval: error: the policy observes the camera(s) ['observation.images.top'] and the env renders "
        "no camera")  # fmt: skip
