"""Initializing LinOSS / D-LinOSS oscillators, and reading their spectrum back.

An oscillator's discrete transition M (SPEC.md §2.3, §2.4, §3.1) has eigenvalues r·e^{±iθ}: it turns
by θ radians and shrinks by r per control step. With a control period ``dt_env`` seconds per step,
that is a natural frequency f = θ / (2π dt_env) Hz and a decay time constant τ = −dt_env / ln r.

Inits (``InitConfig.kind``):

* ``"paper"`` — each variant's published default: LinOSS A ~ U[0, 1), Δt_raw ~ U[0, 1) (SPEC §2.1);
  D-LinOSS the ring init (SPEC §3.4).
* ``"uniform"`` — D-LinOSS's rejection-sampled uniform (A, G) init (SPEC §3.4); LinOSS as "paper".
* ``"ring"`` — D-LinOSS only: r² ~ U[r_min², r_max²], θ ~ U[θ_min, θ_max] (SPEC §3.4).
* ``"cpg"`` — a central-pattern-generator band: f log-uniform in [f_min, f_max] Hz and
  τ log-uniform in [τ_min, τ_max] s, mapped through the control period
  (``../shared/notes/anchors.md`` §5.3), with Δ = sigmoid(Δt_raw) drawn as in the paper init:

  - D-LinOSS: G = (1 − r²)/(r² Δ),  A = (1 − 2 r cos θ + r²)/(r² Δ²)   (the ring closed form)
  - LinOSS-IMEX: A = 2 (1 − cos θ)/Δ²   (|λ| = 1: IMEX does not decay)
  - LinOSS-IM: A = tan² θ / Δ²          (decay then follows: r = cos θ; needs θ < π/2)

  A fraction ``broadband_fraction`` of the modes keeps the paper init for non-rhythmic features.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor

log = logging.getLogger(__name__)

INIT_KINDS = ("paper", "uniform", "ring", "cpg")


@dataclass
class InitConfig:
    """How to initialize the oscillators' A, G and Δt."""

    kind: str = "cpg"
    """One of "paper", "uniform", "ring", "cpg" (module docstring)."""
    f_min_hz: float = 0.5
    """CPG band, lower natural frequency in Hz (gaits: ~0.5–5 Hz)."""
    f_max_hz: float = 5.0
    """CPG band, upper natural frequency in Hz."""
    tau_min_s: float = 0.2
    """CPG decay time constants, lower end in seconds (D-LinOSS only)."""
    tau_max_s: float = 5.0
    """CPG decay time constants, upper end in seconds (D-LinOSS only)."""
    broadband_fraction: float = 0.25
    """CPG: fraction of modes left on the paper init."""
    r_min: float = 0.9
    """Ring init: smallest eigenvalue radius."""
    r_max: float = 1.0
    """Ring init: largest eigenvalue radius."""
    theta_min: float = 0.0
    """Ring init: smallest eigenvalue angle (radians per step)."""
    theta_max: float = math.pi
    """Ring init: largest eigenvalue angle (radians per step)."""
    A_max: float = 1.0
    """Uniform init: A ~ U[0, A_max]."""
    G_max: float = 1.0
    """Uniform init: G ~ U[0, G_max]."""
    dt_std: float = 0.5
    """D-LinOSS: Δt_raw ~ N(0, dt_std²)."""

    def __post_init__(self):
        if self.kind not in INIT_KINDS:
            raise ValueError(f"init kind {self.kind!r} is not one of {INIT_KINDS}")
        if not 0 < self.f_min_hz <= self.f_max_hz:
            raise ValueError(f"need 0 < f_min_hz <= f_max_hz, got {self.f_min_hz}, {self.f_max_hz}")
        if not 0 < self.tau_min_s <= self.tau_max_s:
            raise ValueError(f"need 0 < tau_min_s <= tau_max_s, got {self.tau_min_s}, {self.tau_max_s}")
        if not 0.0 <= self.broadband_fraction <= 1.0:
            raise ValueError(f"broadband_fraction must be in [0, 1], got {self.broadband_fraction}")


def _uniform(n: int, lo: float, hi: float, g: torch.Generator | None) -> Tensor:
    return torch.rand(n, generator=g, dtype=torch.float64) * (hi - lo) + lo


def _log_uniform(n: int, lo: float, hi: float, g: torch.Generator | None) -> Tensor:
    return torch.exp(_uniform(n, math.log(lo), math.log(hi), g))


