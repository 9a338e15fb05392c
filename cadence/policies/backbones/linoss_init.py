"""Initializing LinOSS / D-LinOSS oscillators, and reading their spectrum back.

An oscillator's discrete transition M (LinOSS-IM / -IMEX: [LinOSS] eqs. 3–6; D-LinOSS: [D-LinOSS] §2.2; the
references are listed in :mod:`cadence.policies.backbones.linoss`) has eigenvalues r·e^{±iθ}: it turns
by θ radians and shrinks by r per control step. With a control period ``dt_env`` seconds per step,
that is a natural frequency f = θ / (2π dt_env) Hz and a decay time constant τ = −dt_env / ln r.

Inits (``InitConfig.kind``):

* ``"paper"`` — each variant's published default: LinOSS A ~ U[0, 1), Δt_raw ~ U[0, 1) (tk-rusch/linoss
  ``LinOSSLayer.__init__``); D-LinOSS the ring init with the defaults of damped-linoss
  ``scripts/create_experiment.py`` (r ∈ [0.9, 1], θ ∈ [0, π], dt_std 0.5).
* ``"uniform"`` — D-LinOSS's rejection-sampled uniform (A, G) init (``DampedIMEX1Layer._uniform_init_AGdt``);
  LinOSS as "paper".
* ``"ring"`` — D-LinOSS only: r² ~ U[r_min², r_max²], θ ~ U[θ_min, θ_max]
  (``DampedIMEX1Layer._ring_init_AGdt``).
* ``"cpg"`` — a central-pattern-generator band: f log-uniform in [f_min, f_max] Hz and
  τ log-uniform in [τ_min, τ_max] s, mapped through the control period
  (each variant's eigenvalues solved for A and G: [LinOSS] Prop. 3.1 and App. E.1, [D-LinOSS] Prop. 3.1),
  with Δ = sigmoid(Δt_raw) drawn as in the paper init:

  - D-LinOSS: G = (1 − r²)/(r² Δ),  A = (1 − 2 r cos θ + r²)/(r² Δ²)   (the ring closed form)
  - LinOSS-IMEX: A = 2 (1 − cos θ)/Δ²   (|λ| = 1: IMEX does not decay)
  - LinOSS-IM: A = tan² θ / Δ²          (decay then follows: r = cos θ; needs θ < π/2)

  A fraction ``broadband_fraction`` of the modes keeps the paper init for non-rhythmic features.
  The band modes' internal step Δ is chosen so that A = 1 (:func:`unit_stiffness_step`): with the
  paper's Δ ≈ 0.5, A ∝ θ²/Δ² is tiny at high control rates (~0.007 for 0.5 Hz at 125 Hz). With
  ``unit_gain`` (default) every mode's row of B is multiplied by min(A, 1), so the static gain B/A of
  x'' = −A x − G x' + B u stays at most B's scale (the broadband modes' A ~ U[0, 1) has a tail near 0).
* ``"data"`` — the demonstrations' own rhythms: a fraction ``peak_fraction`` of the modes is placed
  at the peak frequencies ``peaks_hz`` of the training data's Welch power spectrum (round-robin over
  the peaks, strongest first, each f = f_peak·(1 + peak_spread·U[−1, 1])), with decay times and the
  (A, G) mapping of the CPG init; the other modes follow the CPG init (band and broadband) as above.
  ``peaks_hz`` is estimated before training by ``PolicyConfig.fit_to_data``, which calls
  :meth:`.linoss.LinOSSConfig.fit_to_data` (cadence-train does it from ``dataset=``), and saved in the
  checkpoint's config, so loading needs no dataset.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass

import torch
from torch import Tensor

log = logging.getLogger(__name__)

INIT_KINDS = ("paper", "uniform", "ring", "cpg", "data")


@dataclass
class InitConfig:
    """How to initialize the oscillators' A, G and Δt."""

    kind: str = "cpg"
    """One of "paper", "uniform", "ring", "cpg", "data" (module docstring)."""
    f_min_hz: float = 0.5
    """CPG band, lower natural frequency in Hz (gaits: ~0.5–5 Hz)."""
    f_max_hz: float = 5.0
    """CPG band, upper natural frequency in Hz."""
    tau_min_s: float = 0.2
    """CPG decay time constants, lower end in seconds (D-LinOSS only)."""
    tau_max_s: float = 5.0
    """CPG decay time constants, upper end in seconds (D-LinOSS only); on a task with a memory horizon at least
    ``horizon_tau_factor`` × that horizon (:meth:`.linoss.LinOSSConfig.fit_to_task`)."""
    horizon_tau_factor: float = 3.0
    """The τ_max rule: on a task that declares a memory horizon of H steps (a gap of H · dt_env seconds),
    τ_max ≥ this × the gap. A mode keeps more than half of what it saw across the gap when its half-life
    τ·ln 2 exceeds it, i.e. τ > 1.44 × the gap; with τ log-uniform up to 3 × the gap, the band's slowest
    modes (τ from 1.44 to 3 × the gap, ~13 % of the band at a 20 s gap) do. 0 disables the rule."""
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
    unit_gain: bool = True
    """CPG / data: scale every mode's row of B by min(A, 1), so that its response to a constant input,
    x* = B u / A, is at most B's scale whatever the control rate. Without it that gain grows as
    1/A: with the paper's Δ at 125 Hz a block's output was ~100× its input and BC failed; with the band
    modes at A = 1 (:func:`unit_stiffness_step`) it bounds the broadband modes (docs/linoss.md,
    "Parameter scale and input gain")."""
    peak_fraction: float = 0.5
    """Data init: fraction of the modes placed at the peak frequencies ``peaks_hz``."""
    peak_spread: float = 0.05
    """Data init: relative spread of the modes around their peak, f = f_peak·(1 + peak_spread·U[−1, 1])."""
    n_peaks: int = 3
    """Data init: at most this many spectral peaks are kept, strongest first."""
    welch_segment_s: float = 20.0
    """Data init: Welch segment length in seconds (frequency resolution 1/welch_segment_s Hz)."""
    peaks_hz: list[float] | None = None
    """Data init: peak frequencies in Hz, strongest first. None = estimate them from the training
    dataset (cadence-train does, before training); set them to choose the frequencies by hand."""

    def __post_init__(self):
        if self.kind not in INIT_KINDS:
            raise ValueError(f"init kind {self.kind!r} is not one of {INIT_KINDS}")
        if not 0 < self.f_min_hz <= self.f_max_hz:
            raise ValueError(f"need 0 < f_min_hz <= f_max_hz, got {self.f_min_hz}, {self.f_max_hz}")
        if self.horizon_tau_factor < 0:
            raise ValueError(f"horizon_tau_factor must be >= 0, got {self.horizon_tau_factor}")
        if not 0 < self.tau_min_s <= self.tau_max_s:
            raise ValueError(f"need 0 < tau_min_s <= tau_max_s, got {self.tau_min_s}, {self.tau_max_s}")
        if not 0.0 <= self.broadband_fraction <= 1.0:
            raise ValueError(f"broadband_fraction must be in [0, 1], got {self.broadband_fraction}")
        if not 0.0 <= self.peak_fraction <= 1.0:
            raise ValueError(f"peak_fraction must be in [0, 1], got {self.peak_fraction}")
        if not 0.0 <= self.peak_spread < 1.0:
            raise ValueError(f"peak_spread must be in [0, 1), got {self.peak_spread}")
        if self.n_peaks < 1 or self.welch_segment_s <= 0:
            raise ValueError(f"need n_peaks >= 1 and welch_segment_s > 0, got {self.n_peaks}, {self.welch_segment_s}")
        if self.peaks_hz is not None:
            self.peaks_hz = [float(f) for f in self.peaks_hz]
            if any(f <= 0 for f in self.peaks_hz):
                raise ValueError(f"peaks_hz must be positive frequencies in Hz, got {self.peaks_hz}")


