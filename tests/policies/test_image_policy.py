"""Camera policies: stepping equals sequence mode with images for every backbone, the random-shift augmentation
acts in training mode only, checkpoints keep the camera, and wrong frames are refused."""

import gymnasium as gym
import numpy as np
import pytest
import torch

from cadence.policies import PolicyConfig, SequencePolicy, make_policy
from cadence.policies.backbones import REGISTRY
from cadence.policies.image_encoder import ImageEncoder, random_shift

OBS = gym.spaces.Box(-np.inf, np.inf, (3,), np.float32)
ACT = gym.spaces.Box(-2.0, 2.0, (2,), np.float32)
IMAGE = (3, 16, 16)
SMALL = {"linoss": {"n_layers": 2, "state_dim": 16}, "transformer": {"n_layers": 2, "context": 32},
         "mamba": {"n_layers": 2}, "gru": {"n_layers": 1}, "mlp": {"n_layers": 2, "frame_stack": 3}}


def image_policy(name: str) -> SequencePolicy:
    cfg = PolicyConfig(backbone=name, d_model=32, backbone_kwargs=SMALL[name], image_features=16)
    policy = make_policy(cfg, OBS, ACT, control_period=0.04, image_shape=IMAGE)
    policy.obs_norm.set_stats(torch.randn(3), torch.rand(3) + 0.5)
    return policy.eval()


def frames(*lead: int) -> torch.Tensor:
    return torch.randint(0, 256, (*lead, *IMAGE), dtype=torch.uint8, generator=torch.Generator().manual_seed(0))


@pytest.mark.parametrize("name", sorted(REGISTRY))
def test_step_equals_forward_with_images(name):
    policy = image_policy(name)
    obs, images = torch.randn(2, 40, 3), frames(2, 40)
    with torch.no_grad():
        mean, _ = policy(obs, images=images)
        state, stepped = policy.initial_state(2), []
        for t in range(40):
            m, state = policy.step_mean(obs[:, t], state, images=images[:, t])
            stepped.append(m)
    torch.testing.assert_close(torch.stack(stepped, 1), mean, atol=1e-5, rtol=1e-5)


def test_the_image_changes_the_action():
    """The camera reaches the output: the same state with another frame gives another action."""
    policy, obs = image_policy("gru"), torch.randn(1, 5, 3)
    with torch.no_grad():
        a, _ = policy(obs, images=frames(1, 5))
        b, _ = policy(obs, images=torch.zeros(1, 5, *IMAGE, dtype=torch.uint8))
    assert not torch.allclose(a, b)


def test_random_shift_is_a_crop_of_the_padded_frame():
    x = torch.arange(2 * 1 * 6 * 5, dtype=torch.float32).reshape(2, 1, 6, 5)
    shifted = random_shift(x, 2, torch.Generator().manual_seed(3))
    padded = torch.nn.functional.pad(x, (2,) * 4, mode="replicate")
    for n in range(2):
        crops = [padded[n, :, dy:dy + 6, dx:dx + 5] for dy in range(5) for dx in range(5)]
        assert any(torch.equal(shifted[n], c) for c in crops)
    assert shifted.shape == x.shape


def test_augmentation_only_in_training_mode():
    encoder, images = ImageEncoder(IMAGE, 8, shift=4), frames(6)
    plain = ImageEncoder(IMAGE, 8, shift=0)
    plain.load_state_dict(encoder.state_dict())
    encoder.eval()
    torch.testing.assert_close(encoder(images), plain(images), rtol=0, atol=0)  # eval: the frame as it is
    encoder.train()
    torch.manual_seed(0)
    first = encoder(images)
    assert not torch.allclose(first, encoder(images))  # training: a new shift every call
    assert not torch.allclose(first, plain.train()(images))


def test_checkpoint_keeps_the_camera(tmp_path):
    policy = image_policy("linoss")
    loaded = SequencePolicy.from_pretrained(policy.save_pretrained(tmp_path / "ckpt")).eval()
    obs, images = torch.randn(2, 7, 3), frames(2, 7)
    assert loaded.image_shape == IMAGE
    torch.testing.assert_close(loaded(obs, images=images)[0], policy(obs, images=images)[0], rtol=0, atol=0)


def test_wrong_or_missing_frames_are_refused():
    policy, obs = image_policy("gru"), torch.randn(2, 4, 3)
    with pytest.raises(ValueError, match="observes camera frames .* pass images="):
        policy(obs)
    with pytest.raises(ValueError, match="uint8 camera frames"):
        policy(obs, images=frames(2, 4).float())
    with pytest.raises(ValueError, match="uint8 camera frames"):
        policy(obs, images=torch.zeros(2, 4, 3, 8, 8, dtype=torch.uint8))
    with pytest.raises(ValueError, match="share their leading"):
        policy(obs, images=frames(2, 3))
    state_only = make_policy(PolicyConfig(backbone="gru", d_model=16), OBS, ACT, 0.04)
    with pytest.raises(ValueError, match="observes no camera"):
        state_only(obs, images=frames(2, 4))


def test_assemble_frames_stacks_and_resizes_and_names_what_is_wrong():
    from cadence.policies.image_encoder import assemble_frames

    frames = {"a": np.zeros((2, 8, 8, 3), np.uint8), "b": np.full((2, 8, 8, 1), 255, np.uint8)}
    out = assemble_frames(frames, ["a", "b"], (4, 4, 4))
    assert out.shape == (2, 4, 4, 4) and out.dtype == torch.uint8 and (out[:, 3] == 255).all()
    with pytest.raises(ValueError, match=r"observes the camera\(s\) \['a', 'c'\].*pass the frames of \['c'\]"):
        assemble_frames(frames, ["a", "c"], (4, 4, 4))
    with pytest.raises(ValueError, match="the policy takes uint8 frames with 6 channels"):
        assemble_frames(frames, ["a", "b"], (6, 4, 4))
