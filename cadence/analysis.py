"""The oscillators' spectrum as a first-class object: which rhythms a LinOSS policy uses, and which
rhythms its demonstrations have.

Model side: ``spectrum(policy)`` returns, for every LinOSS layer and mode, the natural frequency in Hz
(through the task's control period), the decay time constant in seconds and |λ| (SPEC §2.3, §2.4,
§3.2 via :func:`~cadence.policies.backbones.linoss_init.layer_spectrum`), and each mode's input gain
‖B_k‖ (norm of its row of B, SPEC §1: B (P, H) complex) and output gain ‖C_k‖ (norm of its column of C,
C (H, P) complex), so that modes that matter can be told from modes that are switched off.

Data side: ``power_spectrum`` is Welch's power spectral density of every channel, averaged over
episodes; ``spectral_peaks`` finds the dominant frequencies in it; ``fill_data_init`` writes them into
a LinOSS policy config with ``init.kind: data`` (``linoss_init``'s "data" init) before training.
``zero_crossing_frequency`` measures a rhythm independently of any spectrum, for checks.

Symbols: P modes per layer, N frames, C channels, T frames of one episode, F frequency bins.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import torch
from omegaconf import DictConfig, OmegaConf, open_dict
from scipy.signal import find_peaks, welch
from torch import nn

from .policies.backbones.linoss import LinOSSLayer
from .policies.backbones.linoss_init import InitConfig, layer_spectrum

if TYPE_CHECKING:
    from .training.bc import Demonstrations

log = logging.getLogger(__name__)


# --------------------------------------------------------------------------------------------
# Model: the oscillators' spectrum
# --------------------------------------------------------------------------------------------
@dataclass
class LayerSpectrum:
    """Per-mode arrays (P,) of one LinOSS layer."""

    layer: int
    frequency_hz: np.ndarray
    """Natural frequency θ / (2π dt_env) of the dominant eigenvalue r·e^{iθ}, Hz."""
    tau_s: np.ndarray
    """Decay time constant −dt_env / ln r, seconds (inf for |λ| = 1)."""
    radius: np.ndarray
    """|λ| of the dominant eigenvalue (per-step decay factor)."""
    input_gain: np.ndarray
    """‖B_k‖, the norm of mode k's row of B (how strongly the inputs drive it)."""
    output_gain: np.ndarray
    """‖C_k‖, the norm of mode k's column of C (how strongly it reaches the output)."""

    @property
    def weight(self) -> np.ndarray:
        """(P,) input gain × output gain: how much mode k can carry from the layer's input to its output."""
        return self.input_gain * self.output_gain

    def strongest(self, n: int = 3) -> np.ndarray:
        """Indices of the ``n`` modes of largest :attr:`weight`, strongest first."""
        return np.argsort(-self.weight)[:n]

    def summary(self) -> str:
        f = self.frequency_hz
        return (f"layer {self.layer}: {len(f)} modes, frequency {np.percentile(f, 10):.2f}–{np.percentile(f, 90):.2f} Hz "
                f"(10–90%), median |λ| {np.median(self.radius):.4f}, strongest modes at "
                + ", ".join(f"{f[k]:.2f} Hz" for k in self.strongest()))  # fmt: skip


@torch.no_grad()
def spectrum(model: nn.Module, control_period: float | None = None) -> list[LayerSpectrum]:
    """Spectra of the LinOSS layers inside ``model`` (a policy or a backbone), first to last.

    ``control_period`` (seconds per step) defaults to the policy's own (``model.control_period``).
    """
    dt = control_period or getattr(model, "control_period", None)
    if not dt:
        raise ValueError("the control period is unknown: pass control_period=env.unwrapped.dt")
    layers = [m for m in model.modules() if isinstance(m, LinOSSLayer)]
    if not layers:
        raise ValueError(f"{type(model).__name__} has no LinOSS layer; spectra exist for backbone 'linoss' only")
    out = []
    for i, layer in enumerate(layers):
        s = layer_spectrum(layer, dt)
        out.append(LayerSpectrum(
            layer=i,
            frequency_hz=s["frequency_hz"].numpy(),
            tau_s=s["tau_s"].numpy(),
            radius=s["radius"].numpy(),
            input_gain=layer.B.detach().flatten(1).norm(dim=1).double().numpy(),  # B (P, H, 2): row k
            output_gain=layer.C.detach().transpose(0, 1).flatten(1).norm(dim=1).double().numpy(),  # C (H, P, 2): column k
        ))  # fmt: skip
    return out


