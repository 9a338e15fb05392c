"""Camera datasets written with LeRobot's own writer: frames decoded once into a uint8 cache (image and video
features), the cache's cap, a missing camera, and BC that learns a signal visible only in the image."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from cadence.datasets import load_demonstrations
from cadence.policies import PolicyConfig, make_policy
from cadence.training.bc import BCConfig, BCTrainer

CAM = "observation.images.cam"
ENV = "InvertedPendulum-v5"  # 25 fps, a (4,) state, a (1,) action


@pytest.fixture(scope="module")
def image_dataset(tmp_path_factory, record_camera_dataset):
    """Frames of random brightness, the action their brightness: visible only in the image (tests/conftest.py)."""
    return record_camera_dataset(tmp_path_factory.mktemp("camera") / "images", video=False)


@pytest.fixture(scope="module")
def env():
    env = gym.make(ENV)
    yield env
    env.close()


def brightness(images: torch.Tensor) -> torch.Tensor:
    return images.float().mean((1, 2, 3)) / 127.5 - 1


def test_cameras_are_selected_by_default_and_decoded_once(image_dataset, env):
    demos = load_demonstrations(image_dataset, env)
    assert demos.observation_keys == ["observation.state"] and demos.image_keys == [CAM]
    images = demos.data.images
    assert images.dtype == torch.uint8 and images.shape == (100, 3, 32, 32)
    torch.testing.assert_close(brightness(images), demos.data.actions[:, 0], atol=1e-6, rtol=0)  # row i is frame i
    batch = demos.data.sample_windows(4, 6, torch.Generator().manual_seed(0))
    assert batch.images.shape == (4, 6, 3, 32, 32) and batch.obs.shape == (4, 6, 4)
    torch.testing.assert_close(brightness(batch.images.flatten(0, 1)), batch.actions.flatten(), atol=1e-6, rtol=0)


def test_video_features_decode_with_lerobots_decoder(tmp_path, env, record_camera_dataset):
    root = record_camera_dataset(tmp_path / "video", video=True, episodes=2, steps=10)
    demos = load_demonstrations(root, env, image_size=[16, 16])
    assert demos.data.images.shape == (20, 3, 16, 16)
    # AV1 is lossy: each frame's brightness within a few levels of the recorded one, in the dataset's order
    assert (brightness(demos.data.images) - demos.data.actions[:, 0]).abs().max() < 0.1


def test_resize_and_the_cache_cap(image_dataset, env):
    assert load_demonstrations(image_dataset, env, image_size=[8, 12]).data.images.shape == (100, 3, 8, 12)
    with pytest.raises(ValueError, match=r"takes 0\.00 GiB \(100 frames x 3x32x32 bytes\), over "
                                         r"algo\.image_cache_gib=1e-06: lower the resolution with algo\.image_size"):
        load_demonstrations(image_dataset, env, image_cache_gib=1e-6)


def test_a_camera_the_dataset_lacks(image_dataset, env):
    with pytest.raises(ValueError, match=r"has no feature observation\.images\.top; its observation features are "
                                         r"\['observation\.state', 'observation\.images\.cam'\]"):
        load_demonstrations(image_dataset, env, ["observation.state", "observation.images.top"])
    with pytest.raises(ValueError, match="are all cameras, and a policy observes a state vector"):
        load_demonstrations(image_dataset, env, [CAM])


@pytest.mark.parametrize("backbone", ["gru", "linoss"])
def test_bc_learns_a_signal_only_the_camera_shows(image_dataset, env, tmp_path, backbone):
    demos = load_demonstrations(image_dataset, env)
    torch.manual_seed(0)
    policy = make_policy(PolicyConfig(backbone=backbone, d_model=32, image_features=16, image_shift=2),
                         env.observation_space, env.action_space, 0.04, tuple(demos.data.images.shape[1:]))
    policy.obs_norm.set_stats(demos.stats["observation"]["mean"], demos.stats["observation"]["std"])
    policy.action_norm.set_stats(demos.stats["action"]["mean"], demos.stats["action"]["std"])
    cfg = BCConfig(steps=80, batch_size=16, window=4, batches="windows", lr=3e-3, warmup_steps=1, eval_every=0)
    trainer = BCTrainer(policy, demos.data, cfg, tmp_path)
    losses = [trainer.train_step()["loss"] for _ in range(cfg.steps)]
    assert np.mean(losses[-10:]) < 0.3 * np.mean(losses[:5]), losses  # unit-variance targets: 1.0 is chance


def test_cadence_train_refuses_a_camera_dataset_on_an_env_without_that_camera(image_dataset, tmp_path):
    from cadence.configs import compose
    from cadence.training import train_bc

    cfg = compose("train", ["algo=bc", "policy=gru", f"env.id={ENV}", "env.name=ip", f"dataset={image_dataset}",
                            f"run_dir={tmp_path / 'run'}"])  # fmt: skip
    with pytest.raises(ValueError, match=r"include the camera\(s\) \['observation\.images\.cam'\], and env ip renders "
                                         r"no camera.*key cam.*algo\.observation_keys"):
        train_bc(cfg)
    cfg.algo.observation_keys = ["observation.state"]  # the state alone trains (and is then evaluated) as usual
    cfg.algo.steps, cfg.algo.eval_episodes, cfg.algo.eval_envs = 2, 1, 1
    assert train_bc(cfg)["episodes"] == 1
