"""Demonstrations for behavior cloning: a dataset read once into memory, with the observations the task sees,
and the two ways BC draws batches from it.

Symbols: N frames, E episodes, B windows (or streams) per batch, L steps per window, O observation dim,
A action dim; C, H, W the camera frames' channels and pixels.

Any local LeRobot v3 dataset serves (docs/own_dataset.md): the policy observes the dataset's observation
features (:func:`observation_keys`: chosen by ``algo.observation_keys``, by default every ``observation.*``
feature but ``observation.environment_state``, by name): the vector features concatenated into the state, the
camera features (``observation.images.*``) decoded once into a uint8 image cache beside it
(:mod:`cadence.datasets.images`, with its memory cap); it imitates the ``action``. Normalization uses the
dataset's own statistics. The dataset must fit the env it is evaluated on: its frame
rate the env's control rate, its features the env's spaces (:func:`load_demonstrations` refuses, naming both).

A dataset that ``cadence-collect`` wrote records both the task observation (``observation.state``) and the
full state the expert saw (``observation.environment_state``), so one dataset serves several observation
variants: when the training env is another variant than the recorded one (``meta/cadence.json``), the
observation is rebuilt from the full state through the task's index mask (``cadence.envs.observation_indices``).

Batches: :meth:`Demonstrations.sample_windows` (B windows at uniformly drawn frames, the window sampler of
:class:`~cadence.datasets.WindowDataset`), :meth:`Demonstrations.sample_episodes` (B whole episodes, the same
sampler anchored at episode starts) and :class:`EpisodeStreams` (B cursors walking whole episodes in order, for
truncated BPTT).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import NamedTuple

import gymnasium as gym
import numpy as np
import torch
from torch import Tensor

from ..envs import control_period, observation_indices
from .format import ACTION, IMAGE_DTYPES, OBS, OBSERVATION_PREFIX, STATE, read_info
from .images import decode_images
from .windows import STATS, WindowDataset, window_indices


class Batch(NamedTuple):
    """One batch of BC: B sequences of L steps."""

    obs: Tensor
    """(B, L, O) float32."""
    actions: Tensor
    """(B, L, A) float32."""
    valid: Tensor
    """(B, L) bool: False on padding past an episode's end."""
    resets: Tensor | None = None
    """(B, L) bool, a new episode before step t (TBPTT streams); None for windows and episodes."""
    images: Tensor | None = None
    """(B, L, C, H, W) uint8 camera frames; None for a dataset without selected cameras."""
    aux: Tensor | None = None
    """(B, L, K) float32 auxiliary targets (``Demonstrations.aux``); None without them."""


