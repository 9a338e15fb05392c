"""Delayed command tracking: the stream and its delayed target, the servo, the expert at every lag, the floor."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from cadence.datasets import reference_returns, rollout
from cadence.envs import make_env, make_expert, make_floor
from cadence.envs.experts import TrackingFloor
from cadence.evaluation import normalized_score

ID = "Cadence/DelayedTracking-v0"


def task(**kwargs) -> gym.Env:
    return make_env({"name": "delayed_tracking", "id": ID, "kwargs": kwargs})


def episode(env: gym.Env, policy, seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list[dict]]:
    """One episode of ``policy(full_state)``: observations (T + 1, 4), full states (T + 1, 4), rewards (T,), infos."""
    obs, info = env.reset(seed=seed)
    seen, full, rewards, infos, done = [obs], [info["full_state"]], [], [], False
    while not done:
        obs, reward, terminated, truncated, info = env.step(policy(info["full_state"]))
        seen, full, rewards, infos = seen + [obs], full + [info["full_state"]], rewards + [reward], infos + [info]
        done = terminated or truncated
    return np.array(seen), np.array(full), np.array(rewards), infos


def mean_squared_errors(lag: int, policies: dict, episodes: int) -> dict[str, float]:
    """Mean squared tracking error per scored step of each ``factory(env) -> policy``, on the same episodes."""
    env = task(lag_steps=lag)
    return {name: np.mean([episode(env, factory(env), 1000 + s)[3][-1]["rms_error"] ** 2 for s in range(episodes)])
            for name, factory in policies.items()}  # fmt: skip


@pytest.mark.parametrize("kwargs", [{"lag_steps": 1}, {"lag_steps": 256, "full_information": True}])
def test_env_checker_passes(kwargs):
    env = gym.make(ID, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "wrapped env" notices
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


@pytest.mark.parametrize("full_information", [False, True])
def test_the_observation_is_the_stream_and_the_target_its_delayed_copy(full_information):
    env = task(lag_steps=5, track_steps=400, full_information=full_information)
    seen, full, rewards, _ = episode(env, make_expert("delayed_tracker", env), seed=2)
    commands = seen[:, :2]
    assert len(rewards) == env.unwrapped.horizon == 405
    np.testing.assert_array_equal(full[:, :2], commands)
    np.testing.assert_array_equal(full[5:, 2:], commands[:-5])  # c_{t-k}
    np.testing.assert_array_equal(full[:5, 2:], commands[[0] * 5])  # warm-up: the first command
    np.testing.assert_array_equal(seen[:, 2:], full[:, 2:] if full_information else 0.0)
    switches = np.any(commands[1:] != commands[:-1], axis=1)
    assert 0.03 < switches.mean() < 0.1  # piecewise constant, a change every 16 steps on average
    assert not rewards[:5].any() and rewards.sum() == pytest.approx(100, abs=0.01)  # scored from t = k


def test_the_servo_settles_within_one_control_step():
    env = task(lag_steps=1)
    _, _, _, infos = episode(env, make_expert("delayed_tracker", env), seed=0)
    assert max(info["tracking_error"] for info in infos[1:]) < 0.01  # rad, after jumps of up to 2.8 rad
    assert infos[-1]["rms_error"] < 0.002


def successes(lag: int, factory, episodes: int) -> list[bool]:
    env = task(lag_steps=lag)
    policy = factory(env)
    return [rollout(env, policy, s).success for s in range(episodes)]


def expert(env):
    return make_expert("delayed_tracker", env)


@pytest.mark.parametrize("lag", [1, 4, 16])
def test_expert_succeeds_and_the_floor_fails_on_every_episode(lag):
    assert all(successes(lag, expert, 5)) and not any(successes(lag, TrackingFloor, 20))


@pytest.mark.slow
@pytest.mark.parametrize("lag", [64, 256])
def test_expert_succeeds_and_the_floor_fails_on_every_episode_at_the_long_lags(lag):
    assert all(successes(lag, expert, 20)) and not any(successes(lag, TrackingFloor, 50))


@pytest.mark.parametrize("lag", [1, 4, 16])
def test_the_floor_is_the_best_memoryless_policy(lag):
    """p_k c_t beats tracking c_t, holding the mean and other gains, and its error is ⅔(1 − p_k²) per step."""
    p = (1 - 1 / 16) ** lag
    policies = {"floor": TrackingFloor, "current": lambda env: TrackingFloor(env, gain=1.0),
                "mean": lambda env: TrackingFloor(env, gain=0.0),
                "higher": lambda env: TrackingFloor(env, gain=min(p + 0.1, 1.0)),
                "lower": lambda env: TrackingFloor(env, gain=p - 0.1)}  # fmt: skip
    errors = mean_squared_errors(lag, policies, 30)
    assert errors["floor"] == min(errors.values())
    assert errors["floor"] == pytest.approx(2 / 3 * (1 - p**2), rel=0.1)


@pytest.mark.parametrize("lag", [1, 16, 256])
def test_the_return_is_the_normalized_score_floor_0_expert_100(lag):
    """Every episode's return is 100·(1 − Σe/Σf): ≈ 0 for the floor, 100 for the expert, on every episode."""
    env = task(lag_steps=lag)
    floor, tracker = make_floor(env), expert(env)
    assert all(abs(rollout(env, floor, s).ret) < 0.5 for s in range(5))  # its servo's lag: ~0.4 at k = 1, ~0 at 16
    assert all(rollout(env, tracker, s).ret == pytest.approx(100, abs=0.01) for s in range(5))


def test_the_recorded_references_are_the_expert_and_the_floor():
    env = task(lag_steps=4)
    ref = reference_returns(env, expert(env), episodes=3, seed=0)
    reference = (np.mean(ref["clean_expert_returns"]), np.mean(ref["random_returns"]))
    assert ref["floor_policy"] == "TrackingFloor"
    assert reference == (pytest.approx(100, abs=0.01), pytest.approx(0, abs=0.5))
    floor_returns = [rollout(env, make_floor(env), 100 + s).ret for s in range(3)]
    assert normalized_score(np.mean(floor_returns), *reference) == pytest.approx(0, abs=0.05)


def test_only_the_tracking_task_has_a_floor():
    assert isinstance(make_floor(task()), TrackingFloor) and make_floor(make_env("reacher")) is None


def test_invalid_settings_and_tasks_are_refused():
    with pytest.raises(ValueError, match="lag_steps"):
        gym.make(ID, lag_steps=0)
    with pytest.raises(ValueError, match="delayed_tracker"):
        make_expert("delayed_tracker", make_env("reacher"))
