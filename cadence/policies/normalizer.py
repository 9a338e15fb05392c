"""Per-dimension affine normalization with statistics stored as buffers (so they travel in checkpoints)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor, nn


class Normalizer(nn.Module):
    """x -> (x − mean) / std and back; std is floored at ``eps`` so constant dimensions stay finite."""

    def __init__(self, dim: int, eps: float = 1e-6):
        super().__init__()
        self.eps = eps
        self.register_buffer("mean", torch.zeros(dim))
        self.register_buffer("std", torch.ones(dim))

    @torch.no_grad()
    def set_stats(self, mean: Sequence[float] | Tensor, std: Sequence[float] | Tensor) -> None:
        mean, std = torch.as_tensor(mean, dtype=torch.float32), torch.as_tensor(std, dtype=torch.float32)
        if mean.shape != self.mean.shape or std.shape != self.std.shape:
            raise ValueError(
                f"normalization statistics have shapes {tuple(mean.shape)}/{tuple(std.shape)}, expected {tuple(self.mean.shape)}"
            )
        self.mean.copy_(mean)
        self.std.copy_(std.clamp_min(self.eps))

    def forward(self, x: Tensor) -> Tensor:
        return (x - self.mean) / self.std

    def inverse(self, y: Tensor) -> Tensor:
        return y * self.std + self.mean
