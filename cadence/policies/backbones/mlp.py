"""Memory-less control: a residual MLP over a frame stack of the last k inputs.

Symbols (as in :mod:`.base`): B batch, L time, D model width (``d_model``), k frames (``frame_stack``).

With ``frame_stack = 1`` the backbone sees only the current input: the "is memory needed?" control.
With k > 1 it sees the last k inputs, concatenated oldest first, (B, L, k·D) -> (B, L, D). Frames
from before the start of the episode are zeros (zero padding), both at the start and after a reset,
so the state is just the last k − 1 inputs, (B, k − 1, D), and zeros are a fresh state.

:func:`frame_windows` is the causal, resettable window over past inputs; Mamba's short convolution
(:mod:`.mamba`) is a weighted sum over the same windows.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from torch import Tensor, nn

from .base import State, check_input, check_state


@dataclass
class MLPConfig:
    d_model: int = 128
    """D: input, hidden and output width."""
    n_layers: int = 2
    """Residual blocks, each LayerNorm -> Linear(D, D) -> GELU -> Linear(D, D), added to its input."""
    frame_stack: int = 1
    """k: how many of the latest inputs the MLP sees (1 = the current one only)."""
    dropout: float = 0.0
    """Dropout on each residual branch while training."""

    def __post_init__(self):
        for name in ("d_model", "n_layers", "frame_stack"):
            if getattr(self, name) < 1:
                raise ValueError(f"MLPConfig.{name} must be >= 1, got {getattr(self, name)}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MLPConfig.dropout must be in [0, 1), got {self.dropout}")


def frame_windows(past: Tensor, x: Tensor, resets: Tensor | None) -> tuple[Tensor, Tensor]:
    """The last k inputs at every step, with inputs from before a reset replaced by zeros.

    Args:
        past: (B, k − 1, C) the inputs before ``x[:, 0]``, oldest first (zeros = none).
        x: (B, L, C) new inputs.
        resets: (B, L) bool or None; True at t drops every input before t from the windows.

    Returns:
        windows (B, L, C, k), window[..., j] = input t − (k − 1) + j (the last one is x[:, t]);
        new past (B, k − 1, C): the last k − 1 inputs, zeros where before the last reset.
    """
    B, L, _ = x.shape
    k = past.shape[1] + 1
    seq = torch.cat([past, x], dim=1)  # (B, k − 1 + L, C)
    windows = seq.unfold(1, k, 1)  # (B, L, C, k)
    if resets is None:
        return windows, seq[:, L:]
    # episode index of every position; the past belongs to episode 0 (the one running before x)
    episode = F.pad(resets.long().cumsum(1), (k - 1, 0))  # (B, k − 1 + L)
    same = episode.unfold(1, k, 1) == episode[:, k - 1 :, None]  # (B, L, k): frame j in t's episode
    keep = (episode[:, L:] == episode[:, -1:]).unsqueeze(-1)  # (B, k − 1, 1)
    return windows * same.unsqueeze(2).to(x.dtype), seq[:, L:] * keep.to(x.dtype)


class ResidualMLPBlock(nn.Module):
    """x + Dropout(Linear(GELU(Linear(LayerNorm(x))))), (..., D) -> (..., D)."""

    def __init__(self, d_model: int, dropout: float = 0.0):
        super().__init__()
        self.norm = nn.LayerNorm(d_model)
        self.fc = nn.Linear(d_model, d_model)
        self.proj = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, x: Tensor) -> Tensor:
        return x + self.drop(self.proj(F.gelu(self.fc(self.norm(x)))))


class MLPBackbone(nn.Module):
    """Frame stack -> Linear(k·D, D) -> n_layers residual blocks -> LayerNorm. State: (past (B, k − 1, D),)."""

    def __init__(self, cfg: MLPConfig, control_period: float | None = None):
        super().__init__()
        self.cfg, self.d_model = cfg, cfg.d_model
        D, k = cfg.d_model, cfg.frame_stack
        self.embed = nn.Linear(k * D, D)
        self.blocks = nn.ModuleList([ResidualMLPBlock(D, cfg.dropout) for _ in range(cfg.n_layers)])
        self.norm = nn.LayerNorm(D)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        """(past inputs (B, k − 1, D),) zeros; k = 1 gives an empty (B, 0, D) tensor."""
        p = self.embed.weight
        return (torch.zeros(batch_size, self.cfg.frame_stack - 1, self.d_model, device=device or p.device,
                            dtype=dtype or p.dtype),)  # fmt: skip

    def forward(self, x: Tensor, state: State | None = None, resets: Tensor | None = None) -> tuple[Tensor, State]:
        """x (B, L, D), state, resets (B, L) bool -> (y (B, L, D), state after x[:, -1])."""
        check_input("x", x, self.d_model, seq=True)
        B, L, D = x.shape
        if state is None:
            state = self.initial_state(B, x.device, x.dtype)
        check_state("MLP state", state, self.initial_state(B, "meta", x.dtype))
        windows, past = frame_windows(state[0], x, resets)  # (B, L, D, k)
        h = self.embed(windows.transpose(2, 3).reshape(B, L, -1))  # frames oldest first: (B, L, k·D)
        for block in self.blocks:
            h = block(h)
        return self.norm(h), (past,)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """x (B, D), state -> (y (B, D), new state)."""
        check_input("x", x, self.d_model, seq=False)
        y, state = self.forward(x.unsqueeze(1), state)
        return y.squeeze(1), state