def spectrum_table(after: Sequence[LayerSpectrum], before: Sequence[LayerSpectrum] | None = None) -> str:
    """A plain-text table, one row per layer: frequency quantiles, median τ and |λ|, the strongest modes
    and (with ``before``, the same layers at initialization) how far the frequencies moved in training."""
    head = f"{'layer':>5} {'modes':>5} {'f 10%':>7} {'f 50%':>7} {'f 90%':>7} {'τ med':>7} {'|λ| med':>8}  "
    head += ("median |Δf|/f  " if before is not None else "") + "strongest modes (Hz, ‖B‖·‖C‖)"
    rows = [head, "-" * len(head)]
    for i, s in enumerate(after):
        f10, f50, f90 = np.percentile(s.frequency_hz, [10, 50, 90])
        row = (f"{s.layer:>5} {len(s.frequency_hz):>5} {f10:>7.3f} {f50:>7.3f} {f90:>7.3f} "
               f"{np.median(s.tau_s):>6.2f}s {np.median(s.radius):>8.4f}  ")  # fmt: skip
        if before is not None:
            f0 = before[i].frequency_hz
            row += f"{np.median(np.abs(s.frequency_hz - f0) / np.maximum(f0, 1e-12)):>13.1%}  "
        row += ", ".join(f"{s.frequency_hz[k]:.2f} ({s.weight[k]:.2f})" for k in s.strongest())
        rows.append(row)
    return "\n".join(rows)


# --------------------------------------------------------------------------------------------
# Data: the demonstrations' spectrum
# --------------------------------------------------------------------------------------------
def split_episodes(x: np.ndarray, ep_from: Sequence[int], ep_to: Sequence[int]) -> list[np.ndarray]:
    """Frames of all episodes back to back (N, C) -> one array (T_e, C) per episode."""
    return [x[int(a) : int(b)] for a, b in zip(ep_from, ep_to)]


def power_spectrum(episodes: Sequence[np.ndarray], control_period: float, segment_s: float = 20.0
                   ) -> tuple[np.ndarray, np.ndarray]:  # fmt: skip
    """Welch power spectral density of every channel, averaged over episodes.

    Args:
        episodes: one array (T_e, C) per episode; each is detrended (mean removed) per segment and
            cut into Hann-windowed segments of ``segment_s`` seconds with 50% overlap. Episodes shorter
            than one segment are skipped (if all are, the segment shrinks to the longest episode).
        control_period: seconds per frame (the env's dt), so frequencies come out in Hz.
    Returns:
        freqs (F,) in Hz from 0 to the Nyquist frequency 1/(2·control_period), and psd (C, F), the
        average over episodes weighted by their number of segments.
    """
    if not episodes:
        raise ValueError("power_spectrum needs at least one episode")
    n = max(8, round(segment_s / control_period))
    longest = max(len(e) for e in episodes)
    if longest < n:
        log.warning("every episode is shorter than the %.3g s Welch segment; using %d frames (%.3g s)",
                    segment_s, longest, longest * control_period)  # fmt: skip
        n = longest
    total, weight, freqs = 0.0, 0, None
    for e in episodes:
        if len(e) < n:
            continue
        freqs, p = welch(np.asarray(e, dtype=np.float64), fs=1.0 / control_period, nperseg=n, axis=0)  # p (F, C)
        segments = 1 + (len(e) - n) // (n - n // 2)  # welch's default overlap is n // 2
        total, weight = total + segments * p, weight + segments
    return freqs, (total / weight).T


