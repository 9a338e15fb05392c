"""LinOSS and D-LinOSS: stacks of forced harmonic oscillators (Rusch & Rus 2025; Boyer, Rusch & Rus 2025).

References (docs/linoss.md, "References"): [LinOSS] Rusch & Rus, "Oscillatory State-Space Models", ICLR 2025,
arXiv:2410.03943; [D-LinOSS] Boyer, Rusch & Rus, "Learning to Dissipate Energy in Oscillatory State-Space
Models", arXiv:2505.12171 (section numbers of v1); and the official code this port matches numerically
(tests/policies/backbones/test_linoss_parity.py): ``models/LinOSS.py`` of tk-rusch/linoss and
``src/damped_linoss/models/LinOSS.py`` of jaredbmit/damped-linoss.

Symbols: B batch, L time, H model width (``hidden_dim`` / ``d_model``), P oscillators (``state_dim``).

Per oscillator the continuous model is x'' = −A x − G x' + B u, y = Re(C x) + D ⊙ u ([LinOSS] eqs. 1–2 with
G = 0; [D-LinOSS] §2.1), discretized three ways (``variant``):

* ``"im"``     LinOSS-IM, implicit Euler, dissipative ([LinOSS] §2.3, eqs. 3–4)
* ``"imex"``   LinOSS-IMEX, symplectic, conservative ([LinOSS] §2.3, eqs. 5–6)
* ``"damped"`` D-LinOSS (the official ``DampedIMEX1Layer``, [D-LinOSS] §2.2) with learned damping G and the
  soft projection of A onto the stable region (:func:`soft_project_AG`)

Raw parameters are stored under the official names and shapes and constrained in ``forward``, so
official weights load with ``load_state_dict`` (see :func:`convert_official`).

State layout of one layer: a tensor (B, 2, 2P) — index 0 the velocity z, index 1 the position x —
whose last axis interleaves (re, im) of each oscillator's complex state. The recurrence runs in
``state_dtype`` (float64 by default) whatever the model's dtype: a conservative (IMEX) or slowly
decaying oscillator integrates its own rounding error, which in float32 reaches ~1e-5 of the signal
within a few thousand steps and makes ``forward`` and ``step`` drift apart; in float64 it does not,
and it costs nothing measurable because the scan is bound by reading u and writing x, which stay in
the model's dtype.

Normalization (``norm``): the official code's two BatchNorm flavours are kept for parity (``"batch_ema"``
tk-rusch/linoss, ``"batch"`` damped-linoss; :class:`SpecBatchNorm`), but BatchNorm's statistics span batch × time,
which a policy stepped one observation at a time does not have: training and stepping would see
different functions. Policies therefore default to ``"layer"`` (LayerNorm over channels, per time
step — causal and identical in ``forward`` and ``step``). BatchNorm layers step with their running
statistics, which equals ``forward`` in eval mode only.
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Mapping
from dataclasses import dataclass, field

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor, nn

from ...spectral import demonstration_peaks
from .base import State, check_input, check_state, mark_recurrence
from .linoss_init import InitConfig, init_oscillators_
from .fused_layer import fused_layer
from .scan import SCAN_METHODS, Transition, oscillator_scan, resolve_method

log = logging.getLogger(__name__)
VARIANTS = ("im", "imex", "damped")
NORMS = ("layer", "rms", "batch_ema", "batch", "none")
FUSED_MAX_CHANNELS = 12
"""Widest layer (H) that ``forward`` runs through :func:`.fused_layer.fused_layer` when the scan is "numba". The fused
kernel's cost is the maps' arithmetic, 7·H·2P float64 multiply-adds per step (forward, recompute, backward); the
unfused path's is moving its (B, L, 2P) tensors, with the maps in float32 BLAS. Training step (forward + backward)
on 1 thread at B = 16, L = 8192, P = 128 (``python benchmarks/scan.py --roofline-only``, allocator tuned): fused
1.6x faster at H = 4, 1.3x at H = 8 and 12, even at 16 (0.8-1.1x over two runs), 2.8x slower at H = 128."""


# --------------------------------------------------------------------------------------------
# Discretization (pure math on the constrained parameters)
# --------------------------------------------------------------------------------------------
def soft_project_AG(A_raw: Tensor, G_raw: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
    """D-LinOSS parameterization: A clipped to the stable region (G − Δt A)² ≤ 4A of [D-LinOSS] Prop. 3.2, in the
    relu form of the official ``DampedIMEX1Layer._soft_project_AGdt`` so that gradients match too."""
    G = F.relu(G_raw)
    den = torch.clamp(dt**2, min=1e-6)
    root = torch.sqrt(1 + dt * G)
    A_lo = (2 + dt * G - 2 * root) / den
    A_hi = (2 + dt * G + 2 * root) / den
    A = A_lo + F.relu(A_raw - A_lo) - F.relu(A_raw - A_hi)
    return A, G


def discretize(variant: str, A: Tensor, G: Tensor | None, dt: Tensor) -> Transition:
    """Per-oscillator transition M and input gain f (each (P,)) of ``variant``."""
    if variant == "im":  # [LinOSS] eq. 3, S = 1/(1 + Δt² A)
        S = 1.0 / (1.0 + dt**2 * A)
        return Transition(1.0 - dt**2 * A * S, -dt * A * S, dt * S, S, dt * S, dt**2 * S)
    if variant == "imex":  # [LinOSS] eq. 6
        one = torch.ones_like(A)
        return Transition(one, -dt * A, dt, 1.0 - dt**2 * A, dt, dt**2)
    if variant == "damped":  # [D-LinOSS] §2.2, S = 1 + Δt G (not inverted)
        S = 1.0 + dt * G
        return Transition(1.0 / S, -dt * A / S, dt / S, 1.0 - dt**2 * A / S, dt / S, dt**2 / S)
    raise ValueError(f"variant {variant!r} is not one of {VARIANTS}")


# --------------------------------------------------------------------------------------------
# Layer
# --------------------------------------------------------------------------------------------
class LinOSSLayer(nn.Module):
    """One LinOSS / D-LinOSS SSM layer: (B, L, H) -> (B, L, H) (official ``LinOSSLayer`` / ``DampedIMEX1Layer``).

    Args:
        state_dim: P oscillators.  hidden_dim: H input/output channels.  variant: "im" | "imex" | "damped".
        enforce_stability: IMEX only. LinOSS-IMEX has |λ| = 1 only while Δt² A ≤ 4 (beyond, the eigenvalues
            of M in [LinOSS] eq. 6 turn real and one exceeds 1); the official code does not enforce it, so
            neither does this layer by default (parity). With True, A is capped at 4/Δt² by the relu form
            A − relu(A − 4/Δt²): a deployed policy must not acquire a growing mode. IM and D-LinOSS are
            stable by construction.
        init: oscillator init (:class:`InitConfig`); None = the paper default.
        control_period: seconds per step, needed by the CPG init.
        scan: how ``forward`` evaluates the recurrence (:mod:`.scan`).
        state_dtype: dtype of the recurrence and its state (module docstring); None = the parameters'.
    """

    def __init__(
        self,
        state_dim: int,
        hidden_dim: int,
        variant: str = "im",
        *,
        enforce_stability: bool = False,
        init: InitConfig | None = None,
        control_period: float | None = None,
        scan: str = "auto",
        state_dtype: torch.dtype | None = torch.float64,
        generator: torch.Generator | None = None,
    ):
        super().__init__()
        if variant not in VARIANTS:
            raise ValueError(f"variant {variant!r} is not one of {VARIANTS}")
        if scan not in SCAN_METHODS:
            raise ValueError(f"scan {scan!r} is not one of {SCAN_METHODS}")
        P, H = state_dim, hidden_dim
        self.state_dim, self.hidden_dim, self.variant = P, H, variant
        self.enforce_stability, self.scan, self.state_dtype = enforce_stability, scan, state_dtype
        self._io_cache = None
        g = generator
        # as the official layers: B ~ U[-1/√H, 1/√H), C ~ U[-1/√P, 1/√P), D ~ N(0, 1); (re, im) on the last axis
        self.A_diag = nn.Parameter(torch.empty(P))
        self.steps = nn.Parameter(torch.empty(P))
        self.G_diag = nn.Parameter(torch.empty(P)) if variant == "damped" else None
        self.B = nn.Parameter((torch.rand(P, H, 2, generator=g) * 2 - 1) / math.sqrt(H))
        self.C = nn.Parameter((torch.rand(H, P, 2, generator=g) * 2 - 1) / math.sqrt(P))
        self.D = nn.Parameter(torch.randn(H, generator=g))
        init_oscillators_(self, init or InitConfig(kind="paper"), control_period, g)
        mark_recurrence(*(p for p in (self.A_diag, self.G_diag, self.steps) if p is not None))

    def constrained(self) -> tuple[Tensor, Tensor | None, Tensor]:
        """The constrained (A, G, Δt), each (P,): Δt = sigmoid, A = relu ([LinOSS] §3.1) or soft_project_AG."""
        dt = torch.sigmoid(self.steps)
        if self.variant == "damped":
            A, G = soft_project_AG(self.A_diag, self.G_diag, dt)
            return A, G, dt
        A = F.relu(self.A_diag)
        if self.enforce_stability and self.variant == "imex":
            A = A - F.relu(A - 4.0 / dt**2)
        return A, None, dt

    def transition(self, dtype: torch.dtype | None = None) -> Transition:
        """Per-oscillator coefficients (P,) of the current parameters (optionally cast first)."""
        A, G, dt = self.constrained()
        if dtype is not None:
            A, dt = A.to(dtype), dt.to(dtype)
            G = G.to(dtype) if G is not None else None
        return discretize(self.variant, A, G, dt)

    def _io(self) -> tuple[Transition, Tensor, Tensor]:
        """Coefficients (state dtype) expanded to the 2P real channels, input map B̃ (H, 2P), readout C̃ (2P, H).

        Without autograd (control, evaluation) the result is cached until a parameter changes
        (in-place updates bump ``Tensor._version``), so stepping does not re-discretize every step. A switch of
        training mode (``.train()``, ``.eval()``) drops the cache too: an optimizer that writes the parameters
        without bumping their versions (PyTorch's fused AdamW, unless stepped through
        :func:`cadence.training.optim.adamw`) is then caught at the usual ``.eval()`` before evaluating.
        """
        if torch.is_grad_enabled():
            return self._compute_io()
        key = tuple((p.data_ptr(), p._version) for p in self.parameters())
        if self._io_cache is None or self._io_cache[0] != key:
            self._io_cache = (key, self._compute_io())
        return self._io_cache[1]

    def train(self, mode: bool = True) -> LinOSSLayer:
        """Set training mode (:meth:`torch.nn.Module.train`), dropping the cached coefficients (:meth:`_io`)."""
        self._io_cache = None
        return super().train(mode)

    def _compute_io(self) -> tuple[Transition, Tensor, Tensor]:
        # each oscillator's coefficients on its (re, im) channel pair: one stack and one copy for all six (at short
        # windows a training step is mostly such small ops; six repeat_interleave calls and their backward cost more)
        coeffs = torch.stack(self.transition(self.state_dtype).as_tuple())  # (6, P)
        t = Transition(*coeffs.unsqueeze(-1).expand(-1, -1, 2).reshape(6, 2 * self.state_dim).unbind(0))
        B_map = self.B.permute(1, 0, 2).reshape(self.hidden_dim, 2 * self.state_dim)  # Bu = u @ B_map
        # y = Re(C x) = C_re x_re − C_im x_im  (the official readout ``(C_complex @ x).real``)
        C_map = torch.stack([self.C[..., 0], -self.C[..., 1]], dim=-1).reshape(self.hidden_dim, -1).T
        return t, B_map, C_map

    def initial_state(self, batch_size: int, device=None, dtype=None) -> Tensor:
        """Zeros (B, 2, 2P): [velocity z, position x], (re, im) interleaved, in ``state_dtype``."""
        p = self.B
        dtype = self.state_dtype or dtype or p.dtype
        return torch.zeros(batch_size, 2, 2 * self.state_dim, device=device or p.device, dtype=dtype)

    def forward(self, u: Tensor, state: Tensor | None = None, resets: Tensor | None = None) -> tuple[Tensor, Tensor]:
        """u (B, L, H), state (B, 2, 2P) or None, resets (B, L) bool -> (y (B, L, H), final state)."""
        Bsz = u.shape[0]
        if state is None:
            state = self.initial_state(Bsz, u.device, u.dtype)
        elif state.shape != (Bsz, 2, 2 * self.state_dim):
            raise ValueError(f"LinOSS layer state has shape {tuple(state.shape)}, expected {(Bsz, 2, 2 * self.state_dim)}")
        t, B_map, C_map = self._io()
        keep = None if resets is None else (~resets.bool()).to(state.dtype)
        if self.hidden_dim <= FUSED_MAX_CHANNELS and resolve_method(self.scan, u.device) == "numba":
            y, z_end, x_end = fused_layer(u, t, B_map, C_map, state[:, 0], state[:, 1], keep)
        else:
            xs, z_end, x_end = oscillator_scan(u @ B_map, t, state[:, 0], state[:, 1], keep, self.scan)  # u's dtype
            y = xs @ C_map
        y = y + self.D * u
        return y, torch.stack([z_end, x_end], dim=1)

    def step(self, u: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        """u (B, H), state (B, 2, 2P) -> (y (B, H), new state)."""
        t, B_map, C_map = self._io()
        bu = u @ B_map
        z, x = state[:, 0], state[:, 1]
        z, x = t.m11 * z + t.m12 * x + t.f1 * bu, t.m21 * z + t.m22 * x + t.f2 * bu
        return x.to(u.dtype) @ C_map + self.D * u, torch.stack([z, x], dim=1)


# --------------------------------------------------------------------------------------------
# Normalization
# --------------------------------------------------------------------------------------------
class SpecBatchNorm(nn.Module):
    """The official blocks' ``eqx.nn.BatchNorm`` under ``jax.vmap(axis_name="batch")``: statistics over batch × time,
    no affine, eps 1e-5, biased variance.

    ``mode="ema"`` (LinOSS / equinox default): in training the first call normalizes with the batch
    statistics and stores them; later calls normalize with 0.01·batch + 0.99·running and store that.
    ``mode="batch"`` (D-LinOSS @617acacd): training normalizes with the batch statistics and updates
    a hidden EMA (mean from 0, var from 1); inference debiases it by 1 − 0.99^counter.
    Inference (eval mode, and every ``step``) uses the stored statistics.
    """

    def __init__(self, channels: int, mode: str, momentum: float = 0.99, eps: float = 1e-5):
        super().__init__()
        self.mode, self.momentum, self.eps = mode, momentum, eps
        self.register_buffer("hidden_mean", torch.zeros(channels))
        self.register_buffer("hidden_var", torch.ones(channels))
        self.register_buffer("counter", torch.zeros((), dtype=torch.long))

    def _inference_stats(self) -> tuple[Tensor, Tensor]:
        if self.mode == "ema":
            return self.hidden_mean, self.hidden_var
        debias = 1 - self.momentum ** self.counter.clamp_min(1).double()
        return self.hidden_mean / debias.to(self.hidden_mean), self.hidden_var / debias.to(self.hidden_var)

    def forward(self, x: Tensor) -> Tensor:
        """x (B, L, H) or (B, H)."""
        if not self.training or x.dim() == 2:
            mean, var = self._inference_stats()
            return (x - mean) / torch.sqrt(var + self.eps)
        dims = tuple(range(x.dim() - 1))
        bm, bv = x.mean(dims), x.var(dims, unbiased=False)
        m = self.momentum
        if self.mode == "ema":
            if self.counter == 0:
                mean, var = bm, bv
            else:
                mean, var = (1 - m) * bm + m * self.hidden_mean, (1 - m) * bv + m * self.hidden_var
            new_mean, new_var = mean, var
        else:
            mean, var = bm, bv
            new_mean, new_var = m * self.hidden_mean + (1 - m) * bm, m * self.hidden_var + (1 - m) * bv
        with torch.no_grad():
            self.hidden_mean.copy_(new_mean)
            self.hidden_var.copy_(new_var)
            self.counter += 1
        return (x - mean) / torch.sqrt(var + self.eps)


def make_norm(kind: str, channels: int) -> nn.Module:
    """Per-block input normalization; see the module docstring for why policies use "layer"."""
    if kind == "layer":
        return nn.LayerNorm(channels)
    if kind == "rms":
        return nn.RMSNorm(channels)
    if kind == "batch_ema":
        return SpecBatchNorm(channels, mode="ema")
    if kind == "batch":
        return SpecBatchNorm(channels, mode="batch")
    if kind == "none":
        return nn.Identity()
    raise ValueError(f"norm {kind!r} is not one of {NORMS}")


# --------------------------------------------------------------------------------------------
# Block and stack
# --------------------------------------------------------------------------------------------
class GLU(nn.Module):
    """(W1 x + b1) ⊙ sigmoid(W2 x + b2) per time step ([LinOSS] App. A; the official ``GLU``)."""

    def __init__(self, channels: int):
        super().__init__()
        self.w1 = nn.Linear(channels, channels)
        self.w2 = nn.Linear(channels, channels)

    def forward(self, x: Tensor) -> Tensor:
        return self.w1(x) * torch.sigmoid(self.w2(x))


class LinOSSBlock(nn.Module):
    """norm → SSM → GELU(tanh) → dropout → GLU → dropout → + residual, as the official ``LinOSSBlock``.

    (B, L, H) -> (B, L, H).
    """

    def __init__(self, state_dim: int, hidden_dim: int, variant: str, norm: str = "layer", dropout: float = 0.0, **layer_kwargs):
        super().__init__()
        self.norm = make_norm(norm, hidden_dim)
        self.layer = LinOSSLayer(state_dim, hidden_dim, variant, **layer_kwargs)
        self.glu = GLU(hidden_dim)
        self.drop = nn.Dropout(dropout)

    def _mix(self, h: Tensor) -> Tensor:
        h = self.drop(F.gelu(h, approximate="tanh"))
        return self.drop(self.glu(h))

    def forward(self, x: Tensor, state: Tensor | None = None, resets: Tensor | None = None) -> tuple[Tensor, Tensor]:
        h, state = self.layer(self.norm(x), state, resets)
        return x + self._mix(h), state

    def step(self, x: Tensor, state: Tensor) -> tuple[Tensor, Tensor]:
        h, state = self.layer.step(self.norm(x), state)
        return x + self._mix(h), state


@dataclass
class LinOSSConfig:
    """LinOSS / D-LinOSS backbone for policies: ``n_layers`` blocks of width ``d_model``."""

    d_model: int = 128
    """H, the width of every block (input and output)."""
    n_layers: int = 2
    """Number of blocks. 2 is what ``cadence-train`` (``cadence/configs/policy/linoss.yaml``) and every published
    result used; before issue 18 this default said 4, so the Python API built a deeper model than the CLI."""
    state_dim: int = 64
    """P, oscillators per block."""
    variant: str = "damped"
    """"im" (LinOSS-IM), "imex" (LinOSS-IMEX) or "damped" (D-LinOSS)."""
    norm: str = "layer"
    """Block input norm: "layer" (default, causal), "rms", "batch_ema", "batch", "none"."""
    dropout: float = 0.0
    """Dropout after GELU and after GLU."""
    enforce_stability: bool = True
    """IMEX: cap Δt²A ≤ 4 so no mode can grow (see LinOSSLayer)."""
    scan: str = "auto"
    """Sequence evaluation: "auto" (numba on CPU, parallel on CUDA), "numba", "parallel", "loop"."""
    check_finite: bool = False
    """Raise on NaN/inf inputs (costs a device sync per call)."""
    init: InitConfig = field(default_factory=InitConfig)
    """Oscillator init; the default is the CPG band from the env's control period."""

    def __post_init__(self):
        if isinstance(self.init, Mapping):
            self.init = InitConfig(**self.init)
        if self.variant not in VARIANTS:
            raise ValueError(f"variant {self.variant!r} is not one of {VARIANTS}")
        if self.norm not in NORMS:
            raise ValueError(f"norm {self.norm!r} is not one of {NORMS}")
        for name in ("d_model", "n_layers", "state_dim"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")

    def fit_to_task(self, control_period: float, memory_horizon: int | None) -> LinOSSConfig:
        """The τ_max rule (``PolicyConfig.fit_to_task`` calls it): on a task whose memory horizon is H steps, the
        CPG band's slowest decay time becomes τ_max = max(``init.tau_max_s``, ``init.horizon_tau_factor`` · H ·
        ``control_period``), so the band reaches the gap the task asks it to bridge; otherwise ``self``."""
        init = self.init
        if memory_horizon is None or not init.horizon_tau_factor or init.kind not in ("cpg", "data"):
            return self
        tau = init.horizon_tau_factor * memory_horizon * control_period
        if tau <= init.tau_max_s:
            return self
        log.info("init: tau_max_s %.3g s -> %.3g s, %.3g x the task's %d-step memory horizon", init.tau_max_s, tau,
                 init.horizon_tau_factor, memory_horizon)  # fmt: skip
        return dataclasses.replace(self, init=dataclasses.replace(init, tau_max_s=round(tau, 6)))

    def fit_to_data(self, observations: np.ndarray, actions: np.ndarray, ep_from: np.ndarray, ep_to: np.ndarray,
                    control_period: float) -> LinOSSConfig:  # fmt: skip
        """The data init's frequencies from the training demonstrations (``PolicyConfig.fit_to_data`` calls it).

        With ``init.kind == "data"`` and no ``init.peaks_hz`` yet: a new config whose ``init.peaks_hz`` are the
        peak frequencies (Hz, strongest first, 6 decimals) of the actions (N, A) and observations (N, O) together
        (:func:`cadence.spectral.demonstration_peaks`, ``init.welch_segment_s``, ``init.n_peaks``); episode e is
        frames [ep_from[e], ep_to[e]), ``control_period`` seconds apart. Otherwise ``self``.
        """
        init = self.init
        if init.kind != "data" or init.peaks_hz is not None:
            return self
        peaks = demonstration_peaks(observations, actions, ep_from, ep_to, control_period, init.welch_segment_s,
                                    init.n_peaks)  # fmt: skip
        log.info("init=data: the demonstrations' peak frequencies are %s Hz",
                 ", ".join(f"{f:.3f}" for f in peaks) or "none")  # fmt: skip
        return dataclasses.replace(self, init=dataclasses.replace(init, peaks_hz=[round(float(f), 6) for f in peaks]))


class LinOSSBackbone(nn.Module):
    """A stack of :class:`LinOSSBlock` implementing the backbone protocol (:mod:`.base`)."""

    def __init__(self, cfg: LinOSSConfig, control_period: float | None = None):
        super().__init__()
        self.cfg, self.d_model, self.control_period = cfg, cfg.d_model, control_period
        self.blocks = nn.ModuleList(
            LinOSSBlock(cfg.state_dim, cfg.d_model, cfg.variant, cfg.norm, cfg.dropout,
                        enforce_stability=cfg.enforce_stability, init=cfg.init,
                        control_period=control_period, scan=cfg.scan)  # fmt: skip
            for _ in range(cfg.n_layers)
        )

    def layers(self) -> list[LinOSSLayer]:
        """The SSM layers, first to last (for spectrum analysis)."""
        return [b.layer for b in self.blocks]

    def initial_state(self, batch_size: int, device=None, dtype=None) -> State:
        return tuple(b.layer.initial_state(batch_size, device, dtype) for b in self.blocks)

    def forward(self, x: Tensor, state: State | None = None, resets: Tensor | None = None) -> tuple[Tensor, State]:
        """x (B, L, D), state per block (B, 2, 2P), resets (B, L) -> (y (B, L, D), state)."""
        check_input("x", x, self.d_model, seq=True, check_finite=self.cfg.check_finite)
        if state is None:
            state = self.initial_state(x.shape[0], x.device, x.dtype)
        check_state("state", state, self.initial_state(x.shape[0], "meta", x.dtype))
        if resets is not None and resets.shape != x.shape[:2]:
            raise ValueError(f"resets has shape {tuple(resets.shape)}, expected {tuple(x.shape[:2])} (B, L)")
        new_state = []
        for block, s in zip(self.blocks, state):
            x, s = block(x, s, resets)
            new_state.append(s)
        return x, tuple(new_state)

    def step(self, x: Tensor, state: State) -> tuple[Tensor, State]:
        """x (B, D), state -> (y (B, D), state)."""
        check_input("x", x, self.d_model, seq=False, check_finite=self.cfg.check_finite)
        want = (x.shape[0], 2, 2 * self.cfg.state_dim)
        if len(state) != len(self.blocks) or any(s.shape != want for s in state):  # cheap: no allocation per step
            check_state("state", state, self.initial_state(x.shape[0], "meta", x.dtype))
        new_state = []
        for block, s in zip(self.blocks, state):
            x, s = block.step(x, s)
            new_state.append(s)
        return x, tuple(new_state)


# --------------------------------------------------------------------------------------------
# The papers' full model ([LinOSS] App. A, Algorithm 1), for parity with the official code
# --------------------------------------------------------------------------------------------
class LinOSSModel(nn.Module):
    """Linear encoder → blocks → head, as the official ``LinOSS`` class of both repositories. x (B, L, N).

    classification: softmax(W mean_t h_t) (B, out). Regression: tanh(W h_t) at t = output_step−1 ::
    output_step (B, L // output_step, out); ``tanh_output=False`` drops the tanh (D-LinOSS option).
    """

    def __init__(self, input_dim: int, output_dim: int, state_dim: int, hidden_dim: int, num_blocks: int,
                 variant: str = "im", norm: str = "batch_ema", classification: bool = True,
                 output_step: int = 1, tanh_output: bool = True, dropout: float = 0.0):  # fmt: skip
        super().__init__()
        self.encoder = nn.Linear(input_dim, hidden_dim)
        self.blocks = nn.ModuleList(
            LinOSSBlock(state_dim, hidden_dim, variant, norm, dropout) for _ in range(num_blocks)
        )
        self.decoder = nn.Linear(hidden_dim, output_dim)
        self.classification, self.output_step, self.tanh_output = classification, output_step, tanh_output

    def forward(self, x: Tensor) -> Tensor:
        h = self.encoder(x)
        for block in self.blocks:
            h, _ = block(h)
        if self.classification:
            return torch.softmax(self.decoder(h.mean(1)), dim=-1)
        out = self.decoder(h[:, self.output_step - 1 :: self.output_step])
        return torch.tanh(out) if self.tanh_output else out


# --------------------------------------------------------------------------------------------
# Official weights -> state_dict
# --------------------------------------------------------------------------------------------
_LAYER_NAMES = {"A_diag_raw": "A_diag", "G_diag_raw": "G_diag", "steps_raw": "steps", "dt_raw": "steps",
                "B_raw": "B", "C_raw": "C", "D": "D"}  # fmt: skip
_MODULE_RENAMES = (("ssm.", "layer."), ("linear_encoder.", "encoder."), ("linear_layer.", "decoder."),
                   ("linear_decoder.", "decoder."))  # fmt: skip


def convert_official(arrays: Mapping[str, np.ndarray], prefix: str = "param.") -> dict[str, Tensor]:
    """Map an official Equinox export (the ``.npz`` layout of ``tests/data/linoss_vectors/``) to a state_dict
    for :class:`LinOSSLayer` (layer files), :class:`LinOSSBlock` (block files) or :class:`LinOSSModel` (model
    files). Tensors keep the file's dtype; BatchNorm statistics are not parameters in the official code and
    are left to the module's own buffers.
    """
    if any(k in arrays for k in ("A_diag_raw", "B_raw")):  # a layer file
        return {ours: torch.from_numpy(np.asarray(arrays[theirs])) for theirs, ours in _LAYER_NAMES.items() if theirs in arrays}
    out = {}
    for key, value in arrays.items():
        if not key.startswith(prefix):
            continue
        name = key[len(prefix) :]
        for theirs, ours in _MODULE_RENAMES:
            name = name.replace(theirs, ours)
        if name.endswith("layer.dt"):  # D-LinOSS names Δt_raw "dt"; the contract calls it "steps"
            name = name[: -len("dt")] + "steps"
        out[name] = torch.from_numpy(np.asarray(value))
    return out
