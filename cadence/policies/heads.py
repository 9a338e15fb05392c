"""Action heads: backbone features (…, D) -> normalized action (…, A).

Both heads predict the action in the *normalized* space of the training data (zero mean, unit
std per dimension for BC; identity statistics for RL); :class:`~cadence.policies.policy.SequencePolicy`
maps it back to environment units and clips to the action bounds in one place.

* ``deterministic`` — a linear layer; trained with MSE (behavior cloning).
* ``gaussian`` — the same mean plus a learned, state-independent log-std (PPO, BC with NLL).
"""

from __future__ import annotations

import torch
from torch import Tensor, nn
from torch.distributions import Independent, Normal

HEADS = ("deterministic", "gaussian")


class ActionHead(nn.Module):
    """Linear map to the action mean; ``gaussian`` adds a learned log-std (A,)."""

    def __init__(self, d_model: int, act_dim: int, kind: str = "deterministic", log_std_init: float = -0.5):
        super().__init__()
        if kind not in HEADS:
            raise ValueError(f"head {kind!r} is not one of {HEADS}")
        self.kind = kind
        self.norm = nn.LayerNorm(d_model)
        self.mean = nn.Linear(d_model, act_dim)
        self.log_std = nn.Parameter(torch.full((act_dim,), log_std_init)) if kind == "gaussian" else None

    def forward(self, h: Tensor) -> Tensor:
        """h (…, D) -> action mean (…, A), normalized units."""
        return self.mean(self.norm(h))

    def distribution(self, mean: Tensor) -> Independent:
        """Diagonal Gaussian around ``mean`` (…, A); only for the gaussian head."""
        if self.log_std is None:
            raise ValueError("a deterministic head has no action distribution; use head: gaussian")
        return Independent(Normal(mean, self.log_std.exp().expand_as(mean)), 1)
