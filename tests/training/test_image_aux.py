"""BC's auxiliary loss for image policies (``algo.image_aux_key``): privileged features read from the image
encoder's features in training only, never part of the saved policy; resumed exactly; bad settings refused."""

import gymnasium as gym
import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from cadence.datasets import load_demonstrations
from cadence.datasets.format import STATE
from cadence.policies import PolicyConfig, make_policy
from cadence.training.bc import BCConfig, BCTrainer


@pytest.fixture(scope="module")
def dataset(tmp_path_factory, record_camera_dataset):
    """Frames of random brightness; the full state (not observed) holds the brightness and a constant; the action is
    noise, so the action loss says nothing about the frames (tests/conftest.py)."""
    return record_camera_dataset(tmp_path_factory.mktemp("aux") / "dataset", video=False, size=16, privileged=True)


@pytest.fixture(scope="module")
def env():
    env = gym.make("InvertedPendulum-v5")
    yield env
    env.close()


def trainer_for(demos, env, run_dir, **cfg) -> BCTrainer:
    torch.manual_seed(0)
    policy = make_policy(PolicyConfig(backbone="gru", d_model=16, image_features=8, image_shift=0),
                         env.observation_space, env.action_space, 0.04, tuple(demos.data.images.shape[1:]))
    cfg = BCConfig(**{"steps": 60, "batch_size": 8, "window": 4, "batches": "windows", "lr": 3e-3, "warmup_steps": 1,
                      "eval_every": 0, "image_aux_key": STATE} | cfg)  # fmt: skip
    return BCTrainer(policy, demos.data, cfg, run_dir)


def test_aux_targets_are_the_chosen_dims_normalized_frame_by_frame(dataset, env):
    demos = load_demonstrations(dataset, env, aux_key=STATE, aux_dims=[0])
    aux, images = demos.data.aux, demos.data.images
    assert aux.shape == (100, 1) and demos.observation_keys == ["observation.state"]  # observed: the state alone
    assert abs(aux.mean()) < 0.05 and abs(aux.std() - 1) < 0.05
    brightness = images.float().mean((1, 2, 3))
    assert np.corrcoef(brightness, aux[:, 0])[0, 1] > 0.9999  # frame i's target is frame i's
    batch = demos.data.sample_windows(3, 5, torch.Generator().manual_seed(0))
    assert batch.aux.shape == (3, 5, 1)
    assert load_demonstrations(dataset, env, aux_key=STATE).data.aux[:, 1].abs().max() == 0  # a constant dim: 0
    train, held = demos.data.split(1)
    assert train.aux.shape == (75, 1) and held.aux.shape == (25, 1)


def test_the_aux_loss_teaches_the_encoder_and_stays_out_of_the_policy(dataset, env, tmp_path):
    demos = load_demonstrations(dataset, env, aux_key=STATE, aux_dims=[0])
    trainer = trainer_for(demos, env, tmp_path / "run")
    metrics = [trainer.train_step() for _ in range(60)]
    aux = [m["aux_loss"] for m in metrics]
    assert np.mean(aux[-10:]) < 0.2 * np.mean(aux[:3]), aux  # unit-variance target: 1.0 is knowing nothing
    assert all(m["loss"] > m["aux_loss"] for m in metrics)  # the total holds the action loss too
    trainer.save_last()
    plain = make_policy(trainer.policy.cfg, env.observation_space, env.action_space, 0.04, (3, 16, 16))
    saved = load_file(tmp_path / "run" / "checkpoints" / "last" / "model.safetensors")
    assert set(saved) == set(plain.state_dict())  # the policy, deployed as without the auxiliary loss
    resumed = trainer_for(demos, env, tmp_path / "run")
    assert resumed.resume() and resumed.step == 60
    for a, b in zip(resumed.aux.parameters(), trainer.aux.parameters(), strict=True):
        torch.testing.assert_close(a, b, rtol=0, atol=0)
    assert resumed.train_step() == pytest.approx(trainer.train_step())  # continues exactly


def test_bad_aux_settings_are_refused_naming_the_fix(dataset, env, tmp_path):
    with pytest.raises(ValueError, match=r"algo\.image_aux_key=observation\.goal is not a vector feature of .*; its "
                                         r"vector features are \['action', .*'observation\.environment_state'"):
        load_demonstrations(dataset, env, aux_key="observation.goal")
    with pytest.raises(ValueError, match=r"algo\.image_aux_dims=\[2\] must be dims of observation\.environment_state, "
                                         r"which has 2 \(0 … 1\)"):
        load_demonstrations(dataset, env, aux_key=STATE, aux_dims=[2])
    with pytest.raises(ValueError, match=r"algo\.image_aux_weight must be > 0, got 0\.0; to train without"):
        BCConfig(image_aux_key=STATE, image_aux_weight=0.0)
    demos = load_demonstrations(dataset, env, aux_key=STATE)
    with pytest.raises(ValueError, match="needs demonstrations loaded with that key's auxiliary targets"):
        trainer_for(demos, env, tmp_path / "a", image_aux_key=None)
    state_only = load_demonstrations(dataset, env, ["observation.state"], aux_key=STATE)
    policy = make_policy(PolicyConfig(backbone="gru", d_model=16), env.observation_space, env.action_space, 0.04)
    with pytest.raises(ValueError, match="this policy observes no camera: select a camera feature"):
        BCTrainer(policy, state_only.data, BCConfig(image_aux_key=STATE, eval_every=0), tmp_path / "b")


def test_cadence_train_refuses_the_aux_loss_without_a_camera_before_loading(dataset, tmp_path):
    from cadence.configs import compose
    from cadence.training import train_bc

    cfg = compose("train", ["algo=bc", "policy=gru", "env.id=InvertedPendulum-v5", "env.name=ip", f"dataset={dataset}",
                            "algo.observation_keys=[observation.state]", f"algo.image_aux_key={STATE}",
                            f"run_dir={tmp_path / 'run'}"])  # fmt: skip
    with pytest.raises(ValueError, match=r"algo\.image_aux_key=observation\.environment_state teaches a policy's image "
                                         r"encoder, and the policy observes no camera of .*algo\.observation_keys"):
        train_bc(cfg)
