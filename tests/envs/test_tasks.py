"""Registered tasks: env checker, P/V masks against the model's qpos/qvel split, the memory reacher, vector envs."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from cadence.envs import TASK_IDS, EnvConfig, env_config_names, make_env, make_vector_env, observation_indices

BASES = ["HalfCheetah", "Hopper", "Walker2d", "Ant", "InvertedPendulum", "Swimmer"]


@pytest.mark.parametrize("env_id", TASK_IDS)
def test_env_checker_passes(env_id):
    env = gym.make(env_id)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "wrapped env" and "infinite Box bounds" notices
        check_env(env, skip_render_check=True)
    assert env.unwrapped.dt > 0
    env.close()


def model_split(base_id: str, **kwargs) -> tuple[np.ndarray, np.ndarray]:
    """Which full-observation dims carry qpos and which qvel, found by writing marker values into the model's
    state and reading the observation back."""
    env = gym.make(base_id, **kwargs)
    u = env.unwrapped
    u.reset(seed=0)
    u.data.qpos[:] = 1 + 0.01 * np.arange(u.model.nq)  # markers in [1, 2) and [5, 6): Hopper clips
    u.data.qvel[:] = 5 + 0.01 * np.arange(u.model.nv)  # observed velocities to ±10
    obs = u._get_obs()
    env.close()
    return np.flatnonzero((obs >= 1) & (obs < 2)), np.flatnonzero((obs >= 5) & (obs < 6))


@pytest.mark.parametrize("base", BASES)
def test_masks_are_the_models_qpos_qvel_split(base):
    pos, vel = model_split(f"{base}-v5")
    np.testing.assert_array_equal(observation_indices(f"Cadence/{base}-P-v5"), pos)
    np.testing.assert_array_equal(observation_indices(f"Cadence/{base}-V-v5"), vel)


def test_masks_follow_the_env_kwargs():
    kwargs = {"exclude_current_positions_from_observation": False}
    pos, vel = model_split("HalfCheetah-v5", **kwargs)
    assert len(pos) == 9  # the root's x is now observed
    np.testing.assert_array_equal(observation_indices("Cadence/HalfCheetah-P-v5", **kwargs), pos)
    np.testing.assert_array_equal(observation_indices("Cadence/HalfCheetah-V-v5", **kwargs), vel)


@pytest.mark.parametrize("env_id, part", [("Cadence/HalfCheetah-P-v5", slice(0, 8)), ("Cadence/HalfCheetah-V-v5", slice(8, 17)),
                                          ("Cadence/Hopper-P-v5", slice(0, 5)), ("Cadence/Hopper-V-v5", slice(5, 11)),
                                          ("Cadence/Walker2d-P-v5", slice(0, 8)), ("Cadence/Walker2d-V-v5", slice(8, 17)),
                                          ("Cadence/InvertedPendulum-P-v5", slice(0, 2)),
                                          ("Cadence/InvertedPendulum-V-v5", slice(2, 4))])  # fmt: skip
def test_masks_match_the_published_v5_table(env_id, part):
    np.testing.assert_array_equal(observation_indices(env_id), np.arange(part.start, part.stop))


def test_ant_masks_without_contact_forces():
    kwargs = {"include_cfrc_ext_in_observation": False}
    np.testing.assert_array_equal(observation_indices("Cadence/Ant-P-v5", **kwargs), np.arange(0, 13))
    np.testing.assert_array_equal(observation_indices("Cadence/Ant-V-v5", **kwargs), np.arange(13, 27))


@pytest.mark.parametrize("name", env_config_names())
def test_every_env_config_observes_its_full_state_through_the_mask(name):
    cfg = EnvConfig.load(name)
    env = make_env(cfg)
    idx = observation_indices(cfg.id, **cfg.kwargs)
    obs, info = env.reset(seed=1)
    for _ in range(3):
        np.testing.assert_array_equal(obs, info["full_state"][idx])
        assert env.observation_space.contains(obs)
        obs, _, _, _, info = env.step(env.action_space.sample())
    assert env.unwrapped.dt == gym.make(cfg.id).unwrapped.dt
    env.close()


def test_memory_reacher_hides_the_target_and_brakes_the_arm_until_go():
    env = make_env("memory_reacher", wrappers={})
    u = env.unwrapped
    obs, info = env.reset(seed=3)
    target = info["full_state"][4:6].copy()
    qpos0 = u.data.qpos.copy()
    t, rewards, hidden = 0, [], []
    done = False
    while not done:
        obs, reward, terminated, truncated, info = env.step(np.ones(2, np.float32))
        t += 1
        done = terminated or truncated
        rewards.append(reward)
        hidden.append(not obs[[4, 5, 8, 9]].any())
        if t == u.go_step:
            np.testing.assert_array_equal(u.data.qpos, qpos0)  # braked through cue and delay
        np.testing.assert_array_equal(info["full_state"][4:6], target)  # the expert always sees it
    assert t == u.horizon == 500 and truncated and not terminated
    assert hidden == [t_ + 1 >= u.cue_steps for t_ in range(t)]
    assert not any(rewards[: u.go_step]) and all(r < 0 for r in rewards[u.go_step :])
    assert not np.allclose(u.data.qpos[:2], qpos0[:2])  # released at go
    assert "is_success" in info


@pytest.mark.parametrize("asynchronous", [False, True])
def test_vector_env_reports_full_state_per_sub_env(asynchronous):
    envs = make_vector_env("hopper_p", num_envs=2, asynchronous=asynchronous, seed=0)
    obs, _, _, _, info = envs.step(envs.action_space.sample())
    assert obs.shape == (2, 5) and info["full_state"].shape == (2, 11)
    np.testing.assert_array_equal(obs, info["full_state"][:, :5])
    envs.close()


def test_unknown_env_name_lists_the_configs():
    with pytest.raises(ValueError, match="invertedpendulum_p"):
        EnvConfig.load("no_such_env")
