"""Robustness stressors: what each does to observations/actions, reproducibility, config validation."""

import numpy as np
import pytest

from cadence.envs import RobustnessConfig, make_env


def rollout(wrappers, seed=0, steps=200, actions=None):
    """(observations, full states, executed qpos) of ``steps`` steps of halfcheetah_p with fixed actions."""
    env = make_env("halfcheetah_p", wrappers=wrappers)
    rng = np.random.default_rng(0)
    actions = rng.uniform(-1, 1, (steps, 6)).astype(np.float32) if actions is None else actions
    obs, info = env.reset(seed=seed)
    observed, full = [obs], [info["full_state"]]
    for a in actions:
        obs, _, _, _, info = env.step(a)
        observed.append(obs)
        full.append(info["full_state"])
    env.close()
    return np.array(observed), np.array(full), actions


def test_noise_has_the_requested_std_is_reproducible_and_leaves_the_env_alone():
    clean_obs, clean_full, _ = rollout({})
    noisy_obs, noisy_full, _ = rollout({"obs_noise": 0.1})
    again, _, _ = rollout({"obs_noise": 0.1})
    other_seed, _, _ = rollout({"obs_noise": 0.1}, seed=1)
    np.testing.assert_array_equal(noisy_full, clean_full)  # the env's own draws (initial state) are unchanged
    np.testing.assert_array_equal(noisy_obs, again)
    assert not np.allclose(noisy_obs - noisy_full[:, :8], other_seed - rollout({}, seed=1)[1][:, :8])
    assert np.std(noisy_obs - clean_obs) == pytest.approx(0.1, rel=0.05)


@pytest.mark.parametrize("k", [1, 3])
def test_observation_delay_returns_the_observation_of_k_steps_ago(k):
    obs, full, _ = rollout({"obs_delay": k}, steps=20)
    np.testing.assert_array_equal(obs[k:], full[:-k, :8])
    np.testing.assert_array_equal(obs[:k], np.repeat(full[:1, :8], k, 0))


def test_action_delay_executes_the_action_of_k_steps_ago():
    k, steps = 2, 30
    _, delayed_full, actions = rollout({"action_delay": k}, steps=steps)
    shifted = np.concatenate([np.zeros((k, 6), np.float32), actions[:-k]])
    _, manual_full, _ = rollout({}, steps=steps, actions=shifted)
    np.testing.assert_array_equal(delayed_full, manual_full)


@pytest.mark.parametrize("mode", ["hold", "zero"])
def test_dropout_loses_a_fraction_p_of_observations(mode):
    obs, full, _ = rollout({"dropout": 0.3, "dropout_mode": mode}, steps=2000)
    lost = np.any(obs != full[:, :8], axis=1)
    assert lost.mean() == pytest.approx(0.3, abs=0.04)
    assert not lost[0]
    if mode == "zero":
        assert not obs[lost].any()
    else:
        for t in np.flatnonzero(lost):
            np.testing.assert_array_equal(obs[t], obs[t - 1])


@pytest.mark.parametrize("bad, match", [({"obs_noise": -1.0}, "obs_noise"), ({"dropout": 1.0}, "dropout"),
                                        ({"dropout_mode": "last"}, "dropout_mode")])  # fmt: skip
def test_invalid_settings_name_the_field(bad, match):
    with pytest.raises(ValueError, match=match):
        RobustnessConfig(**bad)


def test_unknown_wrapper_key_lists_the_valid_ones():
    with pytest.raises(ValueError, match="obs_delay"):
        make_env("hopper", wrappers={"delay": 2})