@dataclass
class Demonstrations:
    """A dataset in memory: frames of all episodes back to back.

    observations (N, O), actions (N, A) float32; images (N, C, H, W) uint8 or None (no camera selected); aux
    (N, K) float32 or None: auxiliary targets, privileged features the policy does not observe that training may
    teach its image encoder to predict (``algo.image_aux_key``), normalized; episode e covers frames
    [ep_from[e], ep_to[e]).
    """

    observations: Tensor
    actions: Tensor
    ep_from: Tensor
    ep_to: Tensor
    images: Tensor | None = None
    aux: Tensor | None = None

    def __post_init__(self):
        self.frame_episode = torch.repeat_interleave(torch.arange(len(self.ep_from)), self.ep_to - self.ep_from)
        if len(self.frame_episode) != len(self.observations):
            raise ValueError("episode bounds do not cover the frames exactly; the dataset index is inconsistent")
        if self.images is not None and len(self.images) != len(self.observations):
            raise ValueError(f"{len(self.images)} camera frames for {len(self.observations)} frames; the dataset's "
                             "videos or images do not cover its frames: record the dataset again")  # fmt: skip
        if self.aux is not None and len(self.aux) != len(self.observations):
            raise ValueError(f"{len(self.aux)} auxiliary targets for {len(self.observations)} frames")

    def __len__(self) -> int:
        return len(self.observations)

    def to(self, device: torch.device | str) -> Demonstrations:
        """The frames on ``device`` (the episode index stays on the CPU, where the samplers run)."""
        images, aux = (None if x is None else x.to(device) for x in (self.images, self.aux))
        return Demonstrations(self.observations.to(device), self.actions.to(device), self.ep_from, self.ep_to, images,
                              aux)  # fmt: skip

    def batch(self, idx: Tensor, valid: Tensor, resets: Tensor | None = None) -> Batch:
        """The :class:`Batch` of frames ``idx`` (B, L)."""
        images, aux = (None if x is None else x[idx] for x in (self.images, self.aux))
        return Batch(self.observations[idx], self.actions[idx], valid, resets, images, aux)

    def sample_windows(self, B: int, L: int, g: torch.Generator) -> Batch:
        """Windows [t, t + L) at uniformly drawn frames t; steps past the episode's end repeat its last frame and
        are not ``valid``."""
        anchors = torch.randint(len(self), (B,), generator=g)
        idx, pad = window_indices(anchors, torch.arange(L), self.frame_episode, self.ep_from, self.ep_to)
        return self.batch(idx, ~pad)

    def sample_episodes(self, B: int, L: int, g: torch.Generator) -> Batch:
        """B episodes drawn uniformly, each from its first frame: whole episodes when L is the longest one, steps
        past an episode's end not ``valid``."""
        episodes = torch.randint(len(self.ep_from), (B,), generator=g)
        return self.episodes(episodes, L)

    def episodes(self, episodes: Tensor, L: int | None = None) -> Batch:
        """Episodes ``episodes`` (B,) from their first frames, L steps (None: the longest of them), steps past an
        episode's end not ``valid``."""
        L = int((self.ep_to[episodes] - self.ep_from[episodes]).max()) if L is None else L
        idx, pad = window_indices(self.ep_from[episodes], torch.arange(L), self.frame_episode, self.ep_from, self.ep_to)
        return self.batch(idx, ~pad)

    def split(self, held_out: int) -> tuple[Demonstrations, Demonstrations]:
        """(the first E − ``held_out`` episodes, the last ``held_out``), each with its own frames."""
        if not 0 < held_out < len(self.ep_from):
            raise ValueError(f"cannot hold out {held_out} of {len(self.ep_from)} episodes: keep at least one on each "
                             "side (algo.validation_fraction)")  # fmt: skip
        k = int(self.ep_from[len(self.ep_from) - held_out])
        cut = len(self.ep_from) - held_out
        parts = []
        for frames, eps in ((slice(0, k), slice(0, cut)), (slice(k, None), slice(cut, None))):
            offset = int(self.ep_from[eps][0])
            images, aux = (None if x is None else x[frames] for x in (self.images, self.aux))
            parts.append(Demonstrations(self.observations[frames], self.actions[frames], self.ep_from[eps] - offset,
                                        self.ep_to[eps] - offset, images, aux))  # fmt: skip
        return parts[0], parts[1]


class EpisodeStreams:
    """B cursors that walk through whole episodes for truncated BPTT: each batch continues every stream
    by L steps; a stream that finishes its episode continues with a random new one, marked by ``resets``."""

    def __init__(self, data: Demonstrations, B: int, g: torch.Generator):
        self.data, self.g = data, g
        self.episode = torch.randint(len(data.ep_from), (B,), generator=g)
        self.pos = data.ep_from[self.episode].clone()

    def next(self, L: int) -> Batch:
        """The next L steps of every stream (all ``valid``), with their ``resets``."""
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
        return d.batch(idx, torch.ones_like(resets), resets)

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
    """(clean expert, random policy) returns recorded with the dataset, for normalized scores; None for a dataset
    Cadence did not write (the score is then the mean return)."""
    observation_keys: list[str]
    """The features concatenated into ``data.observations``, in order (``[observation.environment_state]`` when
    the observation was rebuilt from the full state)."""
    image_keys: list[str]
    """The camera features stacked into ``data.images``, in order; [] without a camera."""
    fps: int
    """The dataset's frames per second."""


