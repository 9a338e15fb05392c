"""The LeRobot plug-in (cadence.lerobot) through LeRobot's own entry points, offline on CPU.

* ``lerobot-train --policy.type=linoss`` on a dataset written by ``collect_dataset`` trains and saves a
  checkpoint; ``lerobot-eval --policy.path=<it> --env.type=cadence`` rolls it out and reports return and
  success (both as subprocesses, the console scripts of this interpreter's environment);
* the policy contract in process: padding-masked loss, stepping = sequence mode, restart at leading pad;
* a Cadence checkpoint exported to LeRobot's layout loads with ``make_policy`` and acts as Cadence does.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from lerobot.configs import FeatureType, PolicyFeature, PreTrainedConfig
from lerobot.datasets.factory import resolve_delta_timestamps
from lerobot.datasets.lerobot_dataset import LeRobotDataset, LeRobotDatasetMetadata
from lerobot.policies.factory import make_policy, make_policy_config, make_pre_post_processors
from lerobot.utils.constants import ACTION, OBS_STATE

from cadence.datasets import collect_dataset
from cadence.envs import make_env
from cadence.lerobot import CadenceEnvConfig, CadenceLinOSSConfig
from cadence.lerobot.export import export_checkpoint
from cadence.lerobot.modeling_linoss import CadenceLinOSSPolicy, pad_resets
from cadence.policies import PolicyConfig
from cadence.policies import make_policy as make_cadence_policy
from cadence.policies.backbones import REGISTRY, backbone_classes, make_backbone_config
from cadence.training.bc import BCConfig

REPO_ID = "cadence/invertedpendulum_p"
TASK = {"name": "invertedpendulum_p", "id": "Cadence/InvertedPendulum-P-v5", "kwargs": {"max_episode_steps": 100},
        "expert": "lqr"}  # fmt: skip
PLUGIN = "--env.discover_packages_path=cadence.lerobot"
SMALL = {"window": 6, "burn_in": 4, "d_model": 16, "backbone_kwargs": {"n_layers": 1, "state_dim": 8}}


@pytest.fixture(scope="module")
def dataset(tmp_path_factory) -> Path:
    """4 noisy LQR episodes of 100 steps on InvertedPendulum-P (positions only): 400 frames at 25 fps."""
    root = tmp_path_factory.mktemp("lerobot") / "ip_p"
    collect_dataset(TASK, "lqr", episodes=4, root=root, noise=0.5, seed=0, reference_episodes=1)
    return root


def run_lerobot(command: str, *args: str) -> str:
    """Runs LeRobot's console script ``command`` offline on CPU; returns its output, fails with its tail."""
    exe = Path(sys.executable).with_name(command)
    if not exe.exists():
        pytest.fail(f"{exe} not found: install the project (`make test` does) so that lerobot's scripts exist")
    env = os.environ | {"HF_HUB_OFFLINE": "1", "OMP_NUM_THREADS": "1", "MUJOCO_GL": os.environ.get("MUJOCO_GL", "egl"),
                        "HF_DATASETS_DISABLE_PROGRESS_BARS": "1", "TQDM_DISABLE": "1"}  # fmt: skip
    result = subprocess.run([str(exe), *args], env=env, capture_output=True, text=True, timeout=600)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{command} failed ({result.returncode}):\n{output[-4000:]}"
    return output


def test_lerobot_train_then_eval(dataset, tmp_path):
    out = tmp_path / "train"
    log = run_lerobot(
        "lerobot-train", PLUGIN, "--policy.type=linoss", "--policy.device=cpu", "--policy.window=8",
        "--policy.burn_in=8", "--policy.d_model=32", "--policy.lr=3e-3", "--policy.warmup_steps=5",
        f"--dataset.repo_id={REPO_ID}", f"--dataset.root={dataset}", "--dataset.video_backend=pyav",
        f"--output_dir={out}", "--steps=60", "--batch_size=16", "--num_workers=0", "--log_freq=10",
        "--save_freq=60", "--wandb.enable=false",
    )  # fmt: skip
    losses = [float(x) for x in re.findall(r"step:\d+ .*? loss:([0-9.]+)", log)]
    assert len(losses) == 6, log[-3000:]
    assert losses[-1] < 0.5 * losses[0], f"the loss did not fall: {losses}"  # ~1: predicting the mean action

    checkpoint = out / "checkpoints" / "last" / "pretrained_model"
    config = json.loads((checkpoint / "config.json").read_text())
    assert (config["type"], config["backbone"], config["control_period"]) == ("linoss", "linoss", 1 / 25)
    assert list(config["input_features"]) == [OBS_STATE]  # the full state is not a policy input
    for name in ("model.safetensors", "policy_preprocessor.json", "policy_postprocessor.json"):
        assert (checkpoint / name).is_file(), name

    eval_dir = tmp_path / "eval"
    run_lerobot(
        "lerobot-eval", PLUGIN, f"--policy.path={checkpoint}", "--policy.device=cpu", "--env.type=cadence",
        "--env.task=invertedpendulum_p", "--env.episode_length=50", "--env.success=survive", "--env.render_size=32",
        "--eval.n_episodes=2", "--eval.batch_size=2", "--eval.use_async_envs=false", f"--output_dir={eval_dir}",
    )  # fmt: skip
    info = json.loads((eval_dir / "eval_info.json").read_text())
    overall, episodes = info["overall"], info["per_task"][0]["metrics"]
    assert overall["n_episodes"] == 2
    assert all(1 <= r <= 50 for r in episodes["sum_rewards"])  # +1 per step the pole is up, at most 50 steps
    assert overall["avg_sum_reward"] == pytest.approx(np.mean(episodes["sum_rewards"]))
    assert overall["pc_success"] == pytest.approx(100 * np.mean([r == 50 for r in episodes["sum_rewards"]]))
    assert all(Path(p).is_file() for p in overall["video_paths"]) and len(overall["video_paths"]) == 2


