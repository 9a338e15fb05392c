"""The demonstrations' spectrum: Welch peaks of synthetic rhythms, and Swimmer's peak checked against its gait
measured from joint-angle zero crossings."""

import numpy as np
import pytest

from cadence.datasets import load_demonstrations
from cadence.envs import make_env
from cadence.spectral import (
    demonstration_peaks,
    power_spectrum,
    spectral_peaks,
    split_episodes,
    zero_crossing_frequency,
)


def test_spectral_peaks_find_synthetic_rhythms():
    rng, dt = np.random.default_rng(0), 0.02
    episodes = []
    for T in (1500, 2200, 900):  # 900 frames is shorter than the 20 s (1000-frame) segment: skipped
        t = np.arange(T) * dt
        phase = rng.uniform(0, 2 * np.pi, 2)
        rhythm = np.sin(2 * np.pi * 0.7 * t + phase[0]) + 0.4 * np.sin(2 * np.pi * 2.3 * t + phase[1])
        episodes.append(np.stack([rhythm + 0.3 * rng.normal(size=T), 50 * rhythm, rng.normal(size=T), np.zeros(T)], 1))
    freqs, psd = power_spectrum(episodes, dt, segment_s=20.0)
    assert psd.shape == (4, len(freqs)) and freqs[-1] == pytest.approx(0.5 / dt) and freqs[1] == pytest.approx(0.05)
    peaks = spectral_peaks(freqs, psd, n_peaks=3)
    assert len(peaks) == 2  # the white-noise channel adds no peak, the silent one is dropped
    np.testing.assert_allclose(peaks, [0.7, 2.3], rtol=0.02)
    # the measurement that does not use a spectrum agrees
    assert zero_crossing_frequency(np.sin(2 * np.pi * 0.7 * np.arange(3000) * dt), dt) == pytest.approx(0.7, rel=1e-3)


def test_demonstration_peaks_take_actions_and_observations_together():
    dt, T = 0.02, 2000
    t = np.arange(2 * T) * dt
    observations = np.stack([np.sin(2 * np.pi * 0.7 * t), np.zeros(2 * T)], 1)  # (N, O)
    actions = np.sin(2 * np.pi * 2.3 * t)[:, None]  # (N, A)
    peaks = demonstration_peaks(observations, actions, [0, T], [T, 2 * T], dt, segment_s=20.0, n_peaks=3)
    np.testing.assert_allclose(np.sort(peaks), [0.7, 2.3], rtol=0.02)
    assert len(demonstration_peaks(observations, actions, [0, T], [T, 2 * T], dt, n_peaks=1)) == 1


def test_swimmer_peak_matches_the_gait_from_joint_angle_zero_crossings(swimmer_dataset):
    env = make_env("swimmer")
    dt = env.unwrapped.dt
    demos = load_demonstrations(swimmer_dataset, env).data
    obs, actions = demos.observations.numpy(), demos.actions.numpy()
    episodes = split_episodes(obs, demos.ep_from, demos.ep_to)
    # Swimmer-v5 observation: qpos[2:] = (body angle, joint 1, joint 2), then the 5 velocities
    gait = np.mean([zero_crossing_frequency(e[:, j], dt) for e in episodes for j in (1, 2)])
    assert gait == pytest.approx(0.6, rel=0.05)  # the expert's command, measured in the joints
    peaks = demonstration_peaks(obs, actions, demos.ep_from, demos.ep_to, dt, segment_s=20.0, n_peaks=3)
    assert abs(peaks[0] - gait) / gait < 0.10
    freqs, psd = power_spectrum(episodes, dt)  # the observations alone, without the expert's command
    assert abs(spectral_peaks(freqs, psd)[0] - gait) / gait < 0.10
