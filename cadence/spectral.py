"""Which rhythms a recorded signal has: Welch power spectra averaged over episodes, their dominant
frequencies, and a spectrum-free frequency measurement for checks.

``power_spectrum`` is Welch's power spectral density of every channel, averaged over episodes;
``spectral_peaks`` finds the dominant frequencies in it; ``demonstration_peaks`` does both for the
actions and observations of demonstrations (what the LinOSS ``data`` init places its oscillators at);
``zero_crossing_frequency`` measures a rhythm independently of any spectrum.

Plain numpy arrays in and out; nothing here knows about policies or datasets.
Symbols: N frames, C channels, O observation and A action channels, T frames of one episode, F frequency bins.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
from scipy.signal import find_peaks, welch

log = logging.getLogger(__name__)


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


def demonstration_peaks(observations: np.ndarray, actions: np.ndarray, ep_from: Sequence[int], ep_to: Sequence[int],
                        control_period: float, segment_s: float = 20.0, n_peaks: int = 3) -> np.ndarray:  # fmt: skip
    """Peak frequencies (K,) in Hz, strongest first, of demonstrations' actions (N, A) and observations
    (N, O), all channels together: :func:`spectral_peaks` of the :func:`power_spectrum` (Welch segments of
    ``segment_s`` seconds) of episodes e = frames [ep_from[e], ep_to[e]), at most ``n_peaks``."""
    channels = np.concatenate([np.asarray(actions), np.asarray(observations)], axis=1)  # (N, A + O)
    freqs, psd = power_spectrum(split_episodes(channels, ep_from, ep_to), control_period, segment_s)
    return spectral_peaks(freqs, psd, n_peaks)


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
