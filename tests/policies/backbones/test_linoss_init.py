"""LinOSS init "data": the requested fraction of modes sits at the given peaks, the rest in the CPG band,
and the peaks travel in the checkpoint's config so a saved policy loads without its dataset."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from cadence.policies import PolicyConfig, SequencePolicy, make_policy, size_to_budget
from cadence.policies.backbones.linoss import VARIANTS, LinOSSLayer
from cadence.policies.backbones.linoss_init import InitConfig, init_oscillators_, layer_spectrum

PEAKS = [0.6, 1.8]
BAND = (2.5, 5.0)  # the CPG band, disjoint from the peaks' ±spread so every mode can be attributed


def data_init(**kw) -> InitConfig:
    base = dict(kind="data", peaks_hz=PEAKS, peak_fraction=0.5, peak_spread=0.05, f_min_hz=BAND[0], f_max_hz=BAND[1],
                broadband_fraction=0.0)  # fmt: skip
    return InitConfig(**(base | kw))


def near_peak(f: np.ndarray, peak: float, spread: float) -> np.ndarray:
    return np.abs(f - peak) <= spread * peak + 1e-9


@pytest.mark.parametrize("control_period", [1 / 25, 1 / 125])
@pytest.mark.parametrize("variant", VARIANTS)
@pytest.mark.parametrize("fraction", [0.5, 0.3])
def test_data_init_places_the_requested_fraction_at_the_peaks(variant, control_period, fraction):
    P = 40
    layer = LinOSSLayer(P, 4, variant).double()
    init_oscillators_(layer, data_init(peak_fraction=fraction), control_period, torch.Generator().manual_seed(0))
    f = layer_spectrum(layer, control_period)["frequency_hz"].numpy()
    n_peak = round(fraction * P)
    at_peak = [near_peak(f, p, 0.05) for p in PEAKS]
    assert sum(m.sum() for m in at_peak) == n_peak
    # round-robin, strongest peak first: the first peak gets the odd mode
    assert [m.sum() for m in at_peak] == [(n_peak + 1) // 2, n_peak // 2]
    assert ((f[: P - n_peak] >= BAND[0] - 1e-6) & (f[: P - n_peak] <= BAND[1] + 1e-6)).all()
    assert near_peak(f[P - n_peak :], PEAKS[0], 0.05)[::2].all() and near_peak(f[P - n_peak :], PEAKS[1], 0.05)[1::2].all()


def test_data_init_keeps_the_broadband_fraction_of_the_other_modes():
    P, control_period = 40, 1 / 25
    layer = LinOSSLayer(P, 4, "damped").double()
    init_oscillators_(layer, data_init(broadband_fraction=0.25), control_period, torch.Generator().manual_seed(0))
    f = layer_spectrum(layer, control_period)["frequency_hz"].numpy()
    n_peak, n_broad = 20, 5  # round(0.25 · (40 − 20))
    assert ((f[n_broad : P - n_peak] >= BAND[0] - 1e-6) & (f[n_broad : P - n_peak] <= BAND[1] + 1e-6)).all()
    assert (near_peak(f[P - n_peak :], PEAKS[0], 0.05) | near_peak(f[P - n_peak :], PEAKS[1], 0.05)).all()


def test_data_init_without_peaks_in_the_data_is_the_cpg_init():
    layer = LinOSSLayer(16, 4, "damped").double()
    init_oscillators_(layer, data_init(peaks_hz=[]), 1 / 25, torch.Generator().manual_seed(0))
    f = layer_spectrum(layer, 1 / 25)["frequency_hz"].numpy()
    assert ((f >= BAND[0] - 1e-6) & (f <= BAND[1] + 1e-6)).all()


def test_data_init_errors_name_the_fix():
    with pytest.raises(ValueError, match="peaks_hz"):
        init_oscillators_(LinOSSLayer(8, 4, "damped"), InitConfig(kind="data"), 1 / 25)
    with pytest.raises(ValueError, match="control period"):
        init_oscillators_(LinOSSLayer(8, 4, "damped"), data_init(), None)
    with pytest.raises(ValueError, match="peak_fraction"):
        data_init(peak_fraction=1.5)
    with pytest.raises(ValueError, match="peaks_hz must be positive"):
        data_init(peaks_hz=[0.6, -1.0])


def test_data_init_checkpoint_loads_without_the_dataset(tmp_path):
    obs, act = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32), gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    kwargs = {"n_layers": 2, "state_dim": 12, "init": {"kind": "data", "peaks_hz": PEAKS}}
    policy = make_policy(PolicyConfig(d_model=16, backbone_kwargs=kwargs), obs, act, control_period=1 / 25)
    policy.save_pretrained(tmp_path / "ckpt")
    loaded = SequencePolicy.from_pretrained(tmp_path / "ckpt")
    assert loaded.backbone.cfg.init.kind == "data" and loaded.backbone.cfg.init.peaks_hz == PEAKS
    for k, v in policy.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[k], v, rtol=0, atol=0)


@pytest.mark.parametrize("kind", ["paper", "uniform", "ring", "cpg", "data"])
def test_every_init_sizes_to_a_parameter_budget(kind):
    """size_to_budget builds trial policies on the meta device: every init must draw its numbers there too
    (the uniform init's rejection sampling and the data init's peak table once failed on meta tensors)."""
    init = {"kind": kind} | ({"peaks_hz": PEAKS} if kind == "data" else {})
    cfg = size_to_budget(PolicyConfig(backbone="linoss", backbone_kwargs={"n_layers": 2, "state_dim": 16, "init": init}),
                         5, 2, 20_000, control_period=1 / 125)  # fmt: skip
    obs, act = gym.spaces.Box(-np.inf, np.inf, (5,), np.float32), gym.spaces.Box(-1.0, 1.0, (2,), np.float32)
    params = sum(p.numel() for p in make_policy(cfg, obs, act, control_period=1 / 125).parameters())
    assert abs(params - 20_000) <= 2_000
