"""Rollout metrics: success is read from the last step of each episode, not from the next episode's reset info."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from cadence.evaluation import evaluate


class ReachAtTheEnd(gym.Env):
    """Succeeds on its last step (step 5) when the actions summed to more than 0; the reset says not yet."""

    observation_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
    action_space = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)

    def reset(self, *, seed=None, options=None):
        super().reset(seed=seed)
        self.t, self.total = 0, 0.0
        return np.zeros(1, np.float32), {"is_success": False}

    def step(self, action):
        self.t, self.total = self.t + 1, self.total + float(action[0])
        done = self.t == 5
        return np.zeros(1, np.float32), 0.0, False, done, {"is_success": done and self.total > 0}


class Constant:
    """A policy with the stepping interface of SequencePolicy that always outputs ``a``."""

    def __init__(self, a: float):
        self.a = a

    def reset(self, batch_size: int) -> None:
        self.n = batch_size

    def act(self, obs) -> torch.Tensor:
        return torch.full((len(obs), 1), self.a)

    def reset_where(self, done) -> None:
        pass


@pytest.mark.parametrize("asynchronous", [False, True])
@pytest.mark.parametrize("a, rate", [(0.5, 1.0), (-0.5, 0.0)])
def test_success_is_the_last_steps(a, rate, asynchronous):
    result = evaluate(Constant(a), [ReachAtTheEnd] * 2, 6, seed=0, asynchronous=asynchronous)
    assert result.successes is not None and np.mean(result.successes) == rate and len(result.returns) == 6
