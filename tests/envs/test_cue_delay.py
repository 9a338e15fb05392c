"""Cue → delay → reach: the timeline, the cue as the only channel to the target, the expert at every delay, chance."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from cadence.datasets import episode_rng, rollout
from cadence.envs import make_env, make_expert

ID = "Cadence/CueDelayReacher-v0"


def task(**kwargs) -> gym.Env:
    return make_env({"name": "cue_delay", "id": ID, "kwargs": kwargs})


def observations(env: gym.Env, seed: int, policy=None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One episode's observations (T + 1, O), full states (T + 1, O) and rewards (T,); random actions by default."""
    obs, info = env.reset(seed=seed)
    env.action_space.seed(seed)
    seen, full, rewards, done = [obs], [info["full_state"]], [], False
    while not done:
        action = env.action_space.sample() if policy is None else policy(info["full_state"])
        obs, reward, terminated, truncated, info = env.step(action)
        seen, full, rewards = seen + [obs], full + [info["full_state"]], rewards + [reward]
        done = terminated or truncated
    return np.array(seen), np.array(full), np.array(rewards)


def nearest_centroid_accuracy(features: np.ndarray, labels: np.ndarray, classes: int) -> float:
    """Test accuracy of a nearest-centroid classifier fitted on the first half of (features (N, F), labels (N,)),
    features standardized with the training half's statistics."""
    n = len(labels) // 2
    mean, std = features[:n].mean(0), features[:n].std(0) + 1e-9
    z = (features - mean) / std
    centroids = np.stack([z[:n][labels[:n] == k].mean(0) for k in range(classes)])
    predicted = np.argmin(((z[n:, None, :] - centroids) ** 2).sum(-1), axis=1)
    return float(np.mean(predicted == labels[n:]))


@pytest.mark.parametrize("kwargs", [{}, {"delay_steps": 0, "num_targets": 2}, {"full_information": True}])
def test_env_checker_passes(kwargs):
    env = gym.make(ID, **kwargs)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # "wrapped env" and "infinite Box bounds" notices
        check_env(env.unwrapped, skip_render_check=True)
    env.close()


def test_timeline_cue_then_braked_delay_then_go():
    env = task(cue_steps=3, delay_steps=16, reach_steps=20)
    u = env.unwrapped
    seen, full, rewards = observations(env, seed=4)
    t = np.arange(len(seen))
    assert len(rewards) == u.horizon == 39 and u.go_step == 19
    cue, go = seen[:, u.cue_dims], seen[:, u.go_dim]
    np.testing.assert_array_equal(cue.sum(1), t < 3)  # one-hot while shown, zeros after
    np.testing.assert_array_equal(go, t >= 19)
    np.testing.assert_array_equal(full[:, u.cue_dims], np.eye(4)[[u.target] * len(t)])  # the expert always sees it
    np.testing.assert_array_equal(seen[:20, :6], np.repeat(seen[:1, :6], 20, 0))  # braked: same posture, at rest
    assert not seen[0, 4:6].any() and not np.allclose(seen[20, :4], seen[0, :4])  # released at go
    assert not rewards[:19].any()


def test_full_information_shows_the_cue_at_every_step():
    seen, full, _ = observations(task(delay_steps=16, full_information=True), seed=0)
    np.testing.assert_array_equal(seen, full)


