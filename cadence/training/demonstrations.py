"""Demonstrations for behavior cloning: a cadence dataset read once, with the observations the task sees.

A dataset records both the task observation (``observation.state``) and the full state the expert
saw (``observation.environment_state``), so one dataset serves several observation variants: when
the training env's observation differs from the recorded one, it is rebuilt from the full state
through the task's index mask (``cadence.envs.observation_indices``).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import gymnasium as gym
import torch

from ..datasets import ACTION, OBS, STATE, WindowDataset
from ..envs import observation_indices
from .bc import Demonstrations


@dataclass
class LoadedDemonstrations:
    data: Demonstrations
    stats: dict[str, dict[str, torch.Tensor]]
    """Normalization statistics: ``stats["observation" | "action"]["mean" | "std"]`` (D,)."""
    reference_returns: tuple[float, float] | None
    """(clean expert, random policy) returns recorded with the dataset, for normalized scores."""


def load_demonstrations(root: str | os.PathLike, env: gym.Env) -> LoadedDemonstrations:
    """Read the dataset at ``root`` for training a policy on ``env``'s observation and action spaces."""
    ds = WindowDataset(root, keys=(OBS, STATE, ACTION))
    obs_dim, act_dim = env.observation_space.shape[0], env.action_space.shape[0]
    if ds.data[ACTION].shape[1] != act_dim:
        raise ValueError(f"{root} has {ds.data[ACTION].shape[1]}-dim actions but {env.spec.id} takes {act_dim}; "
                         "collect a dataset for this task")  # fmt: skip
    if ds.data[OBS].shape[1] == obs_dim and ds.metadata.get("env", {}).get("id") in (None, env.spec.id):
        obs, obs_stats = ds.data[OBS], ds.stats[OBS]
    else:
        idx = torch.from_numpy(observation_indices(env.spec.id))
        if ds.data[STATE].shape[1] <= int(idx.max()):
            raise ValueError(f"{root} records a {ds.data[STATE].shape[1]}-dim full state; {env.spec.id} needs "
                             f"indices up to {int(idx.max())}: the dataset is from another task")  # fmt: skip
        obs = ds.data[STATE][:, idx]
        obs_stats = {k: v[idx] for k, v in ds.stats[STATE].items()}
    ref = ds.metadata.get("reference")
    return LoadedDemonstrations(
        data=Demonstrations(obs.float(), ds.data[ACTION].float(), ds.ep_from, ds.ep_to),
        stats={"observation": obs_stats, "action": ds.stats[ACTION]},
        reference_returns=(ref["expert"], ref["random"]) if ref else None,
    )
