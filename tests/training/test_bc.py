"""BC trainer: learning, exact resume, config errors, and the optimizer it builds."""

import dataclasses
import time

import gymnasium as gym
import numpy as np
import pytest
import torch

from cadence.policies import PolicyConfig, make_policy
from cadence.datasets import Demonstrations
from cadence.training.bc import PROBE_STEPS, BCConfig, BCTrainer, step_cost

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = gym.spaces.Box(-1.0, 1.0, (1,), np.float32)


def toy_demos(lengths=(30, 50, 20)) -> Demonstrations:
    """Episodes where the action is the sum of the last two observations' first channel (needs memory)."""
    g = torch.Generator().manual_seed(0)
    obs, act = [], []
    for n in lengths:
        o = torch.randn(n, 3, generator=g)
        a = (o[:, :1] + torch.cat([torch.zeros(1, 1), o[:-1, :1]])) * 0.3
        obs.append(o)
        act.append(a.clamp(-1, 1))
    ends = torch.tensor(lengths).cumsum(0)
    return Demonstrations(torch.cat(obs), torch.cat(act), ends - torch.tensor(lengths), ends)


def policy(backbone="gru", seed=0):
    torch.manual_seed(seed)
    kw = {"gru": {"n_layers": 1}, "linoss": {"n_layers": 1, "state_dim": 8}}[backbone]
    return make_policy(PolicyConfig(backbone=backbone, d_model=16, backbone_kwargs=kw), OBS, ACT, control_period=0.05)


@pytest.mark.parametrize("batches", ["windows", "streams", "episodes"])
def test_resume_continues_exactly(tmp_path, batches):
    cfg = BCConfig(steps=12, batch_size=8, window=8, warmup_steps=3, save_every=6, log_every=3, ema_decay=0.9,
                   batches=batches, eval_every=0)
    straight = BCTrainer(policy("linoss"), toy_demos(), cfg, tmp_path / "a", seed=3)
    straight.fit()
    # the same run, interrupted after step 6 (when fit writes checkpoints/last), resumed by a new process
    first = BCTrainer(policy("linoss"), toy_demos(), cfg, tmp_path / "b", seed=3)
    for _ in range(6):
        first.train_step()
    first.save_last()
    del first
    resumed = BCTrainer(policy("linoss", seed=99), toy_demos(), cfg, tmp_path / "b", seed=3)
    assert resumed.resume() and resumed.step == 6
    resumed.fit()
    for (k, a), b in zip(straight.policy.state_dict().items(), resumed.policy.state_dict().values()):
        torch.testing.assert_close(a, b, atol=0, rtol=0, msg=k)


def test_a_resumed_run_knows_the_wall_time_its_earlier_processes_spent(tmp_path):
    """checkpoints/last records the run's elapsed wall seconds; a resumed trainer reads them back as resumed_s,
    which the comparison adds to the cell's time (a resumed cell counted only its last process before)."""
    cfg = BCConfig(steps=4, batch_size=4, window=8, eval_every=0)
    first = BCTrainer(policy("gru"), toy_demos(), cfg, tmp_path)
    assert first.ckpt.resumed_s == 0.0
    time.sleep(0.3)  # the first process's time: at least this much by its save
    first.save_last()
    resumed = BCTrainer(policy("gru"), toy_demos(), cfg, tmp_path)
    assert resumed.resume() and resumed.ckpt.resumed_s >= 0.3
    time.sleep(0.2)
    resumed.save_last()
    again = BCTrainer(policy("gru"), toy_demos(), cfg, tmp_path)
    assert again.resume() and again.ckpt.resumed_s >= 0.5  # both processes' time


def test_the_training_clock_leaves_out_the_first_step_of_every_fit(tmp_path, monkeypatch):
    """train_s (the cells' s/step, the equal-seconds table) counts steps 2.. of each fit: the first, which compiles
    the numba kernels, goes to warmup_s — again after a resume, where a new process compiles again."""
    trainer = BCTrainer(policy("gru"), toy_demos(), BCConfig(steps=4, batch_size=4, window=8, eval_every=0), tmp_path)
    real_step, calls = trainer.train_step, []

    def step():  # the first call of each fit is slow, as compiling is
        calls.append(None)
        time.sleep(1.0 if len(calls) in (1, 5) else 0.01)  # far above a step's time, even on loaded cores
        return real_step()

    monkeypatch.setattr(trainer, "train_step", step)
    trainer.fit()
    assert trainer.warmup_s >= 1.0 and 0.03 <= trainer.train_s < 0.9
    trainer.cfg = dataclasses.replace(trainer.cfg, steps=8)
    trainer.fit()  # continued, as a resumed run is
    assert trainer.warmup_s >= 2.0 and 0.06 <= trainer.train_s < 1.0


def test_training_reduces_the_loss(tmp_path):
    trainer = BCTrainer(policy("linoss"), toy_demos(), BCConfig(steps=150, batch_size=16, window=8, warmup_steps=10,
                                                             lr=3e-3, eval_every=0), tmp_path, seed=0)  # fmt: skip
    first = trainer.train_step()["loss"]
    for _ in range(149):
        last = trainer.train_step()["loss"]
    assert last < 0.3 * first


def test_bad_config_values():
    with pytest.raises(ValueError, match="loss 'l1' is not 'mse' or 'nll'"):
        BCConfig(loss="l1")
    with pytest.raises(ValueError, match="algo.window must be >= 1"):
        BCConfig(window=0)
    with pytest.raises(ValueError, match="needs a gaussian head"):
        BCTrainer(policy("linoss"), toy_demos(), BCConfig(loss="nll"), "unused")


def test_validation_fraction_outside_zero_to_one_is_refused():
    from cadence.training.bc import BCConfig

    for bad in (0.0, 1.0):
        with pytest.raises(ValueError, match=r"algo.validation_fraction must be in \(0, 1\)"):
            BCConfig(validation_fraction=bad)


def test_the_budget_probe_is_not_decided_by_one_slow_step():
    # the training clock after each probe step: 0.3 s a step, one step slowed to 10 s by another process
    steps = [0.3] * PROBE_STEPS
    steps[2] = 10.0
    marks = [0.0]
    for s in steps:
        marks.append(marks[-1] + s)
    assert step_cost(marks) == pytest.approx(0.3) and (marks[-1] - marks[0]) / PROBE_STEPS > 1.3
