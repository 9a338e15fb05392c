"""Whole-sequence training for memory tasks: ``batches: auto`` picks whole episodes on a task with a memory horizon,
the gradient of the last action reaches the first observation for every backbone with memory (and not for the
memory-less MLP, so the check can fail), the τ_max and context rules follow the horizon, and a whole-episode
BC step runs for every backbone."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from cadence.datasets import Demonstrations
from cadence.policies import PolicyConfig, make_policy
from cadence.policies.backbones import REGISTRY
from cadence.policies.backbones.linoss_spectrum import spectrum
from cadence.training.bc import BCConfig, BCTrainer, batch_length, resolve_batches

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)
DT, HORIZON, LENGTHS = 0.02, 150, (160, 120)


def policy(backbone: str):
    torch.manual_seed(0)
    pcfg = PolicyConfig(backbone=backbone, d_model=16).fit_to_task(DT, HORIZON)
    return make_policy(pcfg, OBS, ACT, control_period=DT)


def demos() -> Demonstrations:
    obs = torch.randn(sum(LENGTHS), 3, generator=torch.Generator().manual_seed(0))
    ends = torch.tensor(LENGTHS).cumsum(0)
    return Demonstrations(obs, obs[:, :1], ends - torch.tensor(LENGTHS), ends)


def test_auto_batches_follow_the_memory_horizon():
    assert resolve_batches(BCConfig(), None).batches == "streams"
    assert resolve_batches(BCConfig(window=32), 16).batches == "streams"  # the gap fits in one TBPTT window
    whole = resolve_batches(BCConfig(window=32), HORIZON)
    assert whole.batches == "episodes" and whole.window is None and batch_length(whole, demos()) == max(LENGTHS)
    assert resolve_batches(BCConfig(batches="windows"), HORIZON).batches == "windows"  # an explicit choice stays
    with pytest.raises(ValueError, match="needs algo.batches=episodes"):
        BCConfig(window=None)


@pytest.mark.parametrize("backbone", sorted(REGISTRY))
def test_the_last_action_sees_the_first_observation(backbone):
    p = policy(backbone)
    obs = torch.randn(2, max(LENGTHS), 3, requires_grad=True)
    mean, _ = p(obs)
    mean[:, -1].sum().backward()
    reach = obs.grad[:, 0].abs().sum().item()
    if backbone == "mlp":
        assert reach == 0.0  # memory-less: what a window of 1 frame cannot see
    else:
        assert reach > 0.0, f"{backbone}: no gradient from step {max(LENGTHS) - 1} back to step 0"


@pytest.mark.parametrize("backbone", sorted(REGISTRY))
def test_a_whole_episode_bc_step_for_every_backbone(tmp_path, backbone):
    cfg = resolve_batches(BCConfig(steps=2, batch_size=4, warmup_steps=1, eval_every=0), HORIZON)
    trainer = BCTrainer(policy(backbone), demos(), cfg, tmp_path)
    (obs, _, valid, resets, images, aux), state = trainer._batch()
    assert obs.shape[1] == max(LENGTHS) and resets is None and images is None and aux is None and state is None
    assert (valid.sum(1) == torch.tensor([LENGTHS[0] if n == LENGTHS[0] else LENGTHS[1] for n in valid.sum(1)])).all()
    assert np.isfinite(trainer.train_step()["loss"])


def test_tau_max_and_context_rules():
    linoss = PolicyConfig(backbone="linoss")
    fitted = linoss.fit_to_task(DT, 1000)
    assert fitted.backbone_kwargs["init"]["tau_max_s"] == pytest.approx(3 * 1000 * DT)  # 60 s
    assert linoss.fit_to_task(DT, 50) is linoss  # 3 · 1 s < the default 5 s: nothing to stretch
    off = PolicyConfig(backbone="linoss", backbone_kwargs={"init": {"horizon_tau_factor": 0.0}})
    assert off.fit_to_task(DT, 1000) is off
    assert PolicyConfig(backbone="transformer").fit_to_task(DT, 1000).backbone_kwargs["context"] == 1001
    kept = PolicyConfig(backbone="transformer", backbone_kwargs={"cover_horizon": False})
    assert kept.fit_to_task(DT, 1000) is kept
    gru = PolicyConfig(backbone="gru")
    assert gru.fit_to_task(DT, 1000) is gru


def test_the_tau_rule_puts_modes_across_the_gap():
    """With the rule, a share of the modes keeps more than half of a cue across a 1000-step (20 s) gap (~13 % of
    the band by the log-uniform law); with the default τ_max = 5 s none of the CPG band's modes does."""
    gap_s = 1000 * DT

    def remembering(pcfg: PolicyConfig) -> float:
        torch.manual_seed(0)
        p = make_policy(pcfg, OBS, ACT, control_period=DT)
        return float(np.mean([layer.remembering(gap_s) for layer in spectrum(p)]))

    base = PolicyConfig(backbone="linoss", backbone_kwargs={"init": {"broadband_fraction": 0.0}})
    assert remembering(base) == 0.0
    assert 0.05 < remembering(base.fit_to_task(DT, 1000)) < 0.25
