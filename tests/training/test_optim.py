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
from cadence.training.optim import RECURRENCE, adamw, param_groups, warmup_cosine
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


def test_the_trainers_optimizer_is_fused_adamw_and_steps_as_the_default_one():
    """:func:`adamw` takes PyTorch's fused kernel for floating parameters on one device, and it moves the parameters
    as the per-tensor implementation does (per-group rates and decay included) to float32 rounding."""
    torch.manual_seed(0)
    nets = [make_policy(PolicyConfig(backbone="linoss", d_model=16, backbone_kwargs={"n_layers": 1, "state_dim": 8}),
                        OBS, ACT, control_period=0.05) for _ in range(2)]  # fmt: skip
    nets[1].load_state_dict(nets[0].state_dict())
    fused = adamw(param_groups(nets[0], 0.1, 1e-2, {RECURRENCE: 0.3}), 1e-2)
    plain = torch.optim.AdamW(param_groups(nets[1], 0.1, 1e-2, {RECURRENCE: 0.3}), lr=1e-2, foreach=False)
    assert fused.defaults["fused"] and not plain.defaults.get("fused")
    for _ in range(5):
        for net, opt in zip(nets, (fused, plain)):
            opt.zero_grad()
            net(torch.randn(4, 6, 3, generator=torch.Generator().manual_seed(1)))[0].square().sum().backward()
            opt.step()
    for a, b in zip(nets[0].parameters(), nets[1].parameters()):
        torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
    # a step is an in-place update as far as caches keyed on the version counter know: LinOSS's stepping coefficients
    layer, p = nets[0].backbone.layers()[0], nets[0].backbone.layers()[0].A_diag
    with torch.no_grad():
        before, version = layer._io()[0].m11.clone(), p._version
    p.grad = torch.ones_like(p)
    fused.step()
    with torch.no_grad():
        assert p._version > version and not torch.equal(layer._io()[0].m11, before)
        torch.testing.assert_close(layer._io()[0].m11, layer._compute_io()[0].m11, rtol=0, atol=0)
    assert not adamw([{"params": [nn.Parameter(torch.zeros(2, dtype=torch.complex64))]}], 1e-3).defaults["fused"]
