"""Camera features of a LeRobot dataset decoded once into memory, so that BC on images is not decode-bound.

Symbols: N frames, C channels, H, W pixels.

A camera feature is an ``observation.images.*`` feature of dtype ``image`` (PNG bytes in the parquet files,
decoded with PIL as LeRobot's Hugging Face ``Image`` feature does) or ``video`` (MP4 files under ``videos/``,
decoded with LeRobot's ``decode_video_frames`` through PyAV, one episode at a time). The selected cameras are
stacked along the channel axis into one uint8 tensor (N, C, H, W), in the order of the dataset's frame index, so
that row i is the frame of :class:`~cadence.datasets.WindowDataset`'s row i.

Memory: N × C × H × W bytes, e.g. 20 000 frames of one RGB camera at 96 × 96 take 0.51 GiB, at 224 × 224 2.8 GiB.
The load is refused above ``cap_gib`` with the size it would take and the ways to lower it: a smaller
``size`` (frames resized when decoded, bilinear with antialiasing), fewer cameras, or a higher cap.
"""

from __future__ import annotations

import io
import os
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch
from PIL import Image
from torch import Tensor

from ..policies.image_encoder import resize_frames
from .format import data_files, episode_files, read_info

VIDEO_TOLERANCE_S = 1e-4
"""How far a decoded video frame's timestamp may be from the requested one (LeRobotDataset's default)."""
GIB = 2**30


def image_shape(spec: dict) -> tuple[int, int, int]:
    """(C, H, W) of a LeRobot camera feature spec (recorded as (H, W, C), or (C, H, W) when its names say so)."""
    shape, names = [int(s) for s in spec["shape"]], spec.get("names") or []
    if len(shape) != 3:
        raise ValueError(f"a camera feature has shape (H, W, C) or (C, H, W), got {tuple(shape)}")
    if list(names)[:1] == ["channels"]:
        return shape[0], shape[1], shape[2]
    return shape[2], shape[0], shape[1]


def cache_shape(root: str | os.PathLike, features: dict[str, dict], keys: Sequence[str],
                size: Sequence[int] | None = None) -> tuple[int, int, int]:  # fmt: skip
    """(C, H, W) of the decoded frames of cameras ``keys``: their channels stacked, at ``size`` [H, W] or their
    common recorded size (cameras of different sizes need ``size``)."""
    shapes = {k: image_shape(features[k]) for k in keys}
    sizes = {s[1:] for s in shapes.values()}
    if size is None and len(sizes) > 1:
        raise ValueError(f"{root}'s cameras have different sizes ({', '.join(f'{k} {s}' for k, s in shapes.items())}; "
                         "C, H, W), and their frames are stacked: resize them with algo.image_size=[H,W], or select "
                         "one camera with algo.observation_keys")  # fmt: skip
    h, w = tuple(size) if size is not None else sizes.pop()
    return sum(s[0] for s in shapes.values()), int(h), int(w)


def decode_images(root: str | os.PathLike, features: dict[str, dict], keys: Sequence[str],
                  size: Sequence[int] | None = None, cap_gib: float = 2.0) -> Tensor:  # fmt: skip
    """The frames of cameras ``keys`` of the dataset at ``root`` (``features``: its info.json's), (N, C, H, W)
    uint8 (module docstring); a ValueError before anything is decoded when they would take more than ``cap_gib``."""
    root = Path(root)
    C, H, W = cache_shape(root, features, keys, size)
    files = data_files(root)
    index = [pq.read_table(f, columns=["index"])["index"].to_numpy() for f in files]
    order = np.sort(np.concatenate(index))
    need = len(order) * C * H * W
    if need > cap_gib * GIB:
        half = len(order) * C * (H // 2) * (W // 2)
        raise ValueError(f"decoding {list(keys)} of {root} into memory takes {need / GIB:.2f} GiB ({len(order)} frames "
                         f"x {C}x{H}x{W} bytes), over algo.image_cache_gib={cap_gib:g}: lower the resolution with "
                         f"algo.image_size=[H,W] ([{H // 2},{W // 2}] takes {half / GIB:.2f} GiB), select fewer "
                         "cameras with algo.observation_keys, or raise algo.image_cache_gib")  # fmt: skip
    out = torch.empty(len(order), C, H, W, dtype=torch.uint8)
    c0 = 0
    for key in keys:
        c = image_shape(features[key])[0]
        if features[key]["dtype"] == "video":
            _decode_video(root, key, order, out[:, c0:c0 + c])
        else:
            for f, idx in zip(files, index):
                column = pq.read_table(f, columns=[key])[key].combine_chunks().field("bytes")
                frames = torch.stack([_png(root, f, key, b.as_py()) for b in column])
                out[np.searchsorted(order, idx), c0:c0 + c] = resize_frames(frames, (H, W))
        c0 += c
    return out


def _png(root: Path, file: Path, key: str, data: bytes | None) -> Tensor:
    """One PNG frame of ``key`` stored in ``file`` -> (C, H, W) uint8."""
    if data is None:
        raise ValueError(f"{file} stores {key} frames as paths, not bytes; {root} is not a finalized LeRobot v3 "
                         "dataset: call LeRobotDataset.finalize() after recording")  # fmt: skip
    array = np.asarray(Image.open(io.BytesIO(data)))
    return torch.from_numpy(array.reshape(*array.shape[:2], -1).copy()).permute(2, 0, 1)


def _decode_video(root: Path, key: str, order: np.ndarray, out: Tensor) -> None:
    """Decode camera ``key``'s video frames episode by episode into ``out`` (N, C, H, W) (rows: ``order``, the
    dataset indices sorted) with LeRobot's decoder through PyAV."""
    from lerobot.datasets.video_utils import decode_video_frames  # heavy: imported only for video datasets

    template = read_info(root)["video_path"]
    data = pa.concat_tables([pq.read_table(f, columns=["index", "timestamp"]) for f in data_files(root)])
    timestamps = np.empty(len(order))
    timestamps[np.searchsorted(order, data["index"].to_numpy())] = data["timestamp"].to_numpy()
    video = [f"videos/{key}/{c}" for c in ("chunk_index", "file_index", "from_timestamp")]
    columns = ["dataset_from_index", "dataset_to_index", *video]
    episodes = pa.concat_tables([pq.read_table(f, columns=columns) for f in episode_files(root)]).to_pylist()
    for ep in episodes:
        rows = np.searchsorted(order, np.arange(ep["dataset_from_index"], ep["dataset_to_index"]))
        path = root / template.format(video_key=key, chunk_index=ep[f"videos/{key}/chunk_index"],
                                      file_index=ep[f"videos/{key}/file_index"])  # fmt: skip
        query = (ep[f"videos/{key}/from_timestamp"] + timestamps[rows]).tolist()
        frames = decode_video_frames(path, query, VIDEO_TOLERANCE_S, backend="pyav", return_uint8=True)
        out[rows] = resize_frames(frames, tuple(out.shape[-2:]))