def spectral_peaks(freqs: np.ndarray, psd: np.ndarray, n_peaks: int = 3, min_prominence: float = 0.1) -> np.ndarray:
    """The dominant frequencies (K,) in Hz, strongest first, K ≤ ``n_peaks``.

    Each channel's psd (C, F) is scaled to unit total power (channels without power are dropped), so
    every channel counts equally whatever its units; the peaks are the local maxima of the channels'
    mean whose prominence is at least ``min_prominence`` × the largest one, ranked by prominence. The
    lowest two bins (DC and the Hann window's leak of the removed mean) cannot be peaks. Each peak's
    frequency is refined between bins by a parabola through the log power of its bin and neighbours.
    """
    power = psd.sum(axis=1, keepdims=True)
    keep = power[:, 0] > 1e-12 * power.max()
    if not keep.any():
        return np.zeros(0)
    profile = (psd[keep] / power[keep]).mean(axis=0)  # (F,)
    profile[:2] = profile[2]  # no peak at DC
    idx, props = find_peaks(profile, prominence=0.0)
    if not len(idx):
        return np.zeros(0)
    prominence = props["prominences"]
    order = np.argsort(-prominence)
    order = order[prominence[order] >= min_prominence * prominence[order[0]]][:n_peaks]
    log_p = np.log(np.maximum(profile, 1e-300))
    df = freqs[1] - freqs[0]
    out = []
    for k in idx[order]:
        a, b, c = log_p[k - 1], log_p[k], log_p[k + 1]
        curvature = a - 2 * b + c
        out.append(freqs[k] + (0.5 * (a - c) / curvature * df if curvature < 0 else 0.0))
    return np.asarray(out)


def zero_crossing_frequency(x: np.ndarray, control_period: float, hysteresis: float = 0.25) -> float:
    """Frequency (Hz) of a rhythmic signal x (T,) from its upward crossings of its mean.

    A crossing counts only once the signal has gone below −``hysteresis``·std and then above
    +``hysteresis``·std, so noise around zero is not counted. The frequency is (crossings − 1) over
    the time from the first crossing to the last; NaN with fewer than two crossings.
    """
    x = np.asarray(x, dtype=np.float64)
    x = x - x.mean()
    band = hysteresis * x.std()
    crossings, armed = [], False
    for t in range(1, len(x)):
        if x[t] < -band:
            armed = True
        elif armed and x[t] > band:
            # interpolate the zero crossing inside the last step that went from <= 0 to > 0
            u = t
            while u > 0 and x[u - 1] > 0:
                u -= 1
            crossings.append(u - 1 + (-x[u - 1]) / (x[u] - x[u - 1]) if u > 0 else 0.0)
            armed = False
    if len(crossings) < 2:
        return float("nan")
    return (len(crossings) - 1) / ((crossings[-1] - crossings[0]) * control_period)


def demonstration_peaks(observations: np.ndarray, actions: np.ndarray, ep_from: Sequence[int], ep_to: Sequence[int],
                        control_period: float, init: InitConfig) -> np.ndarray:  # fmt: skip
    """Peak frequencies (K,) in Hz of the demonstrations' actions (N, A) and observations (N, O), all
    channels together (``init.welch_segment_s``, ``init.n_peaks``)."""
    channels = np.concatenate([np.asarray(actions), np.asarray(observations)], axis=1)  # (N, A + O)
    freqs, psd = power_spectrum(split_episodes(channels, ep_from, ep_to), control_period, init.welch_segment_s)
    return spectral_peaks(freqs, psd, init.n_peaks)


def fill_data_init(policy: DictConfig, demos: Demonstrations, control_period: float) -> list[float] | None:
    """``init.kind: data``: estimate the demonstrations' peak frequencies and write them to the policy
    config's ``backbone_kwargs.init.peaks_hz`` (in place) before the policy is built. Does nothing for
    other inits, other backbones, or when ``peaks_hz`` is already set (chosen by hand).

    ``demos``: observations (N, O), actions (N, A) and episode bounds. Returns the peaks written, or None.
    """
    init = policy.get("backbone_kwargs", {}).get("init") if policy.get("backbone") == "linoss" else None
    if init is None or init.get("kind") != "data" or init.get("peaks_hz") is not None:
        return None
    cfg = InitConfig(**OmegaConf.to_container(init, resolve=True))
    peaks = demonstration_peaks(demos.observations.numpy(), demos.actions.numpy(), demos.ep_from.tolist(),
                                demos.ep_to.tolist(), control_period, cfg)  # fmt: skip
    with open_dict(init):
        init.peaks_hz = [round(float(f), 6) for f in peaks]
    log.info("init=data: the demonstrations' peak frequencies are %s Hz", ", ".join(f"{f:.3f}" for f in peaks) or "none")
    return list(init.peaks_hz)
