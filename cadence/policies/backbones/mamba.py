"""Mamba (Gu & Dao 2023): mambapy's selective SSM blocks, run with an explicit, resettable state.

Symbols (as in :mod:`.base`, the rest as in the paper and mambapy):
    B batch, L time, D model width (``d_model``), E expand factor, ED = E·D inner width,
    N SSM state size (``d_state``), W conv width (``d_conv``).

The weights are mambapy's (``mambapy.mamba.Mamba``, held as ``self.mamba``, so a mambapy model's
``state_dict`` loads under the prefix ``mamba.``); the block's forward is written here because
mambapy's ``forward`` starts from a zero state and returns none, and its ``step`` cannot reset.
``step`` is ``forward`` over one step. Per layer:

    x, z  = in_proj(RMSNorm(x_in))                  (B, L, ED) each
    u_t   = silu(conv(x)_t)                         depthwise causal conv over x_{t−W+1..t}
    δ_t, B_t, C_t = x_proj(u_t),  Δ_t = softplus(dt_proj(δ_t))   (B, L, ED) for Δ
    h_t   = exp(Δ_t A) ⊙ h_{t−1} + Δ_t B_t u_t      (B, ED, N)
    y_t   = out_proj((C_t · h_t + D ⊙ u_t) ⊙ silu(z_t)),  x_out = x_in + y

State, batch-first, all layers stacked: conv inputs (B, n_layers, W − 1, ED) (the last W − 1 conv
inputs, oldest first) and SSM state h (B, n_layers, ED, N).

Resets at t: the conv reads no input from before t (the window is masked, :func:`.mlp.frame_windows`)
and the recurrence restarts from h = 0 by multiplying exp(Δ_t A) by 0 at t. The recurrence and its
readout C_t · h_t are :func:`.selective_scan.selective_scan` (on CPU a fused numba kernel; mambapy's
``pscan`` on CUDA, since the ``mamba-ssm`` CUDA kernel takes no initial state and cannot reset).
With ``scan="pscan"`` on CPU, call ``torch.set_flush_denormal(True)`` before timing long sequences:
cumulative products of exp(ΔA) reach denormals and slow ``pscan`` ~3x (measured on 2 CPU cores at
B = 32, L = 64); this module leaves that process-wide setting alone.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F
from mambapy.mamba import Mamba, MambaBlock, ResidualBlock
from mambapy.mamba import MambaConfig as MambapyConfig
from torch import Tensor, nn

from .base import State, check_input, check_state, mark_recurrence
from .mlp import frame_windows
from .selective_scan import SELECTIVE_SCANS, selective_scan


@dataclass
class MambaConfig:
    d_model: int = 128
    """D: block input and output width."""
    n_layers: int = 2
    """Residual Mamba blocks."""
    d_state: int = 16
    """N: SSM state size per inner channel."""
    expand: int = 2
    """E: inner width ED = E·D."""
    d_conv: int = 4
    """W: width of the causal depthwise convolution (its state keeps the last W − 1 inputs)."""
    dt_rank: int | None = None
    """Rank of the Δ projection; None = ceil(D / 16) (mambapy "auto"), so it grows with D."""
    dropout: float = 0.0
    """Dropout on each block's residual branch (the mixer's output) while training."""
    scan: str = "auto"
    """Evaluation of the recurrence in ``forward`` (:mod:`.selective_scan`): "auto" (numba on CPU, pscan on
    CUDA), "numba" (a fused compiled kernel), "pscan" (mambapy's parallel scan) or "loop" (the reference)."""

    def __post_init__(self):
        for name in ("d_model", "n_layers", "d_state", "expand", "d_conv"):
            if getattr(self, name) < 1:
                raise ValueError(f"MambaConfig.{name} must be >= 1, got {getattr(self, name)}")
        if self.dt_rank is not None and self.dt_rank < 1:
            raise ValueError(f"MambaConfig.dt_rank must be >= 1 or None, got {self.dt_rank}")
        if self.scan not in SELECTIVE_SCANS:
            raise ValueError(f"MambaConfig.scan {self.scan!r} is not one of {SELECTIVE_SCANS}")
        if not 0.0 <= self.dropout < 1.0:
            raise ValueError(f"MambaConfig.dropout must be in [0, 1), got {self.dropout}")


# --------------------------------------------------------------------------------------------
# Block
# --------------------------------------------------------------------------------------------
def mamba_block(
    block: ResidualBlock, x: Tensor, conv_in: Tensor, h0: Tensor, resets: Tensor | None, scan: str,
    dropout: float,
) -> tuple[Tensor, Tensor, Tensor]:
    """One mambapy residual block over a sequence, from a given state.

    Args:
        block: mambapy ``ResidualBlock`` (RMSNorm + ``MambaBlock`` mixer).
        x: (B, L, D).  conv_in: (B, W − 1, ED) past conv inputs.  h0: (B, ED, N).
        resets: (B, L) bool or None.  scan: one of SELECTIVE_SCANS.  dropout: on the mixer's output while ``block`` trains.

    Returns:
        x + dropout(mixer(norm(x))) (B, L, D), last conv inputs (B, W − 1, ED), last SSM state (B, ED, N).
    """
    m: MambaBlock = block.mixer
    cfg = m.config
    xs, z = m.in_proj(block.norm(x)).chunk(2, dim=-1)  # (B, L, ED) each
    windows, conv_in = frame_windows(conv_in, xs, resets)  # (B, L, ED, W)
    u = F.silu((windows * m.conv1d.weight.squeeze(1)).sum(-1) + m.conv1d.bias)  # depthwise causal conv

    A = -torch.exp(m.A_log)  # (ED, N), A < 0
    delta, Bs, Cs = torch.split(m.x_proj(u), [cfg.dt_rank, cfg.d_state, cfg.d_state], dim=-1)
    delta = F.softplus(m.dt_proj(delta))  # (B, L, ED)
    keep = (~resets).to(u.dtype) if resets is not None else None  # 0: the state restarts from zero
    y, h = selective_scan(u, delta, A, Bs, Cs, h0, keep, scan)
    y = y + m.D * u  # (B, L, ED)
    return x + F.dropout(m.out_proj(y * F.silu(z)), dropout, block.training), conv_in, h


# --------------------------------------------------------------------------------------------
# Stack
# --------------------------------------------------------------------------------------------
class MambaBackbone(nn.Module):
    """n_layers mambapy residual blocks -> RMSNorm.

    State: (conv inputs (B, n_layers, W − 1, ED), SSM state h (B, n_layers, ED, N)).
    """

    def __init__(self, cfg: MambaConfig, control_period: float | None = None):
        super().__init__()
        self.cfg, self.d_model = cfg, cfg.d_model
        self.mcfg = MambapyConfig(
            d_model=cfg.d_model, n_layers=cfg.n_layers, d_state=cfg.d_state, expand_factor=cfg.expand,
            d_conv=cfg.d_conv, dt_rank=cfg.dt_rank or "auto",
        )  # fmt: skip
        self.mamba = Mamba(self.mcfg)
        for layer in self.mamba.layers:  # the selective SSM's A_log, Δ (dt_proj) and D
            m = layer.mixer
            mark_recurrence(m.A_log, m.D, m.dt_proj.weight, m.dt_proj.bias)
        self.norm = nn.RMSNorm(cfg.d_model, eps=self.mcfg.rms_norm_eps)

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        """Zeros: conv inputs (B, n_layers, W − 1, ED) and SSM state (B, n_layers, ED, N)."""
        p, c = self.norm.weight, self.mcfg
        kw = {"device": device or p.device, "dtype": dtype or p.dtype}
        return (torch.zeros(batch_size, c.n_layers, c.d_conv - 1, c.d_inner, **kw),
                torch.zeros(batch_size, c.n_layers, c.d_inner, c.d_state, **kw))  # fmt: skip

    def forward(self, x: Tensor, state: State | None = None, resets: Tensor | None = None) -> tuple[Tensor, State]:
        """x (B, L, D), state, resets (B, L) bool -> (y (B, L, D), state after x[:, -1])."""
        check_input("x", x, self.d_model, seq=True)
        return self._run(x, state, resets, self.cfg.scan)

    def _run(self, x: Tensor, state: State | None, resets: Tensor | None, scan: str) -> tuple[Tensor, State]:
        if state is None:
            state = self.initial_state(x.shape[0], x.device, x.dtype)
        check_state("Mamba state", state, self.initial_state(x.shape[0], "meta", x.dtype))
        conv_in, h = state
        new_conv, new_h = [], []
        for i, block in enumerate(self.mamba.layers):
            x, c, hi = mamba_block(block, x, conv_in[:, i], h[:, i], resets, scan, self.cfg.dropout)
            new_conv.append(c)
            new_h.append(hi)
        return self.norm(x), (torch.stack(new_conv, 1), torch.stack(new_h, 1))

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """x (B, D), state -> (y (B, D), new state)."""
        check_input("x", x, self.d_model, seq=False)
        # one step: the loop is exact and avoids the scans' autograd Functions (not scriptable, slower)
        y, state = self._run(x.unsqueeze(1), state, None, "loop")
        return y.squeeze(1), state