def ring_to_AG(r: Tensor, theta: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
    """D-LinOSS (A, G) whose eigenvalues are r·e^{±iθ} at step Δ = dt (SPEC §3.4 closed form)."""
    G = (1 - r**2) / (r**2 * dt)
    A = (1 - 2 * r * torch.cos(theta) + r**2) / (r**2 * dt**2)
    return A, G


def _paper_draw(variant: str, P: int, cfg: InitConfig, g) -> tuple[Tensor, Tensor, Tensor]:
    """Raw (A_diag, G_diag, steps) of the variant's paper default, float64."""
    if variant != "damped":
        return _uniform(P, 0.0, 1.0, g), torch.zeros(P, dtype=torch.float64), _uniform(P, 0.0, 1.0, g)
    steps = torch.randn(P, generator=g, dtype=torch.float64) * cfg.dt_std
    r = torch.sqrt(_uniform(P, cfg.r_min**2, cfg.r_max**2, g))
    theta = _uniform(P, cfg.theta_min, cfg.theta_max, g)
    A, G = ring_to_AG(r, theta, torch.sigmoid(steps))
    return A, G, steps


def _uniform_damped(P: int, cfg: InitConfig, g) -> tuple[Tensor, Tensor, Tensor]:
    """D-LinOSS 'uniform': rejection-sample (A, G, Δt_raw) inside the complex-eigenvalue region."""
    A, G, steps = [], [], []
    while sum(len(a) for a in A) < P:
        a = _uniform(512, 0.0, cfg.A_max, g)
        gg = _uniform(512, 0.0, cfg.G_max, g)
        s = torch.randn(512, generator=g, dtype=torch.float64) * cfg.dt_std
        ok = (gg - torch.sigmoid(s) * a) ** 2 < 4 * a
        A.append(a[ok])
        G.append(gg[ok])
        steps.append(s[ok])
    return torch.cat(A)[:P], torch.cat(G)[:P], torch.cat(steps)[:P]


def cpg_targets(P: int, cfg: InitConfig, control_period: float, variant: str, g=None) -> tuple[Tensor, Tensor]:
    """Requested per-step eigenvalue angles θ (P,) and radii r (P,) of a CPG band."""
    nyquist = 0.5 / control_period
    f_max = cfg.f_max_hz
    # LinOSS-IM turns by atan(Δ√A) < π/2 per step: it cannot represent f >= rate/4.
    limit = 0.99 * nyquist / 2 if variant == "im" else 0.99 * nyquist
    if f_max > limit:
        log.warning("CPG band %.3g-%.3g Hz exceeds what %s can represent at %.4g s/step; capped at %.3g Hz",
                    cfg.f_min_hz, f_max, variant, control_period, limit)  # fmt: skip
        f_max = limit
    f_min = min(cfg.f_min_hz, f_max)
    theta = 2 * math.pi * control_period * _log_uniform(P, f_min, f_max, g)
    tau = _log_uniform(P, cfg.tau_min_s, cfg.tau_max_s, g)
    r = torch.exp(-control_period / tau)
    return theta, r


@torch.no_grad()
def init_oscillators_(layer, cfg: InitConfig, control_period: float | None = None, g=None) -> None:
    """Set ``layer``'s raw ``A_diag``, ``G_diag`` (damped) and ``steps`` in place per ``cfg``."""
    P, variant = layer.state_dim, layer.variant
    if cfg.kind == "ring" and variant != "damped":
        raise ValueError("init 'ring' places eigenvalue radii, which only D-LinOSS (variant='damped') has")
    if cfg.kind == "uniform" and variant == "damped":
        A, G, steps = _uniform_damped(P, cfg, g)
    else:
        A, G, steps = _paper_draw(variant, P, cfg, g)
    if cfg.kind == "cpg":
        if control_period is None or control_period <= 0:
            raise ValueError("init 'cpg' needs the control period (seconds per env step, env.unwrapped.dt)")
        n_broad = round(cfg.broadband_fraction * P)
        theta, r = cpg_targets(P - n_broad, cfg, control_period, variant, g)
        dt = torch.sigmoid(steps[n_broad:])
        if variant == "damped":
            A[n_broad:], G[n_broad:] = ring_to_AG(r, theta, dt)
        elif variant == "imex":
            A[n_broad:] = 2 * (1 - torch.cos(theta)) / dt**2
        else:
            A[n_broad:] = torch.tan(theta) ** 2 / dt**2
    layer.A_diag.copy_(A)
    layer.steps.copy_(steps)
    if variant == "damped":
        layer.G_diag.copy_(G)


@torch.no_grad()
def eigenvalues(layer) -> tuple[Tensor, Tensor]:
    """Per-oscillator (angle θ (P,), radius |λ| (P,)) of the dominant eigenvalue, float64."""
    t = layer.transition(dtype=torch.float64)
    tr, det = t.m11 + t.m22, t.m11 * t.m22 - t.m12 * t.m21
    disc = tr**2 - 4 * det
    root = torch.sqrt(disc.abs())
    complex_pair = disc < 0
    radius = torch.where(complex_pair, torch.sqrt(det.clamp_min(0)), torch.maximum((tr + root).abs(), (tr - root).abs()) / 2)
    angle = torch.where(complex_pair, torch.atan2(root, tr), torch.where(tr >= 0, 0.0, math.pi).to(tr))
    return angle, radius


def layer_spectrum(layer, control_period: float) -> dict[str, Tensor]:
    """Frequency (Hz), |λ| and decay time constant (s) of each oscillator of ``layer``, all (P,)."""
    angle, radius = eigenvalues(layer)
    tau = torch.where(radius < 1, -control_period / torch.log(radius.clamp_min(1e-300)), torch.inf)
    return {"frequency_hz": angle / (2 * math.pi * control_period), "radius": radius, "tau_s": tau}