def test_policy_contract(dataset):
    meta = LeRobotDatasetMetadata(REPO_ID, root=dataset)
    cfg = make_policy_config("linoss", device="cpu", **SMALL)
    policy = make_policy(cfg, ds_meta=meta)
    assert cfg.control_period == pytest.approx(1 / 25) and list(cfg.input_features) == [OBS_STATE]
    preprocessor, _ = make_pre_post_processors(cfg, dataset_stats=meta.stats)
    data = LeRobotDataset(REPO_ID, root=dataset, delta_timestamps=resolve_delta_timestamps(cfg, meta),
                          video_backend="pyav")  # fmt: skip
    anchors = [0, 2, 50, 97]  # windows of frames anchor-4 … anchor+5 in an episode of frames 0 … 99
    batch = preprocessor(torch.utils.data.default_collate([data[i] for i in anchors]))
    is_pad = batch[f"{ACTION}_is_pad"]
    assert is_pad[:, :4].tolist()[:2] == [[True] * 4, [True, True, False, False]]  # before the episode
    assert is_pad[3, -3:].all() and not is_pad[3, :-3].any() and not is_pad[2].any()  # after it (98 … 102)

    # the loss covers the steps after the burn-in that are not padding, and only those
    loss, info = policy.forward(batch)
    assert info["valid_steps"] == int((~is_pad[:, 4:]).sum()) == 4 * 6 - 3
    ignored = {**batch, ACTION: batch[ACTION].clone()}
    ignored[ACTION][is_pad] += 10.0
    ignored[ACTION][:, :4] -= 10.0
    assert policy.forward(ignored)[0].item() == pytest.approx(loss.item())
    counted = {**batch, ACTION: batch[ACTION].clone()}
    counted[ACTION][2, 6] += 10.0
    assert policy.forward(counted)[0].item() != pytest.approx(loss.item())
    per_sample, _ = policy.forward(batch, reduction="none")
    assert per_sample.shape == (4,)
    # LeRobot windows a (1,) action as (B, L): the loss must compare step t with step t, never broadcast
    assert batch[ACTION].shape == (4, 10)
    own, _ = policy.model(batch[OBS_STATE], None, pad_resets(is_pad))
    assert policy.forward({**batch, ACTION: own[..., 0].detach()})[0].item() == pytest.approx(0.0, abs=1e-10)

    # a window starting before its episode restarts the state at the episode's first frame
    obs = batch[OBS_STATE]
    restarted, _ = policy.model(obs[:1], None, pad_resets(is_pad[:1]))
    from_start = policy.predict_action_chunk({OBS_STATE: obs[:1, 4:]})
    torch.testing.assert_close(restarted[:, 4:], from_start, atol=1e-5, rtol=1e-4)

    # select_action steps the recurrent state: T calls = the sequence; reset() starts over
    policy.eval()
    policy.reset()
    stepped = torch.stack([policy.select_action({OBS_STATE: obs[2:4, t]}) for t in range(obs.shape[1])], dim=1)
    torch.testing.assert_close(stepped, policy.predict_action_chunk({OBS_STATE: obs[2:4]}), atol=1e-5, rtol=1e-4)
    policy.reset()
    torch.testing.assert_close(policy.select_action({OBS_STATE: obs[2:4, 0]}), stepped[:, 0])


def test_export_loads_with_make_policy(tmp_path):
    env = make_env("invertedpendulum_p")
    cadence = make_cadence_policy(PolicyConfig(backbone="linoss", d_model=16, backbone_kwargs=SMALL["backbone_kwargs"]),
                                  env.observation_space, env.action_space, control_period=env.unwrapped.dt)  # fmt: skip
    cadence.obs_norm.set_stats(torch.tensor([0.1, -0.2]), torch.tensor([0.5, 2.0]))
    cadence.action_norm.set_stats(torch.tensor([0.3]), torch.tensor([0.7]))
    cadence.save_pretrained(tmp_path / "cadence")

    out = export_checkpoint(tmp_path / "cadence", tmp_path / "lerobot")
    cfg = PreTrainedConfig.from_pretrained(out)
    cfg.pretrained_path = out
    policy = make_policy(cfg, env_cfg=CadenceEnvConfig(task="invertedpendulum_p", render_size=None))
    preprocessor, postprocessor = make_pre_post_processors(cfg, pretrained_path=str(out))
    torch.testing.assert_close(policy.model.encoder[0].weight, cadence.encoder[0].weight)

    cadence.reset(batch_size=1)
    policy.reset()
    obs, _ = env.reset(seed=0)
    for _ in range(20):
        expected = cadence.act(obs[None])
        with torch.inference_mode():  # as lerobot-eval: float32 (1, O) in, (1, A) out
            batch = preprocessor({OBS_STATE: torch.as_tensor(obs[None], dtype=torch.float32)})
            action = postprocessor(policy.select_action(batch))
        action = action.clamp(cadence.action_low, cadence.action_high)  # the cadence env clips (ClipAction)
        torch.testing.assert_close(action, expected, atol=1e-5, rtol=1e-4)
        obs, _, terminated, _, _ = env.step(expected[0].numpy())
        if terminated:
            break
    env.close()