def observation_keys(root: str | os.PathLike, features: dict[str, dict], keys: Sequence[str] | None = None
                     ) -> list[str]:  # fmt: skip
    """The features of the dataset at ``root`` (``features``: its info.json's) that make the policy's observation,
    in order (vectors are concatenated, cameras stacked): ``keys`` as given, or by default every ``observation.*``
    feature, cameras included, but ``observation.environment_state`` (the full state a Cadence expert saw), sorted
    by name.

    A key the dataset lacks and a feature that is neither a vector (D,) nor a camera (dtype ``image`` / ``video``)
    raise a ValueError naming it, the dataset's observation features and ``algo.observation_keys``.
    """
    available = [k for k in features if k.startswith(OBSERVATION_PREFIX)]
    choose = "choose the features with algo.observation_keys=[KEY,...]"
    if keys is None:
        keys = sorted(k for k in available if k != STATE)
        if not keys:
            raise ValueError(f"{root} has no observation feature besides {STATE}; it has {sorted(features)}: record "
                             f"the observation as {OBS}, or train on the full state with "
                             f"algo.observation_keys=[{STATE}]")  # fmt: skip
    for key in keys:
        if key not in features:
            raise ValueError(f"{root} has no feature {key}; its observation features are {available}: {choose}")
        spec = features[key]
        if spec["dtype"] not in IMAGE_DTYPES and len(spec["shape"]) != 1:
            raise ValueError(f"{root}'s {key} has shape {tuple(spec['shape'])}, and a policy observes vector "
                             f"features (D,) and cameras (dtype image or video); {choose} from its observation "
                             f"features {available}")  # fmt: skip
    return list(keys)


def camera_keys(features: dict[str, dict], keys: Sequence[str]) -> list[str]:
    """The camera features (dtype ``image`` / ``video``) among ``keys``, in order (``features``: info.json's)."""
    return [k for k in keys if features[k]["dtype"] in IMAGE_DTYPES]


def load_demonstrations(root: str | os.PathLike, env: gym.Env | None, keys: Sequence[str] | None = None,
                        image_size: Sequence[int] | None = None, image_cache_gib: float = 2.0,
                        aux_key: str | None = None, aux_dims: Sequence[int] | None = None
                        ) -> LoadedDemonstrations:  # fmt: skip
    """Read the dataset at ``root`` for training a policy on ``env``'s observation and action spaces: the
    observation features :func:`observation_keys` picks with ``keys`` (None: the default), and ``action``. Camera
    features are decoded into ``data.images`` at ``image_size`` [H, W] (None: as recorded), refused over
    ``image_cache_gib`` (:func:`cadence.datasets.images.decode_images`); the env's observation space is the state's.
    ``aux_key`` (a vector feature) with ``aux_dims`` (its dims; None: all) becomes ``data.aux``, normalized by the
    dataset's statistics (:func:`auxiliary_targets`).

    Refused with a ValueError naming the dataset, the env and the fix: a dataset without ``action``, one whose
    fps is not the env's control rate (1 / ``env.unwrapped.dt``; not checked for an env that declares no ``dt``),
    and one whose observation or action size is not the env's. ``env=None`` (training without an env) skips the
    checks against an env.
    """
    info = read_info(root)
    features, fps = info["features"], info["fps"]
    if ACTION not in features:
        raise ValueError(f"{root} has no {ACTION} feature, and behavior cloning imitates recorded actions; it has "
                         f"{sorted(features)}: record the commanded action of every frame as {ACTION} (float32 (A,))")
    default, keys = keys is None, observation_keys(root, features, keys)
    cameras = camera_keys(features, keys)
    keys = [k for k in keys if k not in cameras]
    if not keys:
        raise ValueError(f"{root}: the selected features {cameras} are all cameras, and a policy observes a state "
                         f"vector beside them; add a vector feature of {sorted(features)} to "
                         "algo.observation_keys=[KEY,...]")  # fmt: skip
    if env is not None:
        check_fits_env(root, features, fps, env)
    may_rebuild = default and keys == [OBS] and STATE in features and env is not None  # rebuilt for another variant
    if aux_key is not None:
        check_aux_key(root, features, aux_key, aux_dims)
    extra = [k for k in ([STATE] if may_rebuild else []) + ([aux_key] if aux_key else []) if k not in keys]
    ds = WindowDataset(root, keys=(*keys, ACTION, *dict.fromkeys(extra)))
    recorded_env = ds.metadata.get("env", {}).get("id")
    obs_dim = None if env is None else int(np.prod(env.observation_space.shape))
    if may_rebuild and recorded_env is not None and (ds.data[OBS].shape[1] != obs_dim or
                                                     recorded_env.rpartition(":")[2] != env.spec.id):  # fmt: skip
        idx = torch.from_numpy(observation_indices(env.spec.id))
        if ds.data[STATE].shape[1] <= int(idx.max()):
            raise ValueError(f"{root} records a {ds.data[STATE].shape[1]}-dim full state; {env.spec.id} needs "
                             f"indices up to {int(idx.max())}: the dataset is from another task")  # fmt: skip
        keys, obs = [STATE], ds.data[STATE][:, idx]
        obs_stats = {k: v[idx] for k, v in ds.stats[STATE].items()}
    else:
        obs = torch.cat([ds.data[k].float() for k in keys], dim=1)  # (N, O)
        obs_stats = {s: torch.cat([ds.stats[k][s] for k in keys]) for s in STATS}
    if obs_dim is not None and obs.shape[1] != obs_dim:
        shapes = " + ".join(f"{k} ({ds.data[k].shape[1]},)" for k in keys)
        raise ValueError(f"{root}'s observation {shapes} has {obs.shape[1]} dims but {env.spec.id} observes "
                         f"{env.observation_space.shape}: choose the features that make the env's observation with "
                         "algo.observation_keys=[KEY,...] (concatenated in that order), or evaluate on the env the "
                         "dataset was recorded with")  # fmt: skip
    ref = ds.metadata.get("reference")
    images = decode_images(root, features, cameras, image_size, image_cache_gib) if cameras else None
    return LoadedDemonstrations(
        data=Demonstrations(obs.float(), ds.data[ACTION].float(), ds.ep_from, ds.ep_to, images,
                            None if aux_key is None else auxiliary_targets(ds, aux_key, aux_dims)),
        stats={"observation": obs_stats, "action": ds.stats[ACTION]},
        reference_returns=(ref["expert"], ref["random"]) if ref else None,
        observation_keys=keys,
        image_keys=cameras,
        fps=fps,
    )


