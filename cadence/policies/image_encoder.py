"""Camera frames -> features: a small convolutional encoder trained from scratch (nothing is downloaded), with
robomimic-style random-shift augmentation in training mode only.

Symbols: B batch, L time, C channels (the selected cameras' channels stacked), H, W pixels, F features.

:class:`~cadence.policies.policy.SequencePolicy` concatenates the F features of a frame with the normalized state
vector in front of its MLP encoder, so every backbone sees the same (…, D) input as without a camera.

Augmentation (``shift`` pixels): each frame is padded by ``shift`` pixels (its border repeated) and cropped back
to H × W at an offset drawn uniformly per frame, i.e. a random crop of the padded frame (robomimic's
``CropRandomizer``, DrQ's random shift). Only while the module is in training mode (``policy.train()``); in
evaluation mode, and so in stepping, rollouts and deployment, the frame is used as it is.

Frames from cameras or renderers (each (…, H, W, C) uint8, by feature name) become the policy's input with
:func:`assemble_frames` (stacked, resized with :func:`resize_frames` as the training cache was), in rollouts and
deployment alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

CHANNELS = (32, 64, 64)
"""Output channels of the three stride-2 3×3 convolutions."""
POOL = 4
"""Side of the average-pooled feature map (so any H, W ≥ 1 gives CHANNELS[-1] × POOL² values)."""


class ImageEncoder(nn.Module):
    """uint8 frames (…, C, H, W) -> features (…, F): pixels scaled to [-0.5, 0.5], three stride-2 convolutions
    (GELU), average pooling to POOL × POOL, a linear layer."""

    def __init__(self, image_shape: tuple[int, int, int], features: int, shift: int):
        super().__init__()
        self.image_shape, self.shift = tuple(int(s) for s in image_shape), shift
        layers: list[nn.Module] = []
        for c_in, c_out in zip((self.image_shape[0], *CHANNELS), CHANNELS):
            layers += [nn.Conv2d(c_in, c_out, 3, stride=2, padding=1), nn.GELU()]
        self.net = nn.Sequential(*layers, nn.AdaptiveAvgPool2d(POOL), nn.Flatten(), nn.Linear(CHANNELS[-1] * POOL**2,
                                                                                              features))  # fmt: skip

    def forward(self, images: Tensor) -> Tensor:
        """images (…, C, H, W) uint8 -> (…, F); randomly shifted in training mode."""
        check_images(images, self.image_shape)
        lead = images.shape[:-3]
        x = images.reshape(-1, *self.image_shape).float() / 255 - 0.5
        if self.training and self.shift:
            x = random_shift(x, self.shift)
        return self.net(x).reshape(*lead, -1)


def random_shift(x: Tensor, pad: int, generator: torch.Generator | None = None) -> Tensor:
    """x (N, C, H, W) -> the same frames each shifted by up to ``pad`` pixels in each direction: padded by
    ``pad`` (border repeated), then cropped back to H × W at an offset drawn uniformly per frame."""
    N, _, H, W = x.shape
    padded = F.pad(x, (pad,) * 4, mode="replicate")
    dy, dx = (torch.randint(2 * pad + 1, (N, 1), generator=generator).to(x.device) for _ in range(2))
    rows = (dy + torch.arange(H, device=x.device))[:, :, None]  # (N, H, 1)
    cols = (dx + torch.arange(W, device=x.device))[:, None, :]  # (N, 1, W)
    return padded[torch.arange(N, device=x.device)[:, None, None], :, rows, cols].permute(0, 3, 1, 2)


def check_images(images: Tensor, image_shape: tuple[int, int, int]) -> None:
    """Raise a ValueError unless ``images`` is uint8 (…, C, H, W) with (C, H, W) = ``image_shape``."""
    if images.dtype != torch.uint8 or tuple(images.shape[-3:]) != tuple(image_shape):
        raise ValueError(f"images are {images.dtype} {tuple(images.shape)}, and this policy observes uint8 camera "
                         f"frames (…, {', '.join(map(str, image_shape))}) (C, H, W: the training cameras' channels "
                         "stacked, at the training resolution); pass the frames as the dataset's image cache holds "
                         "them (cadence.datasets.images), or assemble them with assemble_frames")  # fmt: skip


def assemble_frames(frames: Mapping[str, np.ndarray], keys: Sequence[str], image_shape: Sequence[int]) -> Tensor:
    """The input of an image policy from its cameras' frames: ``frames[key]`` (…, H, W, C) uint8 for each of
    ``keys`` (as a renderer or a camera delivers them), stacked along C in that order and resized to
    ``image_shape`` (C, H, W) as the training cache was: (…, C, H, W) uint8. A missing camera or a channel count
    other than the policy's raises a ValueError naming them."""
    if missing := [k for k in keys if k not in frames]:
        raise ValueError(f"the policy observes the camera(s) {list(keys)} and was given {sorted(frames) or 'none'}: "
                         f"pass the frames of {missing} (uint8 (H, W, C) each)")  # fmt: skip
    stacked = torch.cat([torch.from_numpy(np.ascontiguousarray(frames[k])).movedim(-1, -3) for k in keys], dim=-3)
    if stacked.dtype != torch.uint8 or stacked.shape[-3] != image_shape[0]:
        raise ValueError(f"the frames of {list(keys)} stack to {tuple(stacked.shape)} {stacked.dtype}; the policy takes "
                         f"uint8 frames with {image_shape[0]} channels in all (each camera (H, W, C))")  # fmt: skip
    lead = stacked.shape[:-3]
    flat = resize_frames(stacked.reshape(-1, *stacked.shape[-3:]), tuple(image_shape[1:]))
    return flat.reshape(*lead, *flat.shape[1:])


def resize_frames(frames: Tensor, hw: tuple[int, int]) -> Tensor:
    """frames (T, C, h, w) uint8 -> (T, C, H, W) uint8 (bilinear, antialiased; unchanged at the same size): how the
    cache is resized (``algo.image_size``), and how a rollout's frames are brought to a policy's size."""
    if tuple(frames.shape[-2:]) == tuple(hw):
        return frames
    x = F.interpolate(frames.float(), size=hw, mode="bilinear", antialias=True, align_corners=False)
    return x.round().clamp(0, 255).to(torch.uint8)