def test_config_errors_name_the_fix():
    with pytest.raises(ValueError, match="unknown backbone 'lstm'"):
        CadenceLinOSSConfig(backbone="lstm", device="cpu")
    with pytest.raises(ValueError, match="unknown linoss backbone option"):
        CadenceLinOSSConfig(device="cpu", backbone_kwargs={"layers": 2})
    with pytest.raises(ValueError, match="env.success='always'"):
        CadenceEnvConfig(success="always")


@pytest.mark.parametrize("backbone", sorted(REGISTRY))
def test_defaults_come_from_cadence_dataclasses(backbone):
    """Architecture defaults are PolicyConfig's and the backbone dataclass's; optimizer and window are BCConfig's,
    under the same names: ``--policy.type=linoss`` trains what ``cadence-train algo=bc policy=X`` trains."""
    cfg = CadenceLinOSSConfig(backbone=backbone, device="cpu")
    policy = cfg.policy_config()
    assert dataclasses.replace(policy, backbone_kwargs={}) == PolicyConfig(backbone=backbone)
    backbone_cfg = make_backbone_config(backbone, d_model=policy.d_model, **policy.backbone_kwargs)
    assert backbone_cfg == backbone_classes(backbone)[0]()
    names = ("lr", "weight_decay", "grad_clip", "warmup_steps", "window")
    assert {n: getattr(cfg, n) for n in names} == {n: getattr(BCConfig(), n) for n in names}


def test_camera_features_reach_the_cadence_camera_encoder(tmp_path):
    root = tmp_path / "pixels"
    collect_dataset("reacher_pixels", "reacher", episodes=2, root=root, noise=0.1, seed=0, reference_episodes=1)
    meta = LeRobotDatasetMetadata("cadence/reacher_pixels", root=root)
    cfg = make_policy_config("linoss", device="cpu", image_encoder_features=8, image_shift=0, **SMALL)
    policy = make_policy(cfg, ds_meta=meta)
    camera = "observation.images.top"
    assert list(cfg.input_features) == [OBS_STATE, camera] and policy.model.image_shape == (3, 64, 64)
    preprocessor, _ = make_pre_post_processors(cfg, dataset_stats=meta.stats)
    data = LeRobotDataset("cadence/reacher_pixels", root=root, delta_timestamps=resolve_delta_timestamps(cfg, meta),
                          video_backend="pyav")  # fmt: skip
    batch = preprocessor(torch.utils.data.default_collate([data[i] for i in (5, 30, 60)]))
    assert batch[camera].shape == (3, 10, 3, 64, 64)
    loss, _ = policy.forward(batch)
    loss.backward()
    assert policy.model.image_encoder.net[0].weight.grad.abs().sum() > 0  # the frames train the encoder
    policy.eval()
    policy.reset()
    steps = [policy.select_action({OBS_STATE: batch[OBS_STATE][:, t], camera: batch[camera][:, t]}) for t in range(10)]
    chunk = policy.predict_action_chunk({OBS_STATE: batch[OBS_STATE], camera: batch[camera]})
    torch.testing.assert_close(torch.stack(steps, 1), chunk, atol=1e-5, rtol=1e-4)
    blank = policy.predict_action_chunk({OBS_STATE: batch[OBS_STATE], camera: torch.zeros_like(batch[camera])})
    assert not torch.allclose(blank, chunk)  # the action depends on the frames


def test_cameras_of_different_sizes_are_refused_with_the_fix():
    """The plug-in stacks its cameras' frames along C, so two cameras of different sizes get one error naming
    both shapes and the ways out, before any layer is built."""
    cfg = make_policy_config("linoss", device="cpu", control_period=0.02, **SMALL)
    cfg.input_features = {OBS_STATE: PolicyFeature(FeatureType.STATE, (4,)),
                          "observation.images.top": PolicyFeature(FeatureType.VISUAL, (3, 64, 64)),
                          "observation.images.side": PolicyFeature(FeatureType.VISUAL, (3, 32, 48))}  # fmt: skip
    cfg.output_features = {ACTION: PolicyFeature(FeatureType.ACTION, (2,))}
    with pytest.raises(ValueError, match=r"need one size.*\(3, 32, 48\).*\(3, 64, 64\).*algo.image_size"):
        CadenceLinOSSPolicy(cfg)
