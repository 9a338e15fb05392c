"""Fast reading of a LeRobot dataset for training: the parquet files once into contiguous tensors, then
windows by index arithmetic.

Symbols: N frames, E episodes, B windows, L steps per window, D a feature's size.

Windows have ``LeRobotDataset(..., delta_timestamps=...)``'s semantics, with offsets in frames instead of
seconds: the window of anchor frame i and offsets (L,) reads frames i + offsets clamped into the anchor's
episode (so padding repeats the episode's first or last frame, never a neighbour's), and
``<key>_is_pad`` (L,) marks the clamped positions. Every frame is an anchor. A feature of shape (1,)
keeps its axis, (L, 1), where LeRobot returns (L,). About 200× faster than
``LeRobotDataset.__getitem__`` on CPU (``benchmarks/windows.py``).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from torch import Tensor

from .format import ACTION, METADATA_FILE, OBS, check_dataset, data_files, episode_files, read_json, unreadable

STATS = ("mean", "std", "min", "max")


class WindowDataset(torch.utils.data.Dataset):
    """A local LeRobot dataset in memory, served as windows of ``offsets`` (default ``range(32)``).

    Attributes: ``data[key]`` (N, D) float tensors of the loaded ``keys``; ``ep_from``, ``ep_to`` (E,)
    int64 episode bounds [from, to); ``frame_episode`` (N,); ``fps``; ``info`` (LeRobot's info.json);
    ``stats[key][stat]`` (D,) float32 for stat in mean/std/min/max (LeRobot's ``meta/stats.json``; for a loaded
    key it lacks, or a dataset without it, computed from the frames: :func:`frame_stats`); ``metadata``
    (``meta/cadence.json``, empty for datasets not written by cadence).
    """

    def __init__(self, root: str | os.PathLike, keys: Sequence[str] = (OBS, ACTION), offsets: Sequence[int] = range(32)):
        self.root = Path(root)
        self.info = check_dataset(self.root)
        missing = [k for k in keys if k not in self.info["features"]]
        if missing:
            raise ValueError(f"{self.root} has no feature(s) {missing}; it has {sorted(self.info['features'])}")
        self.keys, self.fps = tuple(keys), self.info["fps"]
        self.offsets = torch.as_tensor(list(offsets), dtype=torch.long)
        files = data_files(self.root)
        tables = [self._read(f, [*self.keys, "index"]) for f in files]
        table = pa.concat_tables(tables)
        order = np.argsort(table["index"].to_numpy())
        self.data = {k: _column(table[k])[torch.from_numpy(order)] for k in self.keys}
        check_finite_frames(self.data, files, np.repeat(np.arange(len(files)), [len(t) for t in tables])[order])
        episodes = pa.concat_tables([self._read(f, ["episode_index", "dataset_from_index", "dataset_to_index"])
                                     for f in episode_files(self.root)]).sort_by("episode_index")  # fmt: skip
        self.ep_from = torch.from_numpy(episodes["dataset_from_index"].to_numpy().astype(np.int64))
        self.ep_to = torch.from_numpy(episodes["dataset_to_index"].to_numpy().astype(np.int64))
        self.frame_episode = torch.repeat_interleave(torch.arange(len(self.ep_from)), self.ep_to - self.ep_from)
        stats_file = self.root / "meta" / "stats.json"
        stats = read_json(stats_file) if stats_file.is_file() else {}
        self.stats = {k: {s: torch.tensor(v[s], dtype=torch.float32) for s in STATS} for k, v in stats.items()
                      if all(s in v for s in STATS)}  # fmt: skip
        self.stats |= {k: frame_stats(self.data[k]) for k in self.keys if k not in self.stats}
        meta = self.root / METADATA_FILE
        self.metadata = read_json(meta) if meta.exists() else {}

    def _read(self, path: Path, columns: list[str]) -> pa.Table:
        """``columns`` of the parquet file ``path``; damaged bytes raise a ValueError naming it."""
        try:
            return pq.read_table(path, columns=columns)
        except (OSError, pa.ArrowInvalid) as e:
            raise unreadable(path, self.root, e) from e

    @property
    def num_episodes(self) -> int:
        return len(self.ep_from)

    def __len__(self) -> int:
        return len(self.frame_episode)

    def __getitem__(self, i: int) -> dict[str, Tensor]:
        """The window at anchor frame ``i``: ``key`` (L, D) and ``key_is_pad`` (L,) per key."""
        return {k: v[0] for k, v in self.windows(torch.tensor([i])).items()}

    def windows(self, anchors: Tensor, offsets: Sequence[int] | Tensor | None = None) -> dict[str, Tensor]:
        """Windows at ``anchors`` (B,) int64: ``key`` (B, L, D) and ``key_is_pad`` (B, L) bool per key."""
        offsets = self.offsets if offsets is None else torch.as_tensor(offsets, dtype=torch.long)
        idx, pad = window_indices(anchors, offsets, self.frame_episode, self.ep_from, self.ep_to)
        out = {k: self.data[k][idx] for k in self.keys}
        out.update({f"{k}_is_pad": pad for k in self.keys})
        return out

    def sample(self, batch_size: int, generator: torch.Generator | None = None,
               offsets: Sequence[int] | Tensor | None = None) -> dict[str, Tensor]:  # fmt: skip
        """``batch_size`` windows at anchors drawn uniformly from all frames (see :meth:`windows`)."""
        return self.windows(torch.randint(len(self), (batch_size,), generator=generator), offsets)

    def episode(self, e: int) -> dict[str, Tensor]:
        """Episode ``e`` whole: ``key`` (T_e, D) per key (views into ``data``)."""
        if not 0 <= e < self.num_episodes:
            raise IndexError(f"episode {e} out of range: {self.root} has {self.num_episodes} episodes")
        return {k: v[self.ep_from[e]:self.ep_to[e]] for k, v in self.data.items()}


def window_indices(anchors: Tensor, offsets: Tensor, frame_episode: Tensor, ep_from: Tensor, ep_to: Tensor
                   ) -> tuple[Tensor, Tensor]:  # fmt: skip
    """The frames of the windows at ``anchors`` (B,): (idx (B, L), is_pad (B, L) bool) for ``offsets`` (L,).

    ``idx`` is anchor + offset clamped into the anchor's episode [ep_from, ep_to) (``frame_episode`` (N,)
    maps frames to episodes), so padding repeats the episode's first or last frame; ``is_pad`` marks the
    clamped positions. The one window sampler of Cadence: :class:`WindowDataset` and
    :class:`cadence.datasets.Demonstrations` (BC's random windows) both use it.
    """
    episode = frame_episode[anchors]
    lo, hi = ep_from[episode][:, None], ep_to[episode][:, None]  # (B, 1)
    idx = anchors[:, None] + offsets  # (B, L)
    pad = (idx < lo) | (idx >= hi)
    return torch.minimum(torch.maximum(idx, lo), hi - 1), pad


def check_finite_frames(data: dict[str, Tensor], files: list[Path], source: np.ndarray) -> None:
    """Refuse frames whose float features (``data[key]`` (N, D)) hold a NaN or an inf, naming the file
    (frame i is from ``files[source[i]]``, source (N,) int) and the frames."""
    for key, values in data.items():
        if not values.is_floating_point():
            continue
        bad = torch.nonzero(~torch.isfinite(values).all(dim=1)).flatten().tolist()
        if bad:
            frames = ", ".join(map(str, bad[:5])) + (", ..." if len(bad) > 5 else "")
            raise ValueError(f"{files[source[bad[0]]]} holds NaN or inf in {key} at {len(bad)} frame(s) (dataset index "
                             f"{frames}); the recording is corrupt: collect the dataset again, or fix the "
                             "recording pipeline that wrote these values")  # fmt: skip


def frame_stats(values: Tensor) -> dict[str, Tensor]:
    """``{"mean" | "std" | "min" | "max": (D,) float32}`` over the frames of ``values`` (N, D), as LeRobot writes
    them to ``meta/stats.json`` (std without Bessel's correction)."""
    x = values.double()
    return {"mean": x.mean(0).float(), "std": x.std(0, correction=0).float(), "min": x.min(0).values.float(),
            "max": x.max(0).values.float()}  # fmt: skip


def _column(column: pa.ChunkedArray) -> Tensor:
    """A fixed-size-list (vector feature) or scalar column as a (N, D) tensor."""
    array = column.combine_chunks()
    if pa.types.is_fixed_size_list(array.type):
        return torch.from_numpy(array.flatten().to_numpy(zero_copy_only=False).reshape(len(array), -1).copy())
    return torch.from_numpy(array.to_numpy(zero_copy_only=False).reshape(len(array), 1).copy())