# Draws are made on the CPU whatever the default device, then copied into the parameters: the policy is
# also built on the "meta" device to count its parameters (size_to_budget), where the rejection sampling
# of the uniform init (boolean indexing) cannot run.
def _uniform(n: int, lo: float, hi: float, g: torch.Generator | None) -> Tensor:
    return torch.rand(n, generator=g, dtype=torch.float64, device="cpu") * (hi - lo) + lo


def _normal(n: int, std: float, g: torch.Generator | None) -> Tensor:
    return torch.randn(n, generator=g, dtype=torch.float64, device="cpu") * std


def _log_uniform(n: int, lo: float, hi: float, g: torch.Generator | None) -> Tensor:
    return torch.exp(_uniform(n, math.log(lo), math.log(hi), g))


def ring_to_AG(r: Tensor, theta: Tensor, dt: Tensor) -> tuple[Tensor, Tensor]:
    """D-LinOSS (A, G) whose eigenvalues are r·e^{±iθ} at step Δ = dt: the closed form of what the official
    ``DampedIMEX1Layer._ring_init_AGdt`` solves for with sympy."""
    G = (1 - r**2) / (r**2 * dt)
    A = (1 - 2 * r * torch.cos(theta) + r**2) / (r**2 * dt**2)
    return A, G


