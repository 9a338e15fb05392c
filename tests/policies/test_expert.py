"""A trained policy checkpoint as a demonstration expert (``cadence-collect expert=DIR``)."""

import numpy as np
import pytest
import torch

from cadence.datasets import collect_dataset
from cadence.datasets.format import ACTION, STATE
from cadence.datasets.windows import WindowDataset
from cadence.envs import make_env
from cadence.policies import PolicyConfig, make_policy
from cadence.policies.expert import PolicyExpert


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory):
    """An MLP policy for the fully observed InvertedPendulum, with non-trivial normalization."""
    env = make_env("invertedpendulum")
    torch.manual_seed(0)
    policy = make_policy(PolicyConfig(backbone="mlp", d_model=32, head="gaussian"), env.observation_space,
                         env.action_space, control_period=env.unwrapped.dt)  # fmt: skip
    policy.obs_norm.set_stats(torch.full((4,), 0.1), torch.full((4,), 0.5))
    return policy.save_pretrained(tmp_path_factory.mktemp("expert") / "best")


def test_collect_labels_partial_task_with_full_state_expert(checkpoint, tmp_path):
    """Collecting the positions-only task: every recorded action is the checkpoint's action on the
    recorded full state, though the recorded observation is partial."""
    root = tmp_path / "ip_p"
    meta = collect_dataset("invertedpendulum_p", str(checkpoint), episodes=2, root=root, noise=0.3, seed=0,
                           reference_episodes=1)  # fmt: skip
    assert meta["expert"] == str(checkpoint)
    data = WindowDataset(root, keys=(STATE, ACTION)).data
    assert data[STATE].shape[1] == 4 and len(data[STATE]) > 2
    expert = PolicyExpert(checkpoint)
    expected = np.stack([expert(s) for s in data[STATE].numpy()])
    np.testing.assert_allclose(data[ACTION].numpy(), expected, atol=1e-6)
    assert np.abs(expected).max() > 1e-3  # the expert acts, so the check is not vacuous


def test_wrong_state_size_is_explained(checkpoint):
    with pytest.raises(ValueError, match="fully observed env"):
        PolicyExpert(checkpoint)(np.zeros(2, np.float32))


def test_missing_checkpoint_names_the_training_command(tmp_path):
    with pytest.raises(FileNotFoundError, match="cadence-train algo=ppo policy=mlp"):
        collect_dataset("invertedpendulum_p", str(tmp_path / "runs/ppo/x/best"), episodes=1, root=tmp_path / "d")


@pytest.mark.parametrize("task, threshold", [("hopper", 2500.0), ("walker2d", 3000.0), ("halfcheetah", 4000.0)])
def test_shipped_ppo_expert_reaches_its_return(task, threshold):
    """``expert=ppo`` on the partially observed config picks the shipped full-state expert, which
    walks: one clean 1000-step episode on the full-state env (the returns are in pretrained/README.md)."""
    from cadence.datasets.collect import _resolve_expert, rollout

    name, expert = _resolve_expert("ppo", make_env(f"{task}_p"))
    assert name == "ppo" and expert.checkpoint.name == f"ppo_{task}"
    env = make_env(task)
    expert.reset()
    assert rollout(env, expert, reset_seed=123).ret > threshold