def check_aux_key(root, features: dict, key: str, dims: Sequence[int] | None) -> None:
    """Refuse an auxiliary target that is not a vector feature of the dataset, or dims outside it."""
    vectors = sorted(k for k, f in features.items() if f["dtype"] not in IMAGE_DTYPES and len(f["shape"]) == 1)
    if key not in vectors:
        raise ValueError(f"algo.image_aux_key={key} is not a vector feature of {root}; its vector features are "
                         f"{vectors}: name one (e.g. {STATE}, the full state a Cadence expert saw), or null")
    size = int(features[key]["shape"][0])
    if dims is not None and (not dims or not all(0 <= d < size for d in dims)):
        raise ValueError(f"algo.image_aux_dims={list(dims)} must be dims of {key}, which has {size} "
                         f"(0 … {size - 1}); or null for all of them")  # fmt: skip


def auxiliary_targets(ds: WindowDataset, key: str, dims: Sequence[int] | None) -> Tensor:
    """(N, K) float32: feature ``key``'s ``dims`` (None: all) of every frame, normalized by the dataset's mean and
    std (a dim that never varies stays 0)."""
    idx = torch.arange(ds.data[key].shape[1]) if dims is None else torch.as_tensor(list(dims))
    mean, std = (ds.stats[key][s][idx].float() for s in ("mean", "std"))
    return (ds.data[key][:, idx].float() - mean) / std.clamp_min(1e-6)


def check_fits_env(root, features: dict, fps: int, env: gym.Env) -> None:
    """Refuse a dataset whose fps is not ``env``'s control rate or whose action size is not its (module docstring)."""
    env_id, period = env.spec.id, control_period(env)
    if period is not None and fps != round(1 / period):
        raise ValueError(f"{root} is recorded at {fps} fps but {env_id} steps every {period:g} s ({1 / period:g} "
                         "steps per second), so the policy would see time pass at another rate; evaluate on the env "
                         "the dataset was recorded with, or record the dataset at the env's rate")  # fmt: skip
    if int(np.prod(features[ACTION]["shape"])) != int(np.prod(env.action_space.shape)):
        raise ValueError(f"{root}'s {ACTION} has shape {tuple(features[ACTION]['shape'])} but {env_id} takes actions "
                         f"of shape {env.action_space.shape}; evaluate on the env the dataset was recorded with")
