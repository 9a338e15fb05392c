"""Scripted experts reach their targets; the registry rejects unknown names and mismatched tasks."""

import numpy as np
import pytest

from cadence.datasets import episode_rng, rollout
from cadence.envs import EXPERTS, EnvConfig, make_env, make_expert, reset_expert
from cadence.envs.experts import dlqr, linearize


def run(env_name, expert_name, episodes, **expert_kwargs):
    env = make_env(env_name)
    expert = make_expert(expert_name, env, **expert_kwargs)
    results = []
    for e in range(episodes):
        reset_expert(expert)
        results.append(rollout(env, expert, reset_seed=e))
    env.close()
    return results


def reacher_success(episodes):
    """Fraction of Reacher-v5 episodes ending with the fingertip within 2 cm of the target."""
    env = make_env("reacher")
    expert = make_expert("reacher", env)
    hits = 0
    for e in range(episodes):
        _, info = env.reset(seed=e)
        done = False
        while not done:
            _, _, terminated, truncated, info = env.step(expert(info["full_state"]))
            done = terminated or truncated
        hits += np.linalg.norm(info["full_state"][8:10]) < 0.02
    env.close()
    return hits / episodes


def test_lqr_balances_every_episode():
    assert [ep.ret for ep in run("invertedpendulum", "lqr", 10)] == [1000.0] * 10


def test_lqr_survives_dart_noise():
    env = make_env("invertedpendulum_p")
    expert = make_expert("lqr", env)
    for e in range(5):
        seed, rng = episode_rng(0, 0, e)
        assert rollout(env, expert, seed, noise=0.5, rng=rng).ret == 1000.0


def test_dlqr_solves_the_riccati_equation_and_stabilizes():
    env = make_env("invertedpendulum")
    A, B = linearize(env.unwrapped.model, env.unwrapped.frame_skip)
    Q, R = np.eye(4), np.eye(1) * 0.1
    K = dlqr(A, B, Q, R)
    assert np.max(np.abs(np.linalg.eigvals(A))) > 1  # the upright pendulum is unstable
    assert np.max(np.abs(np.linalg.eigvals(A - B @ K))) < 1


def test_reacher_expert_succeeds():
    assert reacher_success(40) >= 0.95


@pytest.mark.slow
def test_reacher_expert_succeeds_on_200_episodes():
    assert reacher_success(200) >= 0.95


@pytest.mark.parametrize("env_name", ["memory_reacher", "memory_reacher_full", "delayed_tracking",
                                      "delayed_tracking_full"])  # fmt: skip
def test_memory_task_experts_succeed_on_their_configs(env_name):
    """The configs' experts; the memory tasks' own tests cover every delay and lag (test_cue_delay.py, ...)."""
    assert all(ep.success for ep in run(env_name, EnvConfig.load(env_name).expert, 5))


def test_cpg_swims_forward():
    returns = [ep.ret for ep in run("swimmer", "cpg", 2)]
    still = [ep.ret for ep in run("swimmer", "cpg", 2, amplitude=0.0)]  # drift from the initial velocity only
    assert min(returns) > 150 > 4 * max(still)  # CleanRL's PPO reaches 125 ± 22 after 8M steps


def test_unknown_expert_lists_the_valid_ones():
    with pytest.raises(ValueError, match=", ".join(sorted(EXPERTS))):
        make_expert("ppo_typo", make_env("invertedpendulum"))


@pytest.mark.parametrize("expert, env", [("lqr", "reacher"), ("reacher", "invertedpendulum")])
def test_expert_refuses_a_task_it_cannot_read(expert, env):
    with pytest.raises(ValueError, match=expert):
        make_expert(expert, make_env(env))
