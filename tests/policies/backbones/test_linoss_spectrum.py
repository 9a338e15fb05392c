"""Spectrum of a LinOSS policy: frequencies through the control period, gains per mode, the table."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from cadence.policies import PolicyConfig, make_policy
from cadence.policies.backbones.linoss_spectrum import spectrum, spectrum_table

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
