"""GRU: ``torch.nn.GRU`` with resettable state, the strongest memory-RL baseline (POPGym).

Symbols (as in :mod:`.base`): B batch, L time, D model width (``d_model``, also the hidden size).

The state is the hidden state of every layer, batch-first (B, n_layers, D); ``nn.GRU`` wants it
layer-first (n_layers, B, D), so it is transposed on the way in and back on the way out.

Resets: ``forward`` cuts the sequence at every step where some environment resets and runs the
fused GRU on each piece, zeroing the hidden state of the resetting environments in between. Cost:
one ``nn.GRU`` call per distinct reset time in the chunk (one call with no resets).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import Tensor, nn

from .base import State, check_input, check_state


@dataclass
class GRUConfig:
    d_model: int = 128
    """D: input and hidden width."""
    n_layers: int = 1
    """Stacked GRU layers."""
    dropout: float = 0.0
    """Dropout on every layer's output while training: between stacked layers (``nn.GRU``'s ``dropout``) and on
    the top layer's, so that it acts with one layer too."""

    def __post_init__(self):
        for name in ("d_model", "n_layers"):
            if getattr(self, name) < 1:
                raise ValueError(f"GRUConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"GRUConfig.dropout must be in [0, 1), got {self.dropout}")


class GRUBackbone(nn.Module):
    """``nn.GRU(D, D, n_layers)``; outputs the top layer's hidden state, dropped out while training.
    State: (h (B, n_layers, D),)."""

    def __init__(self, cfg: GRUConfig, control_period: float | None = None):
        super().__init__()
        self.cfg, self.d_model = cfg, cfg.d_model
        between = cfg.dropout if cfg.n_layers > 1 else 0.0  # nn.GRU's acts between layers only (and warns at one)
        self.gru = nn.GRU(cfg.d_model, cfg.d_model, cfg.n_layers, batch_first=True, dropout=between)
        self.drop = nn.Dropout(cfg.dropout)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        """(h (B, n_layers, D),) zeros."""
        p = self.gru.weight_hh_l0
        shape = (batch_size, self.cfg.n_layers, self.d_model)
        return (torch.zeros(shape, device=device or p.device, dtype=dtype or p.dtype),)

    def _run(self, x: Tensor, h: Tensor) -> tuple[Tensor, Tensor]:
        """x (B, L, D), h (B, n_layers, D) -> (y (B, L, D), h (B, n_layers, D)), no resets."""
        y, h = self.gru(x, h.transpose(0, 1).contiguous())  # h: (B, n_layers, D) -> (n_layers, B, D)
        return y, h.transpose(0, 1)  # (n_layers, B, D) -> (B, n_layers, D)

    def forward(self, x: Tensor, state: State | None = None, resets: Tensor | None = None) -> tuple[Tensor, State]:
        """x (B, L, D), state, resets (B, L) bool -> (y (B, L, D), state after x[:, -1])."""
        check_input("x", x, self.d_model, seq=True)
        B, L, _ = x.shape
        if state is None:
            state = self.initial_state(B, x.device, x.dtype)
        check_state("GRU state", state, self.initial_state(B, "meta", x.dtype))
        (h,) = state
        if resets is None:
            y, h = self._run(x, h)
            return self.drop(y), (h,)
        starts = resets.any(0).nonzero().flatten().tolist()  # steps where some environment resets
        bounds = sorted({0, *starts, L})
        ys = []
        for lo, hi in zip(bounds[:-1], bounds[1:]):
            h = h * (~resets[:, lo]).to(h.dtype).view(B, 1, 1)  # zero the state of environments starting anew
            y, h = self._run(x[:, lo:hi], h)
            ys.append(y)
        return self.drop(torch.cat(ys, dim=1)), (h,)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """x (B, D), state -> (y (B, D), new state)."""
        check_input("x", x, self.d_model, seq=False)
        y, state = self.forward(x.unsqueeze(1), state)
        return y.squeeze(1), state