def _paper_draw(variant: str, P: int, cfg: InitConfig, g) -> tuple[Tensor, Tensor, Tensor]:
    """Raw (A_diag, G_diag, steps) of the variant's paper default, float64."""
    if variant != "damped":
        return _uniform(P, 0.0, 1.0, g), torch.zeros(P, dtype=torch.float64), _uniform(P, 0.0, 1.0, g)
    steps = _normal(P, cfg.dt_std, g)
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
        s = _normal(512, cfg.dt_std, g)
        ok = (gg - torch.sigmoid(s) * a) ** 2 < 4 * a
        A.append(a[ok])
        G.append(gg[ok])
        steps.append(s[ok])
    return torch.cat(A)[:P], torch.cat(G)[:P], torch.cat(steps)[:P]


def max_frequency(control_period: float, variant: str) -> float:
    """Highest natural frequency (Hz) ``variant`` can place at ``control_period`` s/step (1% margin)."""
    nyquist = 0.5 / control_period
    # LinOSS-IM turns by atan(Δ√A) < π/2 per step: it cannot represent f >= rate/4.
    return 0.99 * nyquist / 2 if variant == "im" else 0.99 * nyquist


def _angle_radius(f_hz: Tensor, cfg: InitConfig, control_period: float, g) -> tuple[Tensor, Tensor]:
    """Per-step angles θ = 2π f dt_env and radii r = exp(−dt_env/τ), τ log-uniform in [τ_min, τ_max]."""
    tau = _log_uniform(len(f_hz), cfg.tau_min_s, cfg.tau_max_s, g)
    return 2 * math.pi * control_period * f_hz, torch.exp(-control_period / tau)


def cpg_targets(P: int, cfg: InitConfig, control_period: float, variant: str, g=None) -> tuple[Tensor, Tensor]:
    """Requested per-step eigenvalue angles θ (P,) and radii r (P,) of a CPG band."""
    f_max, limit = cfg.f_max_hz, max_frequency(control_period, variant)
    if f_max > limit:
        log.warning("CPG band %.3g-%.3g Hz exceeds what %s can represent at %.4g s/step; capped at %.3g Hz",
                    cfg.f_min_hz, f_max, variant, control_period, limit)  # fmt: skip
        f_max = limit
    f_min = min(cfg.f_min_hz, f_max)
    return _angle_radius(_log_uniform(P, f_min, f_max, g), cfg, control_period, g)


def peak_targets(P: int, cfg: InitConfig, control_period: float, variant: str, g=None) -> tuple[Tensor, Tensor]:
    """Angles θ (P,) and radii r (P,) of ``P`` modes at ``cfg.peaks_hz`` (round-robin, strongest first),
    each at f_peak·(1 + peak_spread·U[−1, 1]), decay times as in the CPG band."""
    peaks = torch.tensor(cfg.peaks_hz, dtype=torch.float64, device="cpu")
    limit = max_frequency(control_period, variant)
    if (peaks > limit).any():
        log.warning("data peaks %s Hz exceed what %s can represent at %.4g s/step; capped at %.3g Hz",
                    cfg.peaks_hz, variant, control_period, limit)  # fmt: skip
    f = peaks[torch.arange(P, device="cpu") % len(peaks)] * (1 + cfg.peak_spread * _uniform(P, -1.0, 1.0, g))
    return _angle_radius(f.clamp(max=limit), cfg, control_period, g)