def test_the_cue_is_invisible_after_the_cue_phase():
    """Nothing after the cue predicts the target: a classifier on post-cue observations (of a cue-blind, random
    policy) is at chance, while the same classifier reads the cue phase perfectly."""
    env = task(delay_steps=16)
    u = env.unwrapped
    post_cue_steps = [u.cue_steps, u.go_step - 1, u.go_step, u.go_step + 10, u.horizon]
    cue_phase, post_cue, targets = [], [], []
    for seed in range(400):
        seen, _, _ = observations(env, seed)
        cue_phase.append(seen[: u.cue_steps].ravel())
        post_cue.append(seen[post_cue_steps].ravel())
        targets.append(u.target)
    targets = np.array(targets)
    assert nearest_centroid_accuracy(np.array(cue_phase), targets, 4) == 1.0
    assert nearest_centroid_accuracy(np.array(post_cue), targets, 4) < 0.25 + 0.15  # chance 0.25, σ ≈ 0.03
    no_cue = np.delete(np.array(cue_phase).reshape(400, u.cue_steps, -1), u.cue_dims, axis=2).reshape(400, -1)
    assert nearest_centroid_accuracy(no_cue, targets, 4) < 0.25 + 0.15  # the start posture does not reveal it


def test_the_reach_does_not_depend_on_the_delay():
    """Braked through the delay, the same seed gives the same reach at every D: the expert's success at the
    small delays is its success at the large ones."""
    reaches = []
    for delay in (0, 16, 256):
        env = task(delay_steps=delay)
        seen, _, rewards = observations(env, 7, make_expert("cue_reacher", env))
        reaches.append((seen[env.unwrapped.go_step :, :6], rewards[env.unwrapped.go_step :]))
    for seen, rewards in reaches[1:]:
        np.testing.assert_array_equal(seen, reaches[0][0])
        np.testing.assert_array_equal(rewards, reaches[0][1])


def expert_successes(delay: int, episodes: int, noise: float = 0.0, **expert_kwargs) -> tuple[list[bool], list[int]]:
    env = task(delay_steps=delay)
    expert = make_expert("cue_reacher", env, **expert_kwargs)
    successes, targets = [], []
    for e in range(episodes):
        seed, rng = episode_rng(0, 0, e)
        successes.append(rollout(env, expert, seed, noise=noise, rng=rng).success)
        targets.append(env.unwrapped.target)
    return successes, targets


@pytest.mark.parametrize("delay", [16, 64])
def test_expert_succeeds_on_every_episode(delay):
    assert all(expert_successes(delay, 12)[0])


@pytest.mark.slow
@pytest.mark.parametrize("delay", [256, 1024, 4096])
def test_expert_succeeds_on_every_episode_at_the_long_delays(delay):
    assert all(expert_successes(delay, 40)[0])


def test_expert_succeeds_with_its_demonstration_noise():
    assert all(expert_successes(16, 20, noise=0.1)[0])


@pytest.mark.parametrize("target", [0, 3])
def test_a_memoryless_policy_is_at_chance(target):
    """The expert blinded to the cue (always reaching one target) succeeds exactly when that target was cued."""
    successes, targets = expert_successes(16, 200, target=target)
    np.testing.assert_array_equal(successes, np.array(targets) == target)
    assert abs(np.mean(successes) - 0.25) < 0.1


@pytest.mark.parametrize("kwargs, match", [({"num_targets": 0}, "num_targets must be >= 1"),
                                           ({"delay_steps": -1}, "delay_steps must be >= 0"),
                                           ({"cue_steps": -1}, "cue_steps must be >= 0, got -1"),
                                           ({"target_radius": 0.3}, "target_radius")])  # fmt: skip
def test_invalid_settings_are_refused(kwargs, match):
    with pytest.raises(ValueError, match=match):
        gym.make(ID, **kwargs)


def test_the_expert_refuses_other_tasks_and_targets():
    with pytest.raises(ValueError, match="cue_reacher"):
        make_expert("cue_reacher", make_env("reacher"))
    with pytest.raises(ValueError, match="target"):
        make_expert("cue_reacher", task(), target=4)


def test_a_success_radius_that_cannot_name_the_target_is_refused():
    """Success must say which target was reached: the radius stays under half the neighbours' spacing."""
    with pytest.raises(ValueError, match=r"success_radius must be in \(0, 0.106\) m, half the distance"):
        gym.make("Cadence/CueDelayReacher-v0", success_radius=0.12)
