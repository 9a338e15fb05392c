"""Robustness stressors for any task: observation noise, observation and action delay, observation dropout.

Each is a Gymnasium wrapper. The random ones draw from their own generator, spawned from the env's
``np_random`` seed sequence at every seeded reset (and at the first reset), so a run is reproducible from
the reset seed and the stressor's draws do not shift the env's own initial-state draws.
``info["full_state"]`` (the expert's input) is left untouched: stressors act on what the policy sees and
does, never on the expert.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass

import gymnasium as gym
import numpy as np


@dataclass
class RobustnessConfig:
    """The ``wrappers`` section of an env config; every stressor defaults to off."""

    obs_noise: float = 0.0
    """σ of zero-mean Gaussian noise added to every observation dim (observation units)."""
    obs_delay: int = 0
    """The policy sees the observation of ``obs_delay`` steps ago (the first one repeated after a reset)."""
    action_delay: int = 0
    """The env executes the action of ``action_delay`` steps ago (zeros right after a reset)."""
    dropout: float = 0.0
    """Probability that a step's observation is lost."""
    dropout_mode: str = "hold"
    """What a lost observation reads: "hold" (the last delivered one) or "zero"."""

    def __post_init__(self):
        for name in ("obs_noise", "obs_delay", "action_delay", "dropout"):
            if getattr(self, name) < 0:
                raise ValueError(f"wrappers.{name} must be >= 0, got {getattr(self, name)}")
        if self.dropout >= 1:
            raise ValueError(f"wrappers.dropout is a probability below 1, got {self.dropout}")
        if self.dropout_mode not in ("hold", "zero"):
            raise ValueError(f"wrappers.dropout_mode must be 'hold' or 'zero', got {self.dropout_mode!r}")


class _Seeded:
    """Mixin: ``self.rng``, re-spawned from the env's seed sequence at seeded resets."""

    rng: np.random.Generator | None = None

    def _spawn_rng(self, seed: int | None) -> None:
        if seed is not None or self.rng is None:
            self.rng = np.random.default_rng(self.unwrapped.np_random.bit_generator.seed_seq.spawn(1)[0])


class ObservationNoise(_Seeded, gym.ObservationWrapper):
    """obs + N(0, σ²) per dim."""

    def __init__(self, env: gym.Env, sigma: float):
        super().__init__(env)
        self.sigma = sigma

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._spawn_rng(seed)
        return self.observation(obs), info

    def observation(self, observation: np.ndarray) -> np.ndarray:
        noise = self.rng.normal(0.0, self.sigma, observation.shape)
        return (observation + noise).astype(observation.dtype)


class ObservationDropout(_Seeded, gym.ObservationWrapper):
    """With probability ``p`` a step's observation is replaced by the last delivered one ("hold") or by
    zeros ("zero"). The first observation after a reset is always delivered."""

    def __init__(self, env: gym.Env, p: float, mode: str = "hold"):
        super().__init__(env)
        self.p, self.mode = p, mode
        self.last: np.ndarray | None = None

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self._spawn_rng(seed)
        self.last = obs
        return obs, info

    def observation(self, observation: np.ndarray) -> np.ndarray:
        if self.rng.random() < self.p:
            return self.last.copy() if self.mode == "hold" else np.zeros_like(observation)
        self.last = observation
        return observation


class ObservationDelay(gym.ObservationWrapper):
    """Returns the observation of ``steps`` steps ago; right after a reset, the first one repeated."""

    def __init__(self, env: gym.Env, steps: int):
        super().__init__(env)
        self.queue: deque[np.ndarray] = deque(maxlen=steps + 1)

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        self.queue.extend([obs] * self.queue.maxlen)
        return obs, info

    def observation(self, observation: np.ndarray) -> np.ndarray:
        self.queue.append(observation)
        return self.queue[0]


class ActionDelay(gym.ActionWrapper):
    """Executes the action of ``steps`` steps ago; zeros during the first ``steps`` steps of an episode."""

    def __init__(self, env: gym.Env, steps: int):
        super().__init__(env)
        self.queue: deque[np.ndarray] = deque(maxlen=steps + 1)

    def reset(self, *, seed=None, options=None):
        zero = np.zeros(self.action_space.shape, self.action_space.dtype)
        self.queue.extend([zero] * self.queue.maxlen)
        return self.env.reset(seed=seed, options=options)

    def action(self, action: np.ndarray) -> np.ndarray:
        self.queue.append(np.asarray(action, self.action_space.dtype))
        return self.queue[0]


def apply_robustness(env: gym.Env, cfg: RobustnessConfig) -> gym.Env:
    """Wraps ``env`` in the stressors ``cfg`` turns on: action delay, then noise, dropout and delay of the
    observation (a delayed observation is the noisy, possibly lost, one the sensor produced back then)."""
    if cfg.action_delay:
        env = ActionDelay(env, cfg.action_delay)
    if cfg.obs_noise:
        env = ObservationNoise(env, cfg.obs_noise)
    if cfg.dropout:
        env = ObservationDropout(env, cfg.dropout, cfg.dropout_mode)
    if cfg.obs_delay:
        env = ObservationDelay(env, cfg.obs_delay)
    return env