def band_targets(P: int, cfg: InitConfig, control_period: float | None, variant: str, g=None
                 ) -> tuple[int, Tensor, Tensor]:  # fmt: skip
    """The "cpg" / "data" layout: modes [0, n_broad) keep the paper init, the rest get the returned
    angles θ and radii r (each (P − n_broad,)): the CPG band, then (data) the modes at the peaks."""
    if control_period is None or control_period <= 0:
        raise ValueError(f"init {cfg.kind!r} needs the control period (seconds per env step, env.unwrapped.dt)")
    n_peak = 0
    if cfg.kind == "data":
        if cfg.peaks_hz is None:
            raise ValueError("init 'data' needs the demonstrations' peak frequencies: train with cadence-train "
                             "algo=bc dataset=DIR (it estimates them), call PolicyConfig.fit_to_data(demos, dt), "
                             "or set policy.backbone_kwargs.init.peaks_hz=[F1,F2] by hand")  # fmt: skip
        if not cfg.peaks_hz:
            log.warning("init 'data': the demonstrations show no spectral peak; every mode follows the CPG init")
        n_peak = round(cfg.peak_fraction * P) if cfg.peaks_hz else 0
    n_broad = round(cfg.broadband_fraction * (P - n_peak))
    theta, r = cpg_targets(P - n_peak - n_broad, cfg, control_period, variant, g)
    if n_peak:
        theta_p, r_p = peak_targets(n_peak, cfg, control_period, variant, g)
        theta, r = torch.cat([theta, theta_p]), torch.cat([r, r_p])
    return n_broad, theta, r


DT_RANGE = (1e-4, 0.9)
"""Internal steps Δ the band modes may get (sigmoid keeps Δ in (0, 1))."""


def unit_stiffness_step(variant: str, theta: Tensor, r: Tensor) -> Tensor:
    """The internal step Δ (P,) at which a mode turning by θ and shrinking by r per step has stiffness A = 1.

    The paper inits draw Δ = sigmoid(N(0, 0.5²)) ≈ 0.5 whatever the control rate; then A ∝ θ²/Δ², and at
    high rates the band's small angles (θ = 2π f dt_env ≈ 0.025 for 0.5 Hz at 125 Hz) put A near 0, where
    Adam, whose steps are ≈ lr whatever a parameter's size, moves A by its own magnitude and BC fails
    (docs/linoss.md, "Parameter scale and input gain"). Choosing Δ instead keeps A = 1 and puts the rate
    into Δ, whose raw parameter is ≈ log Δ for small Δ, so updates are relative. At A = 1 the transitions give:
    D-LinOSS Δ = |1 − r e^{iθ}| / r (the ring closed form), IMEX Δ = 2 sin(θ/2), IM Δ = tan θ; Δ is
    clipped to ``DT_RANGE`` (where clipped, A follows from the formulas as usual).
    """
    if variant == "damped":
        dt = torch.sqrt(1 - 2 * r * torch.cos(theta) + r**2) / r
    elif variant == "imex":
        dt = 2 * torch.sin(theta / 2)
    else:
        dt = torch.tan(theta)
    return dt.clamp(*DT_RANGE)


@torch.no_grad()
def init_oscillators_(layer, cfg: InitConfig, control_period: float | None = None, g=None) -> None:
    """Set ``layer``'s raw ``A_diag``, ``G_diag`` (damped) and ``steps`` in place per ``cfg`` (and, for
    ``cpg`` / ``data`` with ``cfg.unit_gain``, scale the rows of ``B``)."""
    P, variant = layer.state_dim, layer.variant
    if cfg.kind == "ring" and variant != "damped":
        raise ValueError("init 'ring' places eigenvalue radii, which only D-LinOSS (variant='damped') has")
    if cfg.kind == "uniform" and variant == "damped":
        A, G, steps = _uniform_damped(P, cfg, g)
    else:
        A, G, steps = _paper_draw(variant, P, cfg, g)
    if cfg.kind in ("cpg", "data"):
        n_broad, theta, r = band_targets(P, cfg, control_period, variant, g)
        dt = unit_stiffness_step(variant, theta, r)
        steps[n_broad:] = torch.logit(dt)
        if variant == "damped":
            A[n_broad:], G[n_broad:] = ring_to_AG(r, theta, dt)
        elif variant == "imex":
            A[n_broad:] = 2 * (1 - torch.cos(theta)) / dt**2
        else:
            A[n_broad:] = torch.tan(theta) ** 2 / dt**2
        if cfg.unit_gain:
            layer.B *= A.clamp(max=1.0)[:, None, None].to(layer.B.dtype)
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
