"""Demonstrations for behavior cloning: a dataset read once into memory, with the observations the task sees,
and the two ways BC draws batches from it.

Symbols: N frames, E episodes, B windows (or streams) per batch, L steps per window, O observation dim,
A action dim.

A dataset records both the task observation (``observation.state``) and the full state the expert
saw (``observation.environment_state``), so one dataset serves several observation variants: when
the training env's observation differs from the recorded one, it is rebuilt from the full state
through the task's index mask (``cadence.envs.observation_indices``).

Batches: :meth:`Demonstrations.sample_windows` (B windows at uniformly drawn frames, the window sampler of
:class:`~cadence.datasets.WindowDataset`), :meth:`Demonstrations.sample_episodes` (B whole episodes, the same
sampler anchored at episode starts) and :class:`EpisodeStreams` (B cursors walking whole episodes in order, for
truncated BPTT).
"""

from __future__ import annotations

import os
from dataclasses import dataclass

import gymnasium as gym
import torch
from torch import Tensor

from ..envs import observation_indices
from .format import ACTION, OBS, STATE
from .windows import WindowDataset, window_indices


@dataclass
class Demonstrations:
    """A dataset in memory: frames of all episodes back to back.

    observations (N, O), actions (N, A) float32; episode e covers frames [ep_from[e], ep_to[e]).
    """

    observations: Tensor
    actions: Tensor
    ep_from: Tensor
    ep_to: Tensor

    def __post_init__(self):
        self.frame_episode = torch.repeat_interleave(torch.arange(len(self.ep_from)), self.ep_to - self.ep_from)
        if len(self.frame_episode) != len(self.observations):
            raise ValueError("episode bounds do not cover the frames exactly; the dataset index is inconsistent")

    def __len__(self) -> int:
        return len(self.observations)

    def to(self, device: torch.device | str) -> Demonstrations:
        """The frames on ``device`` (the episode index stays on the CPU, where the samplers run)."""
        return Demonstrations(self.observations.to(device), self.actions.to(device), self.ep_from, self.ep_to)

    def sample_windows(self, B: int, L: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """(obs (B, L, O), actions (B, L, A), valid (B, L) bool) for windows [t, t + L) at uniformly drawn
        frames t; steps past the episode's end repeat its last frame and are not ``valid``."""
        anchors = torch.randint(len(self), (B,), generator=g)
        idx, pad = window_indices(anchors, torch.arange(L), self.frame_episode, self.ep_from, self.ep_to)
        return self.observations[idx], self.actions[idx], ~pad


    def sample_episodes(self, B: int, L: int, g: torch.Generator) -> tuple[Tensor, Tensor, Tensor]:
        """(obs (B, L, O), actions (B, L, A), valid (B, L) bool) for B episodes drawn uniformly, each from its
        first frame: whole episodes when L is the longest one, steps past an episode's end not ``valid``."""
        episodes = torch.randint(len(self.ep_from), (B,), generator=g)
        idx, pad = window_indices(self.ep_from[episodes], torch.arange(L), self.frame_episode, self.ep_from, self.ep_to)
        return self.observations[idx], self.actions[idx], ~pad


class EpisodeStreams:
    """B cursors that walk through whole episodes for truncated BPTT: each batch continues every stream
    by L steps; a stream that finishes its episode continues with a random new one, marked by ``resets``."""

    def __init__(self, data: Demonstrations, B: int, g: torch.Generator):
        self.data, self.g = data, g
        self.episode = torch.randint(len(data.ep_from), (B,), generator=g)
        self.pos = data.ep_from[self.episode].clone()

    def next(self, L: int) -> tuple[Tensor, Tensor, Tensor, Tensor]:
        """(obs (B, L, O), actions (B, L, A), valid (B, L), resets (B, L)) for the next L steps."""
        d = self.data
        idx = torch.empty(len(self.pos), L, dtype=torch.long)
        resets = torch.zeros(len(self.pos), L, dtype=torch.bool)
        for t in range(L):
            finished = self.pos >= d.ep_to[self.episode]
            if finished.any():
                self.episode[finished] = torch.randint(len(d.ep_from), (int(finished.sum()),), generator=self.g)
                self.pos[finished] = d.ep_from[self.episode[finished]]
                resets[finished, t] = True
            idx[:, t] = self.pos
            self.pos += 1
        return d.observations[idx], d.actions[idx], torch.ones_like(resets), resets

    def state_dict(self) -> dict:
        return {"episode": self.episode.clone(), "pos": self.pos.clone()}

    def load_state_dict(self, s: dict) -> None:
        self.episode.copy_(s["episode"])
        self.pos.copy_(s["pos"])


@dataclass
class LoadedDemonstrations:
    data: Demonstrations
    stats: dict[str, dict[str, Tensor]]
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
