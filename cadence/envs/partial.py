"""Partially observed MuJoCo tasks: the standard POMDP construction by observation masks.

A Gymnasium MuJoCo v5 locomotion observation is ``qpos[k:]`` followed by ``qvel`` (and, for Ant, optional
contact forces), where ``k`` positions (the root's x, or x and y) are skipped when
``exclude_current_positions_from_observation`` is on. The ``-P`` variant keeps the positions and the ``-V``
variant the velocities; both index arrays are derived here from the model's ``nq``/``nv`` and the env's
skip count, so they follow any ``kwargs`` the env is made with (for the defaults: HalfCheetah ``0:8`` /
``8:17``, Hopper ``0:5`` / ``5:11``, Walker2d ``0:8`` / ``8:17``, Ant ``0:13`` / ``13:27``,
InvertedPendulum ``0:2`` / ``2:4``, Swimmer ``0:3`` / ``3:8``).

Every Cadence task also reports the full observation — what an expert sees — as ``info["full_state"]``,
so one demonstration recorded with full state serves every variant (:func:`observation_indices`).
"""

from __future__ import annotations

from functools import lru_cache

import gymnasium as gym
import numpy as np
from gymnasium.envs.registration import load_env_creator

PARTS = ("P", "V")
"""Observation parts: positions only, velocities only."""


def position_velocity_indices(env: gym.Env) -> dict[str, np.ndarray]:
    """``{"P": positions, "V": velocities}``, int64 index arrays into ``env``'s (v5) observation.

    Raises a ValueError for a task whose observation is not ``qpos[k:]`` followed by ``qvel``
    (Reacher, InvertedDoublePendulum: they observe sines, cosines or constraint forces).
    """
    u = env.unwrapped
    structure = getattr(u, "observation_structure", None)
    if structure is None or "qpos" not in structure or "qvel" not in structure:
        raise ValueError(f"{type(u).__name__}'s observation is not qpos[k:] followed by qvel, so it has no "
                         "position/velocity split; P/V variants exist only for MuJoCo v5 tasks that declare "
                         "observation_structure with qpos and qvel")  # fmt: skip
    n_pos = u.model.nq - structure.get("skipped_qpos", 0)
    n_vel = u.model.nv
    if (structure["qpos"], structure["qvel"]) != (n_pos, n_vel):
        raise ValueError(f"{type(u).__name__} declares {structure['qpos']} positions and {structure['qvel']} "
                         f"velocities in its observation, but its model gives {n_pos} and {n_vel}")  # fmt: skip
    return {"P": np.arange(n_pos), "V": np.arange(n_pos, n_pos + n_vel)}


class FullStateInfo(gym.Wrapper):
    """Adds the observation of the wrapped env as ``info["full_state"]`` unless an inner layer already did."""

    def reset(self, *, seed=None, options=None):
        obs, info = self.env.reset(seed=seed, options=options)
        info.setdefault("full_state", obs)
        return obs, info

    def step(self, action):
        obs, reward, terminated, truncated, info = self.env.step(action)
        info.setdefault("full_state", obs)
        return obs, reward, terminated, truncated, info


class MaskObservation(gym.ObservationWrapper):
    """Keeps ``indices`` (K,) of a Box observation (D,) -> (K,)."""

    def __init__(self, env: gym.Env, indices: np.ndarray):
        super().__init__(env)
        space = env.observation_space
        self.indices = np.asarray(indices, dtype=np.int64)
        self.observation_space = gym.spaces.Box(space.low[self.indices], space.high[self.indices],
                                                dtype=space.dtype)  # fmt: skip

    def observation(self, observation: np.ndarray) -> np.ndarray:
        return observation[self.indices]


def make_partial(base_id: str, part: str, **kwargs) -> gym.Env:
    """Entry point of the ``-P``/``-V`` ids: the bare ``base_id`` env (its registered kwargs updated by
    ``kwargs``), its full observation in ``info``, and the observation masked to ``part``."""
    if part not in PARTS:
        raise ValueError(f"observation part {part!r} is not one of {PARTS}")
    spec = gym.spec(base_id)
    env = load_env_creator(spec.entry_point)(**(spec.kwargs | kwargs))
    return MaskObservation(FullStateInfo(env), position_velocity_indices(env)[part])


@lru_cache(maxsize=None)
def _indices(env_id: str, kwargs: tuple) -> np.ndarray:
    env = gym.make(env_id, **dict(kwargs))
    try:
        masks = [w.indices for w in _wrapper_chain(env) if isinstance(w, MaskObservation)]
        full_dim = env.unwrapped.observation_space.shape[0]
    finally:
        env.close()
    return masks[0] if masks else np.arange(full_dim)


def _wrapper_chain(env: gym.Env):
    while isinstance(env, gym.Wrapper):
        yield env
        env = env.env


def observation_indices(env_id: str, **kwargs) -> np.ndarray:
    """The task observation of ``env_id`` as int64 indices (K,) into its full observation (D,).

    ``full_state[..., observation_indices(id)]`` is the observation of task ``id``; for a fully observed
    task the indices are ``arange(D)``. ``kwargs`` are the ``gymnasium.make`` kwargs the task is used with.
    """
    return _indices(env_id, tuple(sorted(kwargs.items()))).copy()
