"""The optimizer every trainer builds: what is decayed, and per-group learning rates reaching AdamW."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from torch import nn

from cadence.datasets import Demonstrations
from cadence.envs import make_env
from cadence.policies import PolicyConfig, make_policy
from cadence.training.bc import BCConfig, BCTrainer
from cadence.training.optim import RECURRENCE, param_groups, warmup_cosine
from cadence.training.ppo import PPOConfig, PPOTrainer

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def group_of(opt: torch.optim.Optimizer, p: nn.Parameter) -> dict:
    (group,) = [g for g in opt.param_groups if any(q is p for q in g["params"])]
    return group


def test_mamba_tags_are_honoured():
    """mambapy tags A_log (a matrix) _no_weight_decay; Cadence also puts Δ and D in the recurrence group."""
    policy = make_policy(PolicyConfig(backbone="mamba", d_model=16), OBS, ACT)
    mixer = policy.backbone.mamba.layers[0].mixer
    groups = param_groups(policy, 0.1, 1e-3, {RECURRENCE: 0.3})
    opt = torch.optim.AdamW(groups, lr=1e-3)
    for p in (mixer.A_log, mixer.D, mixer.dt_proj.weight, mixer.dt_proj.bias):
        g = group_of(opt, p)
        assert g["weight_decay"] == 0.0 and g["lr"] == pytest.approx(3e-4) and g["name"] == RECURRENCE
    assert group_of(opt, mixer.in_proj.weight)["weight_decay"] == 0.1  # other matrices are decayed
    assert group_of(opt, mixer.in_proj.weight)["lr"] == 1e-3
    assert group_of(opt, policy.backbone.norm.weight)["weight_decay"] == 0.0  # 1-D: never decayed
    assert sum(len(g["params"]) for g in groups) == len(list(policy.parameters()))  # every parameter, once


def toy_demos() -> Demonstrations:
    obs = torch.randn(40, 3, generator=torch.Generator().manual_seed(0))
    return Demonstrations(obs, obs[:, :1], torch.tensor([0, 25]), torch.tensor([25, 40]))


def test_bc_recurrence_factor_reaches_the_oscillators(tmp_path):
    policy = make_policy(PolicyConfig(backbone="linoss", d_model=16, backbone_kwargs={"n_layers": 1, "state_dim": 8}),
                         OBS, ACT, control_period=0.05)  # fmt: skip
    cfg = BCConfig(lr=2e-3, recurrence_lr_factor=0.1, warmup_steps=10, steps=100)
    trainer = BCTrainer(policy, toy_demos(), cfg, tmp_path)
    layer = policy.backbone.layers()[0]
    for p in (layer.A_diag, layer.G_diag, layer.steps):
        assert group_of(trainer.opt, p)["initial_lr"] == pytest.approx(2e-4)
        assert group_of(trainer.opt, p)["lr"] == pytest.approx(2e-4 * warmup_cosine(10, 100)(0))
    assert group_of(trainer.opt, layer.B)["initial_lr"] == pytest.approx(2e-3)


def test_ppo_backbone_and_recurrence_rates(tmp_path):
    env = make_env("invertedpendulum")
    policy = make_policy(PolicyConfig(backbone="linoss", d_model=16, head="gaussian",
                                      backbone_kwargs={"n_layers": 1, "state_dim": 8}),
                         env.observation_space, env.action_space, env.unwrapped.dt)  # fmt: skip
    env.close()
    cfg = PPOConfig(num_envs=2, num_steps=16, window=16, num_minibatches=1, steps=32, lr=1e-3, backbone_lr=5e-4,
                    recurrence_lr_factor=0.3)  # fmt: skip
    trainer = PPOTrainer(policy, "invertedpendulum", cfg, tmp_path)
    trainer.close()
    layer = policy.backbone.layers()[0]
    assert group_of(trainer.opt, layer.A_diag)["initial_lr"] == pytest.approx(1.5e-4)
    assert group_of(trainer.opt, layer.B)["initial_lr"] == pytest.approx(5e-4)
    assert group_of(trainer.opt, policy.encoder[0].weight)["initial_lr"] == pytest.approx(1e-3)


def test_bad_factors_are_refused():
    with pytest.raises(ValueError, match="positive"):
        param_groups(nn.Linear(2, 2), 0.0, 1e-3, {RECURRENCE: 0})
    with pytest.raises(ValueError, match="pass lr"):
        param_groups(nn.Linear(2, 2), 0.0, None, {RECURRENCE: 0.5})
