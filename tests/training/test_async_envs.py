"""AsyncVectorEnv (sub-envs in worker processes) gives the same evaluation and the same PPO rollout as
SyncVectorEnv: the recurrent state is kept and reset per sub-env, whichever process steps it."""

from functools import partial

import torch
from test_ppo import make_trainer

from cadence.envs import make_env
from cadence.evaluation import evaluate
from cadence.policies import PolicyConfig, make_policy


def test_evaluation_async_matches_sync():
    env = make_env("invertedpendulum_p")
    torch.manual_seed(0)  # an untrained GRU: episodes end at different steps in different sub-envs
    pcfg = PolicyConfig(backbone="gru", d_model=16)
    policy = make_policy(pcfg, env.observation_space, env.action_space, env.unwrapped.dt)
    env.close()
    env_fns = [partial(make_env, "invertedpendulum_p") for _ in range(3)]
    sync = evaluate(policy, env_fns, episodes=9, seed=5)
    asynchronous = evaluate(policy, env_fns, episodes=9, seed=5, asynchronous=True)
    assert len(set(sync.lengths)) > 1, "all episodes have one length: the per-sub-env resets are not exercised"
    assert asynchronous.returns == sync.returns and asynchronous.lengths == sync.lengths


def test_ppo_rollout_async_matches_sync(tmp_path):
    rollouts = []
    for asynchronous in (False, True):
        trainer = make_trainer(tmp_path / str(asynchronous), "linoss", {"state_dim": 8}, asynchronous=asynchronous)
        trainer.start_episodes()
        rollouts.append(trainer.rollout())
        trainer.close()
    sync, asynchronous = rollouts
    assert sync.resets[1:].any(), "no episode ended: the per-sub-env state resets are not exercised"
    for name in ("obs", "actions", "logprobs", "rewards", "resets", "values", "advantages"):
        torch.testing.assert_close(getattr(asynchronous, name), getattr(sync, name), atol=0, rtol=0, msg=name)
