"""How precisely can an image encoder read a position from a dataset's frames? A probe for choosing the encoder.

Trains a convolutional encoder with a small head to regress chosen dims of a state feature (by default the
target's (x, y) of reacher_pixels: ``observation.environment_state`` dims 4, 5, Reacher-v5's observation) from
one camera's frames, with the policies' random shift, then reports the error on the dataset's last
``--held-out`` frames: mean, 90th percentile, and the fraction within ``--within`` (the task's success radius).
The encoder: the policies' 3×3 convolutions (``cadence.policies.image_encoder.CHANNELS``) at the strides given,
read out by average pooling to 4 × 4 (the policies' encoder at strides 2 2 2) or by keypoints (a spatial softmax,
robomimic's readout), then a small head.

    python tools/localization_probe.py DATASET [--strides 2 2 2] [--readout average|keypoints] [--steps 1500]
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import torch
import torch.nn.functional as F
from torch import nn

from cadence.datasets.format import data_files, read_info
from cadence.datasets.images import decode_images
from cadence.policies.image_encoder import CHANNELS, random_shift

KEYPOINTS = 32
"""Maps of the keypoint readout (robomimic's ``SpatialSoftmax`` default)."""


class SpatialSoftmax(nn.Module):
    """Feature maps (N, C, h, w) -> (N, 2K): per map k of a 1×1 convolution, the expected (x, y) in [−1, 1]² under
    softmax(map / τ) over its positions, τ learned (Levine et al. 2016, §4.2)."""

    def __init__(self, channels: int, keypoints: int):
        super().__init__()
        self.maps = nn.Conv2d(channels, keypoints, 1)
        self.log_temperature = nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        N, _, h, w = x.shape
        p = (self.maps(x).flatten(2) / self.log_temperature.exp()).softmax(-1).unflatten(-1, (h, w))  # (N, K, h, w)
        xs, ys = torch.linspace(-1, 1, w), torch.linspace(-1, 1, h)
        return torch.cat([(p.sum(2) * xs).sum(-1), (p.sum(3) * ys).sum(-1)], dim=-1)


def encoder(channels: int, strides: list[int], readout: str) -> nn.Sequential:
    """Convolutions of ``CHANNELS`` at ``strides``, then ``readout``, then a head to 2 values."""
    layers: list[nn.Module] = []
    for c_in, c_out, stride in zip((channels, *CHANNELS), CHANNELS, strides):
        layers += [nn.Conv2d(c_in, c_out, 3, stride=stride, padding=1), nn.GELU()]
    if readout == "keypoints":
        layers += [SpatialSoftmax(CHANNELS[-1], KEYPOINTS), nn.Linear(2 * KEYPOINTS, 64)]
    else:
        layers += [nn.AdaptiveAvgPool2d(4), nn.Flatten(), nn.Linear(CHANNELS[-1] * 16, 64)]
    return nn.Sequential(*layers, nn.GELU(), nn.Linear(64, 2))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("dataset", type=Path)
    ap.add_argument("--camera", default="observation.images.top")
    ap.add_argument("--feature", default="observation.environment_state")
    ap.add_argument("--dims", type=int, nargs=2, default=[4, 5])
    ap.add_argument("--strides", type=int, nargs=3, default=[2, 2, 2])
    ap.add_argument("--readout", choices=["average", "keypoints"], default="average")
    ap.add_argument("--steps", type=int, default=1500)
    ap.add_argument("--batch", type=int, default=128)
    ap.add_argument("--held-out", type=int, default=5000)
    ap.add_argument("--within", type=float, default=0.02)
    args = ap.parse_args()
    torch.manual_seed(0)
    frames = decode_images(args.dataset, read_info(args.dataset)["features"], [args.camera])  # (N, C, H, W) uint8
    tables = [pq.read_table(f, columns=["index", args.feature]) for f in data_files(args.dataset)]
    index = np.concatenate([t["index"].to_numpy() for t in tables])
    state = np.concatenate([np.stack(t[args.feature].to_numpy()) for t in tables])[np.argsort(index)]
    target = torch.tensor(state[:, args.dims], dtype=torch.float32)
    scale = 1 / target.std()  # regress standardized values
    train = len(frames) - args.held_out
    net = encoder(frames.shape[1], args.strides, args.readout)
    opt = torch.optim.AdamW(net.parameters(), 1e-3)
    t0 = time.perf_counter()
    for _ in range(args.steps):
        b = torch.randint(0, train, (args.batch,))
        loss = F.mse_loss(net(random_shift(frames[b].float() / 255 - 0.5, 4)), target[b] * scale)
        opt.zero_grad()
        loss.backward()
        opt.step()
    with torch.no_grad():
        held = range(train, len(frames), 500)
        err = torch.cat([(net(frames[i:i + 500].float() / 255 - 0.5) / scale - target[i:i + 500]).norm(dim=-1)
                         for i in held])  # fmt: skip
    print(json.dumps({"strides": args.strides, "readout": args.readout, "steps": args.steps,
                      "train_s": round(time.perf_counter() - t0), "mean_error": err.mean().item(),
                      "p90_error": err.quantile(0.9).item(), "within": (err < args.within).float().mean().item()}))


if __name__ == "__main__":
    main()
