"""``PolicyConfig.fit_to_data``, the hook through which a backbone prepares its config from the training data:
LinOSS's data init fills in the demonstrations' peak frequencies (one Hydra override on Swimmer), other inits
and backbones come back unchanged, and the original config is never modified."""

import copy
from types import SimpleNamespace

import numpy as np
import pytest
import torch

from cadence.configs import compose, to_dataclass
from cadence.datasets import load_demonstrations
from cadence.envs import make_env
from cadence.policies import PolicyConfig, make_policy
from cadence.policies.backbones.linoss import LinOSSConfig
from cadence.policies.backbones.linoss_spectrum import spectrum
from cadence.spectral import demonstration_peaks

DT = 0.02


def rhythm(f_hz: float = 0.7, episodes: int = 2, T: int = 1500) -> SimpleNamespace:
    """Demonstrations-like frames: a sine at ``f_hz`` in one observation and the action, ``episodes`` × ``T``."""
    t = torch.arange(episodes * T, dtype=torch.float64) * DT
    wave = torch.sin(2 * torch.pi * f_hz * t)[:, None].float()
    bounds = torch.arange(episodes, dtype=torch.int64) * T
    return SimpleNamespace(observations=torch.cat([wave, torch.zeros_like(wave)], 1), actions=0.5 * wave,
                           ep_from=bounds, ep_to=bounds + T)  # fmt: skip


def test_linoss_data_init_gets_the_peaks_in_a_new_config():
    kwargs = {"n_layers": 1, "state_dim": 8, "init": {"kind": "data"}}
    pcfg = PolicyConfig(backbone="linoss", d_model=8, backbone_kwargs=kwargs)
    original, data = copy.deepcopy(pcfg), rhythm()
    fitted = pcfg.fit_to_data(data, DT)
    assert fitted is not pcfg and pcfg == original  # the input is left untouched
    peaks = fitted.backbone_kwargs["init"]["peaks_hz"]
    assert peaks == [round(f, 6) for f in peaks] and peaks[0] == pytest.approx(0.7, rel=0.02)
    assert "d_model" not in fitted.backbone_kwargs and fitted.d_model == 8
    # backbone_kwargs are the fields of the config LinOSSConfig.fit_to_data returns
    arrays = (t.numpy() for t in (data.observations, data.actions, data.ep_from, data.ep_to))
    backbone = LinOSSConfig(d_model=8, **pcfg.backbone_kwargs)
    assert LinOSSConfig(d_model=8, **fitted.backbone_kwargs) == backbone.fit_to_data(*arrays, DT)
    assert backbone.init.peaks_hz is None
    assert fitted.fit_to_data(rhythm(2.0), DT) is fitted  # peaks already set (by hand or by a first call): kept


@pytest.mark.parametrize("pcfg", [
    PolicyConfig(backbone="linoss", d_model=8, backbone_kwargs={"n_layers": 1, "state_dim": 8}),  # CPG init
    PolicyConfig(backbone="linoss", d_model=8, backbone_kwargs={"init": {"kind": "data", "peaks_hz": [1.5]}}),
    PolicyConfig(backbone="gru", d_model=8),  # no hook
], ids=["linoss-cpg", "linoss-peaks-by-hand", "gru"])  # fmt: skip
def test_configs_without_anything_to_fit_come_back_unchanged(pcfg):
    original = copy.deepcopy(pcfg)
    assert pcfg.fit_to_data(rhythm(), DT) is pcfg and pcfg == original


def test_init_data_is_one_override_and_fills_the_peaks(swimmer_dataset):
    overrides = ["env=swimmer", f"dataset={swimmer_dataset}", "policy.d_model=16", "policy.backbone_kwargs.state_dim=20"]
    data_cfg = compose("train", overrides + ["policy.backbone_kwargs.init.kind=data"])
    pcfg = to_dataclass(PolicyConfig, data_cfg.policy, "policy")
    cpg = to_dataclass(PolicyConfig, compose("train", overrides).policy, "policy")
    env = make_env(data_cfg.env)
    dt = env.unwrapped.dt
    demos = load_demonstrations(data_cfg.dataset, env)
    assert cpg.fit_to_data(demos.data, dt) is cpg  # other inits are left alone
    assert cpg.backbone_kwargs["init"]["peaks_hz"] is None
    fitted = pcfg.fit_to_data(demos.data, dt)
    assert pcfg.backbone_kwargs["init"]["peaks_hz"] is None
    peaks = fitted.backbone_kwargs["init"]["peaks_hz"]
    init = fitted.backbone_kwargs["init"]
    d = demos.data
    expected = demonstration_peaks(d.observations.numpy(), d.actions.numpy(), d.ep_from, d.ep_to, dt,
                                   init["welch_segment_s"], init["n_peaks"])  # fmt: skip
    assert peaks == [round(float(f), 6) for f in expected] and peaks[0] == pytest.approx(0.6, rel=0.1)
    policy = make_policy(fitted, env.observation_space, env.action_space, control_period=dt)
    assert policy.checkpoint_config()["policy"]["backbone_kwargs"]["init"]["peaks_hz"] == peaks  # config.json
    for s in spectrum(policy):
        at_peaks = np.zeros(20, bool)
        for p in peaks:
            at_peaks |= np.abs(s.frequency_hz - p) <= 0.05 * p + 1e-9
        assert at_peaks[-10:].all()  # peak_fraction 0.5 of 20 modes; CPG/broadband modes may land nearby too
