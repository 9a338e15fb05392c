"""Camera frames beside the state: rendered on every reset and step, stacked by vector envs, refused off MuJoCo;
Reacher-Arm hides the target from the state and shows it to the camera."""

import gymnasium as gym
import numpy as np
import pytest

from cadence.envs import CameraConfig, EnvConfig, make_env, make_expert, make_floor, make_vector_env

TOP = "observation.images.top"


def test_frames_come_with_every_reset_and_step_and_show_the_target():
    env = make_env("reacher_pixels")
    try:
        obs, info = env.reset(seed=0)
        assert obs.shape == (4,) and info["full_state"].shape == (10,)  # the state holds the arm only
        first = info[TOP]
        assert first.shape == (64, 64, 3) and first.dtype == np.uint8
        _, _, _, _, info = env.step(np.zeros(2, np.float32))
        assert info[TOP].shape == (64, 64, 3) and "is_success" in info
        _, other = env.reset(seed=1)  # another target, another frame; the arm's state alone cannot tell them apart
        assert np.abs(other[TOP].astype(int) - first.astype(int)).sum() > 0
    finally:
        env.close()


def test_a_vector_env_stacks_the_frames():
    envs = make_vector_env("reacher_pixels", 2, seed=0)
    try:
        _, info = envs.reset(seed=0)
        assert info[TOP].shape == (2, 64, 64, 3)
    finally:
        envs.close()


def test_the_expert_succeeds_and_holding_still_does_not():
    env = make_env("reacher_pixels")
    try:
        for policy, expected in ((make_expert("reacher", env), True), (make_floor(env), False)):
            _, info = env.reset(seed=3)
            done = False
            while not done:
                _, _, terminated, truncated, info = env.step(policy(info["full_state"]))
                done = terminated or truncated
            assert info["is_success"] is expected
    finally:
        env.close()


def test_camera_settings_are_checked():
    with pytest.raises(ValueError, match="height and width must be >= 1"):
        CameraConfig(height=0)
    with pytest.raises(ValueError, match="without dots"):
        CameraConfig(key="a.b")
    with pytest.raises(ValueError, match="either name or view"):
        CameraConfig(name="track", view={"distance": 1.0})
    with pytest.raises(ValueError, match="unknown key"):
        EnvConfig(name="x", id="Reacher-v5", camera={"size": 64})
    with pytest.raises(ValueError, match="not a MuJoCo env"):
        make_env(EnvConfig(name="cartpole", id="CartPole-v1", camera={}))
    assert gym.spec("Cadence/Reacher-Arm-v5").max_episode_steps == 50
