"""Spectrum of a LinOSS policy (frequencies through the control period, gains per mode) and of its
demonstrations (Welch peaks, checked against Swimmer's gait measured from joint-angle zero crossings)."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from hydra import compose, initialize_config_dir

from cadence.analysis import (
    demonstration_peaks,
    fill_data_init,
    power_spectrum,
    spectral_peaks,
    spectrum,
    spectrum_table,
    split_episodes,
    zero_crossing_frequency,
)
from cadence.configs import CONFIG_DIR
from cadence.envs import make_env
from cadence.policies import PolicyConfig, make_policy
from cadence.policies.backbones.linoss_init import InitConfig
from cadence.training.demonstrations import load_demonstrations
from cadence.training.run import build_policy

OBS = gym.spaces.Box(-np.inf, np.inf, (4,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def test_spectrum_reads_back_the_cpg_band():
    init = {"kind": "cpg", "f_min_hz": 1.0, "f_max_hz": 3.0, "broadband_fraction": 0.0, "tau_min_s": 0.5, "tau_max_s": 2.0}
    cfg = PolicyConfig(backbone="linoss", d_model=16, backbone_kwargs={"n_layers": 2, "state_dim": 12, "init": init})
    policy = make_policy(cfg, OBS, ACT, control_period=1 / 125)
    spectra = spectrum(policy)
    assert [s.layer for s in spectra] == [0, 1]
    for s in spectra:
        assert s.frequency_hz.shape == (12,) and s.input_gain.shape == (12,) and s.output_gain.shape == (12,)
        assert ((s.frequency_hz >= 1.0 - 1e-6) & (s.frequency_hz <= 3.0 + 1e-6)).all()
        assert ((s.tau_s >= 0.5 - 1e-6) & (s.tau_s <= 2.0 + 1e-6)).all()
        assert (s.radius < 1).all()
        assert "layer" in s.summary() and "Hz" in s.summary()
    # the same policy read at another control period scales its frequencies
    slower = spectrum(policy, control_period=2 / 125)
    np.testing.assert_allclose(slower[0].frequency_hz, spectra[0].frequency_hz / 2, rtol=1e-9)


def test_spectrum_rejects_models_without_oscillators():
    with pytest.raises(ValueError, match="has no LinOSS layer"):
        spectrum(torch.nn.Linear(2, 2), control_period=0.1)


def test_spectrum_table_reports_every_layer_and_the_shift_from_init():
    init = {"kind": "cpg", "f_min_hz": 1.0, "f_max_hz": 3.0}
    cfg = PolicyConfig(backbone="linoss", d_model=16, backbone_kwargs={"n_layers": 2, "state_dim": 8, "init": init})
    policy = make_policy(cfg, OBS, ACT, control_period=1 / 25)
    before = spectrum(policy)
    with torch.no_grad():
        for layer in policy.backbone.layers():
            layer.steps.add_(0.5)  # a larger Δ turns every mode faster
    table = spectrum_table(spectrum(policy), before).splitlines()
    assert len(table) == 2 + 2 and "median |Δf|/f" in table[0]
    shift = float(table[2].split("%")[0].split()[-1])
    assert shift > 1.0  # the frequencies moved by more than 1%


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


def test_swimmer_peak_matches_the_gait_from_joint_angle_zero_crossings(swimmer_dataset):
    env = make_env("swimmer")
    dt = env.unwrapped.dt
    demos = load_demonstrations(swimmer_dataset, env).data
    obs, actions = demos.observations.numpy(), demos.actions.numpy()
    episodes = split_episodes(obs, demos.ep_from, demos.ep_to)
    # Swimmer-v5 observation: qpos[2:] = (body angle, joint 1, joint 2), then the 5 velocities
    gait = np.mean([zero_crossing_frequency(e[:, j], dt) for e in episodes for j in (1, 2)])
    assert gait == pytest.approx(0.6, rel=0.05)  # the expert's command, measured in the joints
    peaks = demonstration_peaks(obs, actions, demos.ep_from, demos.ep_to, dt, InitConfig())
    assert abs(peaks[0] - gait) / gait < 0.10
    freqs, psd = power_spectrum(episodes, dt)  # the observations alone, without the expert's command
    assert abs(spectral_peaks(freqs, psd)[0] - gait) / gait < 0.10


def test_init_data_is_one_override_and_fills_the_peaks(swimmer_dataset):
    overrides = ["env=swimmer", f"dataset={swimmer_dataset}", "policy.d_model=16", "policy.backbone_kwargs.state_dim=20"]
    with initialize_config_dir(str(CONFIG_DIR), version_base=None):
        cfg = compose("train", overrides=overrides + ["policy.backbone_kwargs.init.kind=data"])
        cpg = compose("train", overrides=overrides)
    env = make_env(cfg.env)
    demos = load_demonstrations(cfg.dataset, env)
    assert fill_data_init(cpg.policy, demos.data, env.unwrapped.dt) is None  # other inits are left alone
    assert cpg.policy.backbone_kwargs.init.peaks_hz is None
    peaks = fill_data_init(cfg.policy, demos.data, env.unwrapped.dt)
    assert list(cfg.policy.backbone_kwargs.init.peaks_hz) == peaks and peaks[0] == pytest.approx(0.6, rel=0.1)
    policy = build_policy(cfg, env, demos.stats)
    for s in spectrum(policy):
        at_peaks = np.zeros(20, bool)
        for p in peaks:
            at_peaks |= np.abs(s.frequency_hz - p) <= 0.05 * p + 1e-9
        assert at_peaks[-10:].all()  # peak_fraction 0.5 of 20 modes; CPG/broadband modes may land nearby too
