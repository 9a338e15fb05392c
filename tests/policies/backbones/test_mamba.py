"""Mamba: the resettable block computes mambapy's model, and its fast scans agree with the sequential loop."""

import pytest
import torch

from cadence.policies.backbones import make_backbone

D = 16


def mamba(**kw):
    return make_backbone("mamba", d_model=D, **({"n_layers": 2} | kw)).double()


def test_forward_and_step_compute_mambapy_model():
    """From a zero state without resets the block is mambapy's; its step mode (no resets) agrees too."""
    bb = mamba().eval()
    x = torch.randn(2, 50, D, dtype=torch.float64)
    with torch.no_grad():
        y, (conv_in, h) = bb(x)
        torch.testing.assert_close(y, bb.norm(bb.mamba(x)), atol=1e-9, rtol=0)  # mambapy rounds A to float32
        caches = [(None, torch.zeros(2, bb.mcfg.d_inner, bb.mcfg.d_conv - 1, dtype=torch.float64))] * 2
        for t in range(50):
            y_t, caches = bb.mamba.step(x[:, t], caches)
    torch.testing.assert_close(bb.norm(y_t), y[:, -1], atol=1e-9, rtol=0)
    for i, (h_i, inputs) in enumerate(caches):  # mambapy keeps (B, ED, W − 1); Cadence (B, W − 1, ED)
        torch.testing.assert_close(h[:, i], h_i, atol=1e-9, rtol=0)
        torch.testing.assert_close(conv_in[:, i], inputs.transpose(1, 2), atol=1e-9, rtol=0)


@pytest.mark.parametrize("scan", ["numba", "pscan"])
def test_fast_and_loop_backbones_agree_in_values_and_gradients(scan):
    fast, ref = mamba(scan=scan), mamba(scan="loop")
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(2, 37, D, dtype=torch.float64)
    with torch.no_grad():
        _, state = fast(torch.randn(2, 5, D, dtype=torch.float64))
    resets = torch.rand(2, 37) < 0.1
    outs = [bb(x, state, resets)[0] for bb in (fast, ref)]
    torch.testing.assert_close(outs[0], outs[1], atol=1e-12, rtol=0)
    w = torch.randn_like(outs[0])
    grads = [torch.autograd.grad((y * w).sum(), list(bb.parameters())) for y, bb in zip(outs, (fast, ref))]
    for a, b in zip(*grads):
        torch.testing.assert_close(a, b, atol=1e-10, rtol=1e-10)


def test_dt_rank_follows_d_model():
    assert mamba().mcfg.dt_rank == 1 and make_backbone("mamba", d_model=40).mcfg.dt_rank == 3
    with pytest.raises(ValueError, match="MambaConfig.scan 'cuda' is not one of"):
        make_backbone("mamba", d_model=16, scan="cuda")
