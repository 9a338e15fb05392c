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


def test_target_size_draws_a_larger_target_and_changes_nothing_else():
    def rollout(kwargs):
        cfg = EnvConfig.load("reacher_pixels")
        env = make_env(EnvConfig(**{**vars(cfg), "kwargs": cfg.kwargs | kwargs}))
        try:
            obs, info = env.reset(seed=4)
            frames, states = [info[TOP]], [obs]
            for _ in range(5):
                obs, _, _, _, info = env.step(np.full(2, 0.3, np.float32))
                frames.append(info[TOP])
                states.append(obs)
            return np.stack(frames), np.stack(states), info["full_state"]
        finally:
            env.close()

    small, big = rollout({}), rollout({"target_size": 0.02})
    def red(frames):  # the target's pixels (the arm's pink base has blue in it)
        r, g, b = (frames[..., c].astype(int) for c in range(3))
        return int(((r > g + 40) & (r > b + 40)).sum())

    assert red(big[0][0]) > 3 * red(small[0][0]) > 0
    np.testing.assert_array_equal(big[1], small[1])  # the same dynamics: the target has no contact
    np.testing.assert_array_equal(big[2], small[2])
    with pytest.raises(ValueError, match="target_size=0 must be a positive radius"):
        rollout({"target_size": 0})


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


def test_reach_pixels_shows_the_target_to_the_camera_only_and_its_expert_reaches_it():
    """``reach_pixels``: the state (arm angles, an always-zero cue, go; no velocities) says nothing of which of the 4
    targets is cued, the frames do (the red target's centroid names it in every episode), and the expert reaches it."""
    env = make_env("reach_pixels")
    expert = make_expert(EnvConfig.load("reach_pixels").expert, env)
    try:
        centroids, targets = [], []
        for seed in range(24):
            obs, info = env.reset(seed=seed)
            u = env.unwrapped
            assert obs.shape == (9,) and not obs[4:8].any() and info["full_state"][u.cue_dims].sum() == 1
            np.testing.assert_array_equal(obs, np.r_[info["full_state"][:4], np.zeros(4), 1.0])  # arm, no cue, go
            r, g, b = (info[TOP][..., c].astype(int) for c in range(3))
            ys, xs = np.nonzero((r > g + 40) & (r > b + 40))
            centroids.append((xs.mean(), ys.mean()))
            targets.append(u.target)
        centroids, targets = np.array(centroids), np.array(targets)
        assert len(set(targets)) == 4
        means = np.stack([centroids[targets == k].mean(0) for k in range(4)])
        nearest = np.linalg.norm(centroids[:, None] - means[None], axis=-1).argmin(1)
        assert (nearest == targets).all() and np.linalg.norm(means[0] - means[1]) > 10  # pixels apart
        for seed in range(5):
            obs, info = env.reset(seed=100 + seed)
            done = False
            while not done:
                assert not obs[4:8].any()
                obs, _, terminated, truncated, info = env.step(np.asarray(expert(info["full_state"]), np.float32))
                done = terminated or truncated
            assert info["is_success"]
    finally:
        env.close()
