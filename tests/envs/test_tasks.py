"""Registered tasks: env checker, P/V masks against the model's qpos/qvel split, env configs, vector envs (the memory
tasks have their own tests: test_cue_delay.py, test_delayed_tracking.py)."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from cadence.configs import compose
from cadence.envs import TASK_IDS, EnvConfig, env_config_names, make_env, make_vector_env, observation_indices
from cadence.envs.registration import MEMORY_TASKS

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
    if cfg.id in MEMORY_TASKS:
        pytest.skip("a memory task hides part of its full state by time, not by index (its own tests check it)")
    env = make_env(cfg)
    idx = observation_indices(cfg.id, **cfg.kwargs)
    obs, info = env.reset(seed=1)
    for _ in range(3):
        np.testing.assert_array_equal(obs, info["full_state"][idx])
        assert env.observation_space.contains(obs)
        obs, _, _, _, info = env.step(env.action_space.sample())
    assert env.unwrapped.dt == gym.make(cfg.id).unwrapped.dt
    env.close()


@pytest.mark.parametrize("asynchronous", [False, True])
def test_vector_env_reports_full_state_per_sub_env(asynchronous):
    envs = make_vector_env("hopper_p", num_envs=2, asynchronous=asynchronous, seed=0)
    obs, _, _, _, info = envs.step(envs.action_space.sample())
    assert obs.shape == (2, 5) and info["full_state"].shape == (2, 11)
    np.testing.assert_array_equal(obs, info["full_state"][:, :5])
    envs.close()


@pytest.mark.parametrize("name, horizon", [("memory_reacher", "memory_reacher_d1024"),
                                           ("delayed_tracking_full", "delayed_tracking_full_k1024")])  # fmt: skip
def test_memory_task_names_carry_their_horizon(name, horizon):
    cfg = compose("train", [f"env={name}", f"env.kwargs.{'delay' if 'reacher' in name else 'lag'}_steps=1024"])
    assert EnvConfig.load(cfg.env).name == horizon and f"/{horizon}/" in cfg.run_dir  # runs/ALGO/NAME/POLICY/seedS


def test_unknown_env_name_lists_the_configs():
    with pytest.raises(ValueError, match="invertedpendulum_p"):
        EnvConfig.load("no_such_env")
